"""NVML telemetry sampled in a background thread while benchmarks run.

Clocks, power, temperature, clock-event reasons and the PCIe link of every GPU, every
``interval_s`` (10 Hz by default, bench-tools.md §6.6). A sample is flagged ``throttled`` by
:func:`rigwise.probe.nvml.sample`. Without NVML the sampler records nothing and says so.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from rigwise.probe.nvml import Nvml, TelemetrySample, sample


class TelemetrySampler:
    """Context manager: ``with TelemetrySampler(nv) as tel: ...; tel.window(t0, t1)``.

    Times are ``time.perf_counter()`` seconds, comparable with the caller's.
    """

    def __init__(self, nv: Nvml | None, *, interval_s: float = 0.1) -> None:
        self.nv = nv
        self.interval_s = interval_s
        self.samples: list[TelemetrySample] = []
        self._handles: list[Any] = nv.handles() if nv is not None and nv.ok else []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """True if there is at least one GPU to sample."""
        return bool(self._handles)

    def _loop(self) -> None:
        assert self.nv is not None
        while not self._stop.is_set():
            now = time.perf_counter()
            batch = [sample(self.nv, h, i, now) for i, h in enumerate(self._handles)]
            with self._lock:
                self.samples.extend(batch)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> TelemetrySampler:
        if self.active:
            self._thread = threading.Thread(target=self._loop, name="rigwise-telemetry",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def window(self, t0: float, t1: float, gpu: int | None = None) -> list[TelemetrySample]:
        """Samples taken between ``t0`` and ``t1`` (of one GPU if ``gpu`` is given)."""
        with self._lock:
            return [s for s in self.samples if t0 <= s.t_s <= t1
                    and (gpu is None or s.gpu_index == gpu)]


def throttled_fraction(samples: list[TelemetrySample]) -> float | None:
    """Share of samples flagged throttled; None without samples."""
    return sum(s.throttled for s in samples) / len(samples) if samples else None


def link_under_load(samples: list[TelemetrySample]) -> tuple[int, int] | None:
    """The highest PCIe (generation, width) seen in ``samples``; None if never read."""
    seen = [(s.pcie_gen, s.pcie_width) for s in samples
            if s.pcie_gen is not None and s.pcie_width is not None]
    return max(seen) if seen else None
