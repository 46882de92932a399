"""Fit an inference engine's decode constants from published decode speeds.

Batch-1 decode is memory-bound (perf-models.md §7.6): every token reads the weights and the
KV cache once, in many short kernels. The time of one token on a device with nominal bandwidth
``B`` is modelled as

``1 / (tokens/s) = sum over kernels of max(bytes_k / (eta · B), tau)``   (host-issued)
``1 / (tokens/s) = sum over kernels of bytes_k / (eta · B) + tau``         (graph replay)

with rigwise's own kernels and bytes for the model and weight format
(:func:`rigwise.model.infer.infer_pass_ops`): ``eta`` is the share of the nominal bandwidth the
engine's kernels reach. ``tau`` is, for a backend whose host launches every kernel
(``host_issued`` in the efficiency data: Metal, HIP, CUDA before graphs), the host's time to
issue one kernel, which only a longer kernel hides (:func:`rigwise.model.step.issue_bound_shares`);
for a backend replaying a CUDA graph, the gap each kernel adds (the roofline of Williams et al.
2009 per kernel; NVIDIA, "Getting Started with CUDA Graphs", 2019, on launch overhead). ``eta``
and ``tau`` minimise the squared relative errors, on a grid refined three times.

The points live in ``tests/validation/calibration/*.toml`` (a ``[set.<name>]`` table per fit, the
engine and vendor it calibrates, and ``[[point]]`` rows with their sources).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from rigwise.catalog.load import catalog
from rigwise.errors import InputError
from rigwise.model.efficiency import engine_efficiency
from rigwise.model.infer import InferConfig, infer_pass_ops
from rigwise.model.roofline import op_time
from rigwise.workload.models import get_model


class FitSet(BaseModel):
    """What one fit calibrates: ``targets`` are engine entries of the efficiency data,
    ``"<engine>"`` for the engine's own values or ``"<engine>:<vendor>"`` for its backend on
    that vendor's GPUs (``[engine.<engine>.<vendor>]``)."""

    model_config = ConfigDict(extra="forbid")
    targets: list[str] = Field(min_length=1)
    note: str = ""

    @property
    def engine(self) -> str:
        """The engine whose passes are timed (the first target's)."""
        return self.targets[0].split(":")[0]


class Point(BaseModel):
    """One published batch-1 decode speed (llama-bench ``tg128``)."""

    model_config = ConfigDict(extra="forbid")
    set: str
    device: str
    gpu: str
    bandwidth_gb_per_s: float | None = Field(default=None, gt=0)
    model: str
    weights: str
    tokens_per_s: float = Field(gt=0)
    source: str
    source_title: str
    as_of: dt.date
    notes: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Fit:
    """A fitted ``eta`` (share of nominal bandwidth) and ``tau`` (seconds per kernel), and
    each point's predicted and measured tokens/s."""

    name: str
    targets: tuple[str, ...]
    eta: float
    tau_s: float
    points: tuple[tuple[Point, float], ...]

    @property
    def mape(self) -> float:
        """Mean absolute relative error of the fit over its points (0..1)."""
        return sum(abs(p / pt.tokens_per_s - 1) for pt, p in self.points) / len(self.points)


def load(path: Path) -> tuple[dict[str, FitSet], list[Point]]:
    """The sets and points of a calibration file.

    Raises:
        InputError: an unreadable file, a malformed point, or a point of an unknown set.
    """
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
        sets = {k: FitSet(**v) for k, v in raw.get("set", {}).items()}
        points = [Point(**p) for p in raw.get("point", [])]
    except (OSError, tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        raise InputError(f"cannot read calibration points {path}: {exc}") from None
    for p in points:
        if p.set not in sets:
            raise InputError(f"{path}: point on {p.device} names unknown set {p.set!r}")
    return sets, points


def _kernels(p: Point, engine: str) -> list[tuple[float, float, int]]:
    """Per modelled kernel of one decode token: (seconds at the full nominal bandwidth,
    compute seconds, instances)."""
    gpu = catalog().gpu(p.gpu)
    if p.bandwidth_gb_per_s is not None:
        gpu = dataclasses.replace(gpu, memory_bandwidth_bytes_per_s=p.bandwidth_gb_per_s * 1e9)
    cfg = InferConfig(weights=p.weights, batch_size=1, prompt_tokens=0, output_tokens=128,
                      engine=engine)
    dev, passes = infer_pass_ops(get_model(p.model), gpu, cfg)
    eta_used = dev.memory_bytes_per_s / gpu.memory_bandwidth_bytes_per_s
    out = []
    for op in passes["decode"]:
        t, compute_bound = op_time(dev, op)
        out.append((0.0, t, op.count) if compute_bound else (t * eta_used, 0.0, op.count))
    return out


def _token_s(kernels: list[tuple[float, float, int]], eta: float, tau: float,
             host_issued: bool) -> float:
    if host_issued:
        return sum(max(m / eta + c, tau) * n for m, c, n in kernels)
    return sum((m / eta + c + tau) * n for m, c, n in kernels)


def _loss(rows: list[tuple[list[tuple[float, float, int]], Point]], eta: float,
          tau: float, host_issued: bool) -> float:
    return sum((p.tokens_per_s * _token_s(k, eta, tau, host_issued) - 1.0) ** 2
               for k, p in rows)


def fit(name: str, fit_set: FitSet, points: list[Point]) -> Fit:
    """``eta`` and ``tau`` of one set with the least squared relative error of the time per
    token (see the module docstring); ``eta`` in 0.2..1.2, ``tau`` in 0..50 us.

    Raises:
        InputError: fewer than two points.
    """
    mine = [p for p in points if p.set == name]
    if len(mine) < 2:
        raise InputError(f"calibration set {name!r} needs at least two points")
    rows = [(_kernels(p, fit_set.engine), p) for p in mine]
    vendor = fit_set.targets[0].partition(":")[2]
    host = engine_efficiency(fit_set.engine, vendor).host_issued
    lo_e, hi_e, lo_t, hi_t = 0.2, 1.2, 0.0, 50e-6
    best = (lo_e, lo_t)
    for _ in range(4):
        steps = 40
        grid = [(lo_e + (hi_e - lo_e) * i / steps, lo_t + (hi_t - lo_t) * j / steps)
                for i in range(steps + 1) for j in range(steps + 1)]
        best = min(grid, key=lambda g: _loss(rows, g[0], g[1], host))
        de, dt_ = (hi_e - lo_e) / steps, (hi_t - lo_t) / steps
        lo_e, hi_e = max(0.05, best[0] - 2 * de), best[0] + 2 * de
        lo_t, hi_t = max(0.0, best[1] - 2 * dt_), best[1] + 2 * dt_
    eta, tau = best
    predicted = tuple((p, 1.0 / _token_s(k, eta, tau, host)) for k, p in rows)
    return Fit(name, tuple(fit_set.targets), eta, tau, predicted)


def fit_file(path: Path) -> list[Fit]:
    """Every set of a calibration file, fitted."""
    sets, points = load(path)
    return [fit(name, s, points) for name, s in sets.items()]
