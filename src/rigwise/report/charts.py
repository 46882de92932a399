"""Charts of rigwise results, drawn with Altair (Vega-Lite) and rendered by vl-convert.

Every chart function takes the JSON dict a command prints with ``--json`` (or the dicts of
:mod:`rigwise.report.figures`) and returns an Altair chart; :func:`to_svg`, :func:`to_png` and
:func:`save` render it without a browser or network. Altair is imported inside the functions
so that the CLI starts fast.

The charts live one family a module (:mod:`rigwise.report.charts_advice`,
:mod:`~rigwise.report.charts_estimate`, :mod:`~rigwise.report.charts_scaling`,
:mod:`~rigwise.report.charts_bench`), the theme and rendering in
:mod:`rigwise.report.charts_theme`; this module re-exports their public names and draws
the charts of a whole result (:func:`result_charts`, :func:`plot_result`,
:func:`plot_estimate`).

Charts:
  * :func:`value_chart`: throughput per dollar of each option, bars, best first (the
    layout of Dettmers' performance-per-dollar chart, "Which GPU(s) to get", 2023);
  * :func:`price_chart`: throughput against price with the Pareto front;
  * :func:`roofline_chart`: a GPU's roofline (Williams et al., CACM 2009) with the ops placed;
  * :func:`memory_chart`: the memory breakdown of one estimate against the capacity;
  * :func:`scaling_chart`: throughput and scaling efficiency against GPU count;
  * :func:`bench_chart`: measured against expected (model) and peak, as % of peak.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rigwise.errors import InputError
from rigwise.report.charts_advice import (
    advice_charts,
    price_chart,
    price_rows,
    value_chart,
    value_rows,
)
from rigwise.report.charts_bench import bench_chart, bench_rows
from rigwise.report.charts_estimate import estimate_charts, memory_chart, roofline_chart
from rigwise.report.charts_scaling import scaling_chart, scaling_rows
from rigwise.report.charts_theme import (
    FONT,
    SUFFIXES,
    THEME,
    VENDOR_COLORS,
    check_plot_path,
    save,
    short_name,
    spec,
    stack,
    to_png,
    to_svg,
)

if TYPE_CHECKING:
    import altair as alt

__all__ = [
    "FONT",
    "SUFFIXES",
    "THEME",
    "VENDOR_COLORS",
    "advice_charts",
    "bench_chart",
    "bench_rows",
    "check_plot_path",
    "estimate_charts",
    "memory_chart",
    "plot_estimate",
    "plot_result",
    "price_chart",
    "price_rows",
    "result_charts",
    "roofline_chart",
    "save",
    "scaling_chart",
    "scaling_rows",
    "short_name",
    "spec",
    "stack",
    "to_png",
    "to_svg",
    "value_chart",
    "value_rows",
]


def result_charts(data: Mapping[str, Any], kind: str) -> list[alt.TopLevelMixin]:
    """The charts for a result of ``kind`` (see :data:`rigwise.report.views.KINDS`); empty
    when there is nothing to draw."""
    from rigwise.report.figures import roofline_for_result

    if kind == "advise":
        return advice_charts(data)
    if kind.startswith("estimate"):
        return estimate_charts(data, roofline_for_result(dict(data)))
    if kind == "scale" and scaling_rows(data):
        return [scaling_chart(data)]
    if kind == "bench" and bench_rows(data):
        return [bench_chart(data)]
    return []


def plot_result(data: Mapping[str, Any], kind: str, path: Path) -> Path:
    """Write the charts of a result, one above the other, to ``path`` (``--plot``).

    Raises:
        InputError: a bad path, or nothing to draw (no option with a price, no curve).
    """
    check_plot_path(path)
    charts = result_charts(data, kind)
    if not charts:
        raise InputError(f"--plot: nothing to draw for this {kind} result")
    return save(stack(charts), path)


def plot_estimate(estimate: Mapping[str, Any], path: Path, *, model: Any = None,
                  gpu: Any = None, config: Any = None) -> Path:
    """Write the memory breakdown and roofline of one estimate to ``path`` (``--plot``).

    ``model``, ``gpu`` and ``config`` (the objects the estimate ran on) place the ops on the
    roofline; without them it is rebuilt from the built-in catalog when possible.

    Raises:
        InputError: a bad path.
    """
    from rigwise.errors import RigwiseError
    from rigwise.report.figures import roofline_data, roofline_for_result

    check_plot_path(path)
    roof = None
    if model is not None and gpu is not None and config is not None:
        try:
            roof = roofline_data(model, gpu, config)
        except (TypeError, RigwiseError):
            roof = None
    else:
        roof = roofline_for_result(dict(estimate))
    return save(stack(estimate_charts(estimate, roof)), path)
