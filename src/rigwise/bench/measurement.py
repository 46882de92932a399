"""Measurements: raw samples in seconds, their statistics, and the run that holds them.

Statistics follow ``torch.utils.benchmark.Measurement``: the median and the interquartile
range, with every raw sample kept (STYLE.md). The rate of a measurement is ``work / median``
where ``work`` is what one call does (FLOP, bytes, samples, tokens); ``best`` is
``work / min``, labelled as such (mamf-finder's "maximum achievable" figure).
"""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from dataclasses import dataclass, field
from typing import Any

from rigwise.probe.nvml import TelemetrySample


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary of samples (seconds): count, median, quartiles, extremes, relative IQR."""

    n: int
    median_s: float
    q1_s: float
    q3_s: float
    min_s: float
    max_s: float
    mean_s: float

    @property
    def iqr_rel(self) -> float:
        """Interquartile range over the median (0 for a single sample)."""
        return (self.q3_s - self.q1_s) / self.median_s if self.median_s > 0 else 0.0


def stats(samples_s: tuple[float, ...] | list[float]) -> Stats:
    """Statistics of raw samples. Raises ValueError for no samples."""
    xs = sorted(samples_s)
    if not xs:
        raise ValueError("no samples")
    if len(xs) == 1:
        q1 = q3 = xs[0]
    else:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return Stats(len(xs), statistics.median(xs), q1, q3, xs[0], xs[-1], statistics.fmean(xs))


@dataclass(frozen=True, slots=True)
class Measurement:
    """One benchmarked case.

    ``metric`` names the rate's unit: ``flop_per_s``, ``bytes_per_s``, ``samples_per_s``,
    ``tokens_per_s``. ``work`` is that unit's numerator per call. ``samples_s``: seconds per
    call, raw. ``kind`` selects the expectation band (``gemm``, ``memory_copy``, ``h2d``, ...).
    ``extra``: derived rates, e.g. ``busbw_bytes_per_s`` for collectives.
    ``throttled_fraction``: share of NVML samples during the case flagged throttled (None
    without telemetry). ``pcie_under_load``: the link generation and width seen meanwhile.
    """

    suite: str
    kind: str
    name: str
    metric: str
    work: float
    samples_s: tuple[float, ...]
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    timer: str = "perf_counter"
    inner: int = 1
    throttled_fraction: float | None = None
    pcie_under_load: tuple[int, int] | None = None

    @property
    def stats(self) -> Stats:
        """Statistics of the raw samples."""
        return stats(self.samples_s)

    @property
    def value(self) -> float:
        """The typical rate: work over the median time."""
        return self.work / self.stats.median_s

    @property
    def best(self) -> float:
        """The best rate seen: work over the fastest sample."""
        return self.work / self.stats.min_s


def new_run_id() -> str:
    """A fresh run id: UTC date and a random suffix, sortable by time."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass(slots=True)
class Run:
    """A benchmark run: where it ran, what it measured, and the telemetry meanwhile.

    ``device_kind`` is ``"cuda"`` or ``"cpu"``; ``catalog_id``/``architecture`` name the
    catalog GPU the run measured (None on CPU or for an unknown GPU). ``environment`` is the
    inventory (:mod:`rigwise.probe`) as JSON, with clock mode, versions and settings.
    """

    id: str
    started_at: str
    device_kind: str
    device_name: str
    catalog_id: str | None
    architecture: str | None
    suites: tuple[str, ...]
    command: str
    environment: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    telemetry: list[TelemetrySample] = field(default_factory=list)
    finished_at: str | None = None


def measurement_json(m: Measurement) -> dict[str, Any]:
    """A measurement as plain JSON (raw samples included, seconds)."""
    s = m.stats
    return {
        "suite": m.suite, "kind": m.kind, "name": m.name, "metric": m.metric, "work": m.work,
        "value": m.value, "best": m.best, "params": m.params, "extra": m.extra,
        "timer": m.timer, "inner": m.inner, "throttled_fraction": m.throttled_fraction,
        "pcie_under_load": list(m.pcie_under_load) if m.pcie_under_load else None,
        "stats": {"n": s.n, "median_s": s.median_s, "q1_s": s.q1_s, "q3_s": s.q3_s,
                  "min_s": s.min_s, "max_s": s.max_s, "iqr_rel": s.iqr_rel},
        "samples_s": list(m.samples_s),
    }


def measurement_from_json(d: dict[str, Any]) -> Measurement:
    """Inverse of :func:`measurement_json` (derived fields are recomputed, not trusted).

    Raises:
        KeyError, TypeError, ValueError: a malformed record.
    """
    samples = tuple(float(x) for x in d["samples_s"])
    if not samples or any(not (x > 0) for x in samples):
        raise ValueError("samples_s must hold positive seconds")
    link = d.get("pcie_under_load")
    return Measurement(
        suite=str(d["suite"]), kind=str(d["kind"]), name=str(d["name"]),
        metric=str(d["metric"]), work=float(d["work"]), samples_s=samples,
        params=dict(d.get("params") or {}),
        extra={k: float(v) for k, v in (d.get("extra") or {}).items()},
        timer=str(d.get("timer", "perf_counter")), inner=int(d.get("inner", 1)),
        throttled_fraction=None if d.get("throttled_fraction") is None
        else float(d["throttled_fraction"]),
        pcie_under_load=(int(link[0]), int(link[1])) if link else None,
    )
