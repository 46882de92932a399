"""Charts of one estimate (``rigwise estimate train|infer --json``):

  * :func:`memory_chart`: the memory breakdown of one estimate against the capacity;
  * :func:`roofline_chart`: a GPU's roofline (Williams et al., CACM 2009) with the ops placed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rigwise.errors import InputError
from rigwise.report.charts_theme import _data
from rigwise.units import GIB, GIGA, TERA

if TYPE_CHECKING:
    import altair as alt


def roofline_chart(data: Mapping[str, Any], *, width: int = 440) -> alt.TopLevelMixin:
    """A GPU's roofline with the workload's ops, from :func:`figures.roofline_data`.

    Log-log: arithmetic intensity (FLOP/byte) against attained FLOP/s, reported in TFLOPS.
    Point size is the op's share of the pass time. Kernels without matmul FLOPs (norms,
    elementwise) have no place on the chart; their share of the time is in the subtitle.

    Raises:
        InputError: no op with FLOPs to place.
    """
    import altair as alt

    ops = [o for o in data["ops"] if o.get("attained_flop_per_s")]
    if not ops:
        raise InputError("nothing to plot: no op with FLOPs")
    total = sum(o["time_s"] for o in data["ops"]) or 1.0
    phase_total: dict[str, float] = {}
    for o in data["ops"]:
        phase_total[o["phase"]] = phase_total.get(o["phase"], 0.0) + o["time_s"]
    mem_only = sum(o["time_s"] for o in data["ops"] if not o.get("attained_flop_per_s"))
    peak, bw = data["peak_flop_per_s"], data["memory_bytes_per_s"]
    lo = min(0.5, min(o["intensity_flop_per_byte"] for o in ops) / 2)
    hi = max(4 * data["ridge_flop_per_byte"], max(o["intensity_flop_per_byte"] for o in ops) * 2)
    roof = [{"intensity": x, "tflops": min(peak, bw * x) / TERA}
            for x in [*_logspace(lo, hi, 60), data["ridge_flop_per_byte"]]]
    roof.sort(key=lambda r: r["intensity"])
    points = [{"op": o["name"], "phase": o["phase"], "intensity": o["intensity_flop_per_byte"],
               "tflops": o["attained_flop_per_s"] / TERA, "bound": o["bound"],
               "share": o["time_s"] / (phase_total[o["phase"]] or 1.0)} for o in ops]
    phases = [p for p in _PHASE_COLORS if p in phase_total]
    floor = min(min(p["tflops"] for p in points), bw * lo / TERA) / 2
    x = alt.X("intensity:Q", title="arithmetic intensity, FLOP/byte",
              scale=alt.Scale(type="log", domain=[lo, hi]),
              axis=alt.Axis(values=_decades(lo, hi), format="~s"))
    y = alt.Y("tflops:Q", title=f"TFLOPS ({data['precision']})",
              scale=alt.Scale(type="log", domain=[floor, peak / TERA * 1.6]),
              axis=alt.Axis(values=_decades(floor, peak / TERA * 1.6), format="~s"))
    roof_line = alt.Chart(_data(roof)).mark_line(color="#1d2433", strokeWidth=2) \
        .encode(x=x, y=y)
    dots = alt.Chart(_data(points)).mark_circle(opacity=0.75).encode(
        x="intensity:Q", y="tflops:Q",
        size=alt.Size("share:Q", scale=alt.Scale(range=[30, 600]), legend=None),
        color=alt.Color("phase:N", title="pass", scale=alt.Scale(
            domain=phases, range=[_PHASE_COLORS[p] for p in phases])),
        tooltip=["op:N", "phase:N", "bound:N", alt.Tooltip("intensity:Q", format=",.3~r"),
                 alt.Tooltip("tflops:Q", format=",.3~r"), alt.Tooltip("share:Q", format=".1%")])
    label_rows = _top_labels(points)
    labels = alt.Chart(_data(label_rows)).mark_text(
        align="left", dx=8, fontSize=10, color="#3b4352").encode(
        x="intensity:Q", y="tflops:Q", text="op:N")
    note = [f"{data.get('gpu_name', data['gpu'])}: peak {peak / TERA:,.0f} TFLOPS, "
            f"{bw / GIGA:,.0f} GB/s; dot size: share of its pass",
            f"not drawn: kernels without matmul FLOPs ({mem_only / total:.0%} of the time)"]
    return alt.layer(roof_line, dots, labels).properties(
        width=width, height=300, title=alt.TitleParams("roofline", subtitle=note))


_PHASE_COLORS = {"forward": "#3867d6", "prefill": "#fa8231", "decode": "#8854d0"}


def _top_labels(points: Sequence[Mapping[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    """Labels for the ``n`` largest ops; ops drawn at nearly the same spot share one label."""
    labels: list[dict[str, Any]] = []
    for p in sorted(points, key=lambda p: -p["share"]):
        lx, ly = math.log10(p["intensity"]), math.log10(p["tflops"])
        near = next((q for q in labels if abs(q["lx"] - lx) < 0.3 and abs(q["ly"] - ly) < 0.2),
                    None)
        if near is not None:
            if p["op"] not in near["names"]:
                near["names"].append(p["op"])
        elif len(labels) < n:
            labels.append({"lx": lx, "ly": ly, "intensity": p["intensity"],
                           "tflops": p["tflops"], "names": [p["op"]]})
    return [{"intensity": q["intensity"], "tflops": q["tflops"],
             "op": ", ".join(q["names"][:3]) + (f" +{len(q['names']) - 3}"
                                                if len(q["names"]) > 3 else "")}
            for q in labels]


def _decades(lo: float, hi: float) -> list[float]:
    """Powers of ten from ``lo`` to ``hi``: the ticks and grid lines of a log axis."""
    return [10.0**e for e in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1)]


def _logspace(lo: float, hi: float, n: int) -> list[float]:
    a, b = math.log10(lo), math.log10(hi)
    return [10 ** (a + (b - a) * i / (n - 1)) for i in range(n)]


_MEMORY_PARTS = (("weights_bytes", "weights"), ("gradients_bytes", "gradients"),
                 ("optimizer_bytes", "optimizer states"), ("activations_bytes", "activations"),
                 ("kv_cache_bytes", "KV cache"), ("overhead_bytes", "framework overhead"))


def memory_chart(estimate: Mapping[str, Any], *, width: int = 440) -> alt.TopLevelMixin:
    """Stacked bar of the memory one GPU needs, against its capacity (GiB).

    Takes the JSON of ``rigwise estimate train|infer`` (its ``memory`` object).
    """
    import altair as alt

    mem = estimate["memory"]
    rows: list[dict[str, Any]] = []
    start = 0.0
    for i, (key, label) in enumerate(_MEMORY_PARTS):
        gib = (mem["breakdown"].get(key) or 0.0) / GIB
        if gib > 0:
            rows.append({"part": label, "order": i, "gib": gib, "x0": start, "x1": start + gib,
                         "mid": start + gib / 2, "text": f"{gib:.1f}"})
            start += gib
    cap = mem["capacity_bytes"] / GIB
    need = mem["per_gpu_bytes"] / GIB
    verdict = "fits" if estimate.get("fits", need <= cap) else "does not fit"
    parts = [label for _, label in _MEMORY_PARTS]
    x = alt.X("x0:Q", title="GiB", scale=alt.Scale(domain=[0, max(cap, need) * 1.05]))
    bars = alt.Chart(_data(rows)).mark_bar(height=34).encode(
        x=x, x2="x1:Q",
        color=alt.Color("part:N", title=None, scale=alt.Scale(domain=parts)),
        tooltip=["part:N", alt.Tooltip("gib:Q", format=".2f", title="GiB")])
    wide = [r for r in rows if r["gib"] >= 0.07 * max(cap, need)]
    text = alt.Chart(_data(wide)).mark_text(fontSize=10, color="white",
                                                       fontWeight=600).encode(
        x="mid:Q", text="text:N")
    cap_row = [{"cap": cap, "label": f"capacity {cap:.0f} GiB"}]
    rule = alt.Chart(_data(cap_row)).mark_rule(
        color="#d6312b", strokeWidth=2, strokeDash=[4, 3]).encode(x="cap:Q")
    cap_text = alt.Chart(_data(cap_row)).mark_text(
        align="right", dx=-4, dy=-26, fontSize=10, color="#d6312b").encode(
        x="cap:Q", text="label:N")
    title = alt.TitleParams("memory per GPU",
                            subtitle=f"{need:.1f} GiB of {cap:.0f} GiB: {verdict}")
    return alt.layer(bars, text, rule, cap_text).properties(width=width, height=70,
                                                           title=title)


def estimate_charts(estimate: Mapping[str, Any],
                    roofline: Mapping[str, Any] | None = None) -> list[alt.TopLevelMixin]:
    """The charts of one ``estimate``: memory breakdown, and the roofline when given."""
    charts: list[alt.TopLevelMixin] = [memory_chart(estimate)]
    if roofline and any(o.get("attained_flop_per_s") for o in roofline["ops"]):
        charts.append(roofline_chart(roofline))
    return charts
