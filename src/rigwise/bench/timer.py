"""Timing of one callable on a GPU or the CPU, with the method of nvbench and do_bench.

* **GPU**: CUDA events around each sample (``torch.cuda.Event(enable_timing=True)``), so
  the time is the device's, not the host's; an untimed warm-up first (context creation,
  cuBLAS heuristics, allocator growth, clocks leaving idle); between samples a write of a
  buffer larger than the L2 cache, outside the timed region, so every sample starts cold
  (triton ``do_bench``, nvbench "cold" measurements).
* **CPU**: ``time.perf_counter`` around each sample (no cache flush; CPU caches are the
  user's normal condition for the tiny CPU sizes).
* **Enough samples**: at least ``min_samples`` and ``min_time_s`` of measured time, then stop
  when the relative interquartile range is below ``target_iqr_rel`` or at ``max_samples`` /
  ``max_time_s`` (nvbench's noise-based stop rule, with IQR in place of the stdev).
* Calls too short for the timer are repeated ``inner`` times per sample (``blocked_autorange``
  in ``torch.utils.benchmark``); samples are reported per call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rigwise import units
from rigwise.bench.measurement import stats


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """Stop rule and warm-up. Times in seconds."""

    warmup_s: float = 0.05
    warmup_calls: int = 3
    min_samples: int = 10
    max_samples: int = 200
    min_time_s: float = 0.2
    max_time_s: float = 10.0
    target_iqr_rel: float = 0.02
    min_sample_s: float = 1e-3
    flush: bool = True


QUICK = TimerConfig(warmup_s=0.0, warmup_calls=2, min_samples=5, max_samples=20,
                    min_time_s=0.0, max_time_s=2.0, min_sample_s=2e-4)


@dataclass(frozen=True, slots=True)
class Timing:
    """Raw per-call samples (seconds), calls per sample, and the clock used."""

    samples_s: tuple[float, ...]
    inner: int
    timer: str


class _CpuClock:
    name = "perf_counter"

    def time(self, fn: Callable[[], Any], inner: int) -> float:
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        return (time.perf_counter() - t0) / inner

    def flush(self) -> None:
        return None


class _CudaClock:
    name = "cuda-events"

    def __init__(self, torch: Any, device: Any, flush_bytes: int, flush: bool) -> None:
        self.torch = torch
        self.buf = (torch.empty(flush_bytes // 4, dtype=torch.int32, device=device)
                    if flush and flush_bytes > 0 else None)

    def time(self, fn: Callable[[], Any], inner: int) -> float:
        cuda = self.torch.cuda
        start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end)) / units.KILO / inner  # elapsed_time is in ms

    def flush(self) -> None:
        if self.buf is not None:
            self.buf.zero_()


def measure(fn: Callable[[], Any], *, device: str = "cpu", config: TimerConfig = TimerConfig(),
            flush_bytes: int = 256 * units.MIB, tick: Callable[[], None] | None = None) -> Timing:
    """Time ``fn`` (which does the work once) on ``device`` (``"cpu"`` or ``"cuda[:i]"``).

    ``flush_bytes`` should be at least twice the L2 cache (256 MiB covers H100's 50 MiB and
    B200's 126 MiB). ``tick`` is called after each sample (for a progress bar).

    Raises:
        RuntimeError: from ``fn`` itself, or CUDA errors.
    """
    clock: _CpuClock | _CudaClock
    if device.startswith("cuda"):
        import torch

        clock = _CudaClock(torch, torch.device(device), flush_bytes, config.flush)
    else:
        clock = _CpuClock()
    t_end = time.perf_counter() + config.warmup_s
    first = clock.time(fn, 1)  # the cold call: context, heuristics, allocator
    for _ in range(max(0, config.warmup_calls - 1)):
        first = min(first, clock.time(fn, 1))
    while time.perf_counter() < t_end:
        first = min(first, clock.time(fn, 1))
    inner = max(1, math.ceil(config.min_sample_s / first)) if first > 0 else 1
    inner = min(inner, 10_000)
    samples: list[float] = []
    deadline = time.perf_counter() + config.max_time_s
    while True:
        clock.flush()
        samples.append(clock.time(fn, inner))
        if tick is not None:
            tick()
        if _done(samples, inner, config) or time.perf_counter() > deadline:
            break
    return Timing(tuple(samples), inner, clock.name)


def _done(samples: list[float], inner: int, cfg: TimerConfig) -> bool:
    n = len(samples)
    if n >= cfg.max_samples:
        return True
    if n < cfg.min_samples or sum(samples) * inner < cfg.min_time_s:
        return False
    return stats(samples).iqr_rel <= cfg.target_iqr_rel
