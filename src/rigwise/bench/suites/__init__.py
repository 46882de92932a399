"""Benchmark suites. Each module has ``run(ctx) -> list[Measurement]`` and can run alone.

:class:`BenchContext` carries the device, the size class (``tiny`` for the CPU and tests,
``full`` for a GPU), the timer settings and the telemetry sampler; :func:`case` times one
callable and turns it into a :class:`~rigwise.bench.measurement.Measurement`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rigwise import units
from rigwise.bench.measurement import Measurement
from rigwise.bench.telemetry import TelemetrySampler, link_under_load, throttled_fraction
from rigwise.bench.timer import TimerConfig, measure
from rigwise.errors import InputError

SUITES = ("gemm", "memory", "collectives", "models", "scaling")
SIZES = ("tiny", "full")


class TorchMissingError(InputError):
    """PyTorch is needed for benchmarks and is not installed."""


def import_torch() -> Any:
    """``import torch``, or a clear error saying how to install it.

    Raises:
        TorchMissingError: PyTorch is not installed.
    """
    try:
        with warnings.catch_warnings():  # torch warns when NumPy is absent; we do not use it
            warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
            import torch
    except ImportError:
        raise TorchMissingError(
            "benchmarks need PyTorch, which is not installed: pip install 'rigwise[torch]' "
            "(or a CUDA build from pytorch.org)") from None
    return torch


@dataclass
class BenchContext:
    """Where and how a suite runs.

    ``device``: ``"cpu"`` or ``"cuda:i"``. ``size``: ``"tiny"`` or ``"full"``.
    ``precisions``: restrict GEMM/model precisions (None: the suite's defaults).
    ``describe``/``tick``: progress callbacks. ``notes``: what was skipped and why.
    """

    torch: Any
    device: str
    size: str
    timer: TimerConfig = field(default_factory=TimerConfig)
    telemetry: TelemetrySampler | None = None
    precisions: tuple[str, ...] | None = None
    describe: Callable[[str], None] | None = None
    tick: Callable[[], None] | None = None
    notes: list[str] = field(default_factory=list)
    l2_flush_bytes: int = 256 * units.MIB

    @property
    def is_cuda(self) -> bool:
        """True on an NVIDIA GPU."""
        return self.device.startswith("cuda")

    @property
    def gpu_index(self) -> int | None:
        """CUDA index of the device (None on CPU)."""
        if not self.is_cuda:
            return None
        return int(self.device.split(":")[1]) if ":" in self.device else 0

    def sync(self) -> None:
        """Wait for the device to finish queued work."""
        if self.is_cuda:
            self.torch.cuda.synchronize(self.device)

    def skip(self, what: str, why: str) -> None:
        """Record that ``what`` was not measured, and why."""
        self.notes.append(f"{what}: skipped ({why})")


def case(ctx: BenchContext, fn: Callable[[], Any], *, suite: str, kind: str, name: str,
         metric: str, work: float, params: dict[str, Any] | None = None,
         flush: bool = True, extra: dict[str, float] | None = None) -> Measurement:
    """Time ``fn`` (one unit of ``work``) and return its measurement with telemetry."""
    if ctx.describe is not None:
        ctx.describe(name)
    cfg = ctx.timer if flush else replace(ctx.timer, flush=False)
    t0 = time.perf_counter()
    timing = measure(fn, device=ctx.device, config=cfg, flush_bytes=ctx.l2_flush_bytes,
                     tick=ctx.tick)
    t1 = time.perf_counter()
    tel = ctx.telemetry.window(t0, t1, ctx.gpu_index) if ctx.telemetry is not None else []
    return Measurement(
        suite=suite, kind=kind, name=name, metric=metric, work=work,
        samples_s=timing.samples_s, params={**(params or {}), "device": ctx.device,
                                             "size": ctx.size,
                                             "l2_flush": bool(flush and ctx.is_cuda)},
        extra=extra or {}, timer=timing.timer, inner=timing.inner,
        throttled_fraction=throttled_fraction(tel), pcie_under_load=link_under_load(tel),
    )
