"""Collectives over ``torch.distributed``: all-reduce, all-gather, reduce-scatter.

Definitions of NVIDIA nccl-tests ``doc/PERFORMANCE.md``: ``algbw = S / t`` with ``S`` the
size of the full buffer (the all-reduce tensor, the gathered output, the reduce-scatter
input) and ``t`` the time of one operation; ``busbw = algbw · factor`` with factor
``2(n-1)/n`` for all-reduce and ``(n-1)/n`` for all-gather and reduce-scatter, so that busbw
compares with the link bandwidth whatever the rank count. Timing is nccl-tests': warm-up
operations, then ``iters`` operations enqueued back to back, one synchronisation and the host
wall clock divided by ``iters``; we repeat that batch for raw samples and take, for each
sample, the slowest rank's time (an all-reduce of the times with MAX).

Must run inside an initialised process group (see :mod:`rigwise.bench.launch`): NCCL on GPUs,
gloo on the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rigwise import units
from rigwise.bench.measurement import Measurement
from rigwise.bench.suites import BenchContext

SIZES = {"full": (1 * units.MIB, 16 * units.MIB, 256 * units.MIB, 1 * units.GIB),
         "tiny": (64 * units.KIB, 1 * units.MIB)}
ITERS = {"full": 20, "tiny": 5}
REPEATS = {"full": 10, "tiny": 5}
WARMUP = 5


def bus_factor(op: str, n: int) -> float:
    """nccl-tests' busbw factor of collective ``op`` on ``n`` ranks.

    Raises:
        ValueError: an unknown collective.
    """
    if op == "all_reduce":
        return 2.0 * (n - 1) / n
    if op in ("all_gather", "reduce_scatter"):
        return (n - 1) / n
    raise ValueError(f"unknown collective {op!r}")


def _ops(ctx: BenchContext, dist: Any, n_bytes: int, world: int) -> dict[str, Callable[[], Any]]:
    torch = ctx.torch
    count = n_bytes // 4 // world * world
    full = torch.ones(count, device=ctx.device)
    part = torch.ones(count // world, device=ctx.device)
    return {
        "all_reduce": lambda: dist.all_reduce(full),
        "all_gather": lambda: dist.all_gather_into_tensor(full, part),
        "reduce_scatter": lambda: dist.reduce_scatter_tensor(part, full),
    }


def _batch_time(ctx: BenchContext, dist: Any, fn: Callable[[], Any], iters: int) -> float:
    dist.barrier()
    ctx.sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    ctx.sync()
    t = ctx.torch.tensor([(time.perf_counter() - t0) / iters], dtype=ctx.torch.float64,
                         device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def run(ctx: BenchContext) -> list[Measurement]:
    """algbw and busbw of each collective and size, on every rank of the group."""
    import torch.distributed as dist

    world = dist.get_world_size()
    out: list[Measurement] = []
    for n_bytes in SIZES[ctx.size]:
        for op, fn in _ops(ctx, dist, n_bytes, world).items():
            name = f"{op} {units.format_bytes(n_bytes)} x{world}"
            if ctx.describe is not None:
                ctx.describe(name)
            for _ in range(WARMUP):
                fn()
            samples = []
            for _ in range(REPEATS[ctx.size]):
                samples.append(_batch_time(ctx, dist, fn, ITERS[ctx.size]))
                if ctx.tick is not None:
                    ctx.tick()
            size = float(n_bytes // 4 // world * world * 4)
            out.append(Measurement(
                suite="collectives", kind="busbw", name=name, metric="bytes_per_s",
                work=size, samples_s=tuple(samples),
                params={"op": op, "bytes": size, "ranks": world,
                        "backend": dist.get_backend(), "device": ctx.device,
                        "size": ctx.size, "iters": ITERS[ctx.size]},
                extra={"busbw_factor": bus_factor(op, world)},
                timer="wall-clock per batch (nccl-tests)", inner=ITERS[ctx.size]))
    return out


def busbw(m: Measurement) -> float:
    """Bus bandwidth (bytes/s) of a collective measurement: algbw x nccl-tests factor."""
    return m.value * m.extra.get("busbw_factor", 1.0)
