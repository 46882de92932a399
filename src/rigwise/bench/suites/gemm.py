"""GEMM throughput per precision over a sweep of shapes (mamf-finder's method).

``C = A @ B`` with ``A`` of ``M x K`` and ``B`` of ``K x N`` costs ``2·M·N·K`` FLOP (OP for
int8). Inputs are random normal, not constants (predictable bits lower switching power and
inflate clocks). fp32 runs with TF32 off (``torch.backends.cuda.matmul.allow_tf32 = False``),
tf32 with it on; fp8 (e4m3) goes through ``torch._scaled_mm`` with ``B`` column-major, int8
through ``torch._int_mm``. Each shape is one measurement; the suite's best and typical
figures are the maximum and the median over shapes (:func:`summarise`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from rigwise.bench.measurement import Measurement
from rigwise.bench.suites import BenchContext, case

PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8")
SHAPES = {
    "full": ((1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096), (8192, 8192, 8192),
             (16384, 8192, 1024), (8192, 8192, 16384)),
    "tiny": ((64, 64, 64), (128, 128, 128), (256, 256, 256)),
}
DEFAULT_CPU = ("fp32", "bf16")


def _supported(ctx: BenchContext, precision: str) -> str | None:
    """None if ``precision`` can run here, else why not."""
    torch = ctx.torch
    if not ctx.is_cuda:
        return "a CUDA mode" if precision in ("tf32", "fp8") else None
    cc = torch.cuda.get_device_capability(ctx.device)
    if precision in ("tf32", "bf16") and cc < (8, 0):
        return f"needs compute capability 8.0, this GPU is {cc[0]}.{cc[1]}"
    if precision == "fp8" and (cc < (8, 9) or not hasattr(torch, "_scaled_mm")):
        return "needs compute capability 8.9 and torch._scaled_mm"
    if precision == "int8" and (cc < (7, 5) or not hasattr(torch, "_int_mm")):
        return "needs compute capability 7.5 and torch._int_mm"
    return None


def _operands(ctx: BenchContext, precision: str, m: int, n: int,
              k: int) -> Callable[[], Any]:
    torch, dev = ctx.torch, ctx.device
    if precision == "int8":
        a = torch.randint(-64, 64, (m, k), dtype=torch.int8, device=dev)
        b = torch.randint(-64, 64, (k, n), dtype=torch.int8, device=dev)
        return lambda: torch._int_mm(a, b)
    if precision == "fp8":
        a = torch.randn(m, k, device=dev).to(torch.float8_e4m3fn)
        b = torch.randn(n, k, device=dev).to(torch.float8_e4m3fn).t()
        one = torch.tensor(1.0, device=dev)
        return lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one,
                                        out_dtype=torch.bfloat16)
    dtype = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16,
             "bf16": torch.bfloat16}[precision]
    a = torch.randn(m, k, device=dev, dtype=dtype)
    b = torch.randn(k, n, device=dev, dtype=dtype)
    return lambda: torch.matmul(a, b)


def run(ctx: BenchContext) -> list[Measurement]:
    """GEMM TFLOPS for each supported precision and shape of the size class."""
    torch = ctx.torch
    wanted = ctx.precisions or (PRECISIONS if ctx.is_cuda else DEFAULT_CPU)
    out: list[Measurement] = []
    saved_tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        for precision in wanted:
            why = _supported(ctx, precision)
            if why:
                ctx.skip(f"gemm {precision}", why)
                continue
            torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
            for m, n, k in SHAPES[ctx.size]:
                fn = _operands(ctx, precision, m, n, k)
                out.append(case(ctx, fn, suite="gemm", kind="gemm",
                                name=f"gemm {precision} {m}x{n}x{k}", metric="flop_per_s",
                                work=2.0 * m * n * k,
                                params={"precision": precision, "m": m, "n": n, "k": k}))
                ctx.sync()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved_tf32
    return out


def summarise(ms: list[Measurement]) -> dict[str, dict[str, float]]:
    """Per precision: ``best_flop_per_s`` (max over shapes of the median rate) and
    ``typical_flop_per_s`` (median over shapes)."""
    by: dict[str, list[float]] = {}
    for m in ms:
        if m.kind == "gemm":
            by.setdefault(str(m.params["precision"]), []).append(m.value)
    return {p: {"best_flop_per_s": max(v), "typical_flop_per_s": statistics.median(v)}
            for p, v in by.items()}
