"""Chart of a scaling curve (``rigwise scale --curve --json``): :func:`scaling_chart`,
throughput and scaling efficiency against GPU count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rigwise.errors import InputError
from rigwise.report.charts_theme import _data

if TYPE_CHECKING:
    import altair as alt


def scaling_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Points of a scaling curve: ``gpus``, ``throughput``, ``ideal``, ``efficiency``.

    Accepts ``curve`` (or ``points``) as a list of dicts with ``gpus`` and one of
    ``throughput`` (a number or ``{"value": ...}``), ``samples_per_s``, ``tokens_per_s``;
    ``efficiency`` is computed against linear scaling from the smallest count when absent.
    """
    raw = result.get("curve") or result.get("points") or []
    rows = []
    for p in raw:
        thr = p.get("throughput")
        if isinstance(thr, Mapping):
            thr = thr.get("tokens_per_s") or thr.get("samples_per_s") or thr.get("value")
        thr = thr or p.get("tokens_per_s") or p.get("samples_per_s")
        if thr:
            rows.append({"gpus": int(p["gpus"]), "throughput": float(thr),
                         "efficiency": p.get("efficiency", p.get("scaling_efficiency"))})
    rows.sort(key=lambda r: r["gpus"])
    if rows:
        base = rows[0]["throughput"] / rows[0]["gpus"]
        for r in rows:
            r["ideal"] = base * r["gpus"]
            if r["efficiency"] is None:
                r["efficiency"] = r["throughput"] / r["ideal"]
    return rows


def scaling_chart(result: Mapping[str, Any], *, width: int = 440) -> alt.TopLevelMixin:
    """Throughput against GPU count with linear scaling dashed, labelled with efficiency.

    Raises:
        InputError: no curve in ``result``.
    """
    import altair as alt

    rows = scaling_rows(result)
    if not rows:
        raise InputError("nothing to plot: no scaling curve (use rigwise scale --curve)")
    raw = result.get("curve") or result.get("points") or []
    tokens = any(isinstance(p.get("throughput"), Mapping) and p["throughput"].get("tokens_per_s")
                 for p in raw)
    unit = result.get("throughput_unit") or result.get("unit") or (
        "tokens/s" if tokens else "samples/s")
    x = alt.X("gpus:Q", title="GPUs", scale=alt.Scale(type="log", base=2),
              axis=alt.Axis(values=[r["gpus"] for r in rows], format="d"))
    base = alt.Chart(_data(rows))
    ideal = base.mark_line(strokeDash=[5, 3], color="#8b95a7").encode(x=x, y="ideal:Q")
    line = base.mark_line(point=True, color="#3867d6").encode(
        x=x, y=alt.Y("throughput:Q", title=str(unit), axis=alt.Axis(format="~s")),
        tooltip=["gpus:Q", alt.Tooltip("throughput:Q", format=",.4~r"),
                 alt.Tooltip("efficiency:Q", format=".0%")])
    text = base.mark_text(dy=-10, fontSize=10, color="#3b4352").encode(
        x=x, y="throughput:Q", text=alt.Text("efficiency:Q", format=".0%"))
    return alt.layer(ideal, line, text).properties(
        width=width, height=280,
        title=alt.TitleParams("scaling", subtitle="dashed: linear scaling; labels: efficiency"))
