"""Low/expected/high ranges of estimates from the residuals of validated rows.

For a group of comparable rows (same kind of figure; same architecture when it has at least
``MIN_ROWS`` rows, else all architectures) with signed errors ``e = pred/meas - 1``, the
measured value lies in ``[pred / (1 + e_hi), pred / (1 + e_lo)]`` where ``e_lo``/``e_hi`` are
the 10th and 90th percentiles of ``e`` (an 80 % empirical prediction interval; Hyndman &
Athanasopoulos, *Forecasting: Principles and Practice*, §5.5, empirical residual quantiles).

The quantiles are written by ``rigwise validate --write-intervals`` to
``catalog/data/efficiency/intervals.toml`` so that an estimate needs no validation run; a test
checks the stored file against the current model's residuals.
"""

from __future__ import annotations

import functools
import statistics
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rigwise.catalog.load import DATA_DIR
from rigwise.model.efficiency import arch_key

if TYPE_CHECKING:
    from rigwise.validation.run import Result

MIN_ROWS = 5
"""Rows an architecture needs before it gets its own interval."""

INTERVALS_FILE = DATA_DIR / "efficiency" / "intervals.toml"


@dataclass(frozen=True, slots=True)
class Interval:
    """Signed-error percentiles of a group, the rows behind them, and their scope."""

    group: str
    scope: str
    rows: int
    err_lo: float
    err_hi: float

    def bounds(self, predicted: float) -> tuple[float, float]:
        """``(low, high)`` of the measured value for a prediction (rates or sizes), widened to
        contain the prediction itself (the model's value stays the expected one)."""
        a, b = predicted / (1.0 + self.err_hi), predicted / (1.0 + self.err_lo)
        return (min(a, b, predicted), max(a, b, predicted))


def _quantiles(errs: list[float]) -> tuple[float, float]:
    if len(errs) == 1:
        return errs[0], errs[0]
    q = statistics.quantiles(errs, n=10, method="inclusive")
    return q[0], q[-1]


def fit(results: Iterable[Result]) -> list[Interval]:
    """Intervals per group (scope ``all``) and per group and architecture with enough rows."""
    by: dict[tuple[str, str], list[float]] = {}
    for r in results:
        if r.error is None or r.row.expected_miss:
            continue
        by.setdefault((r.group, "all"), []).append(r.error)
        by.setdefault((r.group, arch_key(r.architecture)), []).append(r.error)
    out = []
    for (group, scope), errs in sorted(by.items()):
        if scope != "all" and len(errs) < MIN_ROWS:
            continue
        lo, hi = _quantiles(errs)
        out.append(Interval(group, scope, len(errs), round(lo, 3), round(hi, 3)))
    return out


def to_toml(intervals: list[Interval]) -> str:
    """The intervals file's text."""
    lines = ["# Written by `rigwise validate --write-intervals`: 10th/90th percentiles of the",
             "# signed errors (pred/meas - 1) of the validation rows, per group and architecture.",
             "# Rows marked expected_miss are left out. Do not edit by hand.", ""]
    for i in intervals:
        lines += ["[[interval]]", f'group = "{i.group}"', f'scope = "{i.scope}"',
                  f"rows = {i.rows}", f"err_lo = {i.err_lo}", f"err_hi = {i.err_hi}", ""]
    return "\n".join(lines)


@functools.cache
def stored(path: Path = INTERVALS_FILE) -> tuple[Interval, ...]:
    """The stored intervals (empty when the file does not exist)."""
    if not path.exists():
        return ()
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return tuple(Interval(d["group"], d["scope"], int(d["rows"]), float(d["err_lo"]),
                          float(d["err_hi"])) for d in data.get("interval", []))


@functools.cache
def lookup(group: str, architecture: str) -> Interval | None:
    """The interval for an estimate: its architecture's, else the group's, else None."""
    key = arch_key(architecture)
    found = {i.scope: i for i in stored() if i.group == group}
    return found.get(key) or found.get("all")
