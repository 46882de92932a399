"""Chart of benchmark runs (``rigwise bench --json``): :func:`bench_chart`, measured against
expected (model) and peak, as % of peak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rigwise.errors import InputError
from rigwise.report.charts_theme import _data

if TYPE_CHECKING:
    import altair as alt


def bench_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of measured vs expected: ``name``, ``kind`` (measured/expected), ``pct_of_peak``.

    Accepts ``comparisons`` (``rigwise bench --json``), ``results`` or ``measurements``: dicts
    with ``name`` (or ``case``/``suite``), ``measured`` (or ``value``), ``expected`` (or
    ``predicted``) and ``peak``, all in one unit per row; rows without a peak are left out.
    """
    raw = result.get("comparisons") or result.get("results") or result.get("measurements") or []
    rows = []
    for r in raw:
        name = str(r.get("name") or r.get("case") or r.get("suite") or "?")
        measured = r.get("measured", r.get("value"))
        expected = r.get("expected", r.get("predicted"))
        peak = r.get("peak")
        if measured is None or not peak:
            continue
        rows.append({"name": name, "kind": "measured", "pct_of_peak": measured / peak})
        if expected:
            rows.append({"name": name, "kind": "expected", "pct_of_peak": expected / peak})
    return rows


def bench_chart(result: Mapping[str, Any], *, width: int = 440) -> alt.TopLevelMixin:
    """Measured and expected (model) figures of benchmark runs, as % of the datasheet peak.

    Raises:
        InputError: no row with a measured value and a peak.
    """
    import altair as alt

    rows = bench_rows(result)
    if not rows:
        raise InputError("nothing to plot: no measurement with a known peak")
    chart: alt.TopLevelMixin = alt.Chart(_data(rows)).mark_bar(height=10).encode(
        x=alt.X("pct_of_peak:Q", title="% of datasheet peak", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1.05])),
        y=alt.Y("name:N", title=None, sort=None),
        yOffset="kind:N",
        color=alt.Color("kind:N", title=None,
                        scale=alt.Scale(domain=["measured", "expected"],
                                        range=["#3867d6", "#c3cbd8"])),
        tooltip=["name:N", "kind:N", alt.Tooltip("pct_of_peak:Q", format=".1%")],
    ).properties(width=width, title=alt.TitleParams(
        "measured vs expected", subtitle="% of the catalog's peak; grey: the model's estimate"))
    return chart
