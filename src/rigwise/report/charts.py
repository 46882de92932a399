"""Charts of rigwise results, drawn with Altair (Vega-Lite) and rendered by vl-convert.

Every chart function takes the JSON dict a command prints with ``--json`` (or the dicts of
:mod:`rigwise.report.figures`) and returns an Altair chart; :func:`to_svg`, :func:`to_png` and
:func:`save` render it without a browser or network. Altair is imported inside the functions
so that the CLI starts fast.

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

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rigwise.errors import InputError
from rigwise.report.figures import pareto_front
from rigwise.units import GIB, GIGA, TERA

if TYPE_CHECKING:
    import altair as alt

VENDOR_COLORS = {"nvidia": "#5e9a00", "amd": "#d6312b", "intel": "#1f6fb2",
                 "google": "#8a5cc2", "apple": "#6b6b6b"}
"""One colour per vendor, the same in every chart."""

FONT = "Liberation Sans, DejaVu Sans, Helvetica, Arial, sans-serif"
THEME: dict[str, Any] = {
    "font": FONT,
    "background": "#ffffff",
    "view": {"stroke": None},
    "title": {"fontSize": 14, "fontWeight": 600, "anchor": "start", "color": "#1d2433",
              "subtitleColor": "#5b6475", "subtitleFontSize": 11},
    "axis": {"labelFontSize": 11, "titleFontSize": 11, "titleFontWeight": 500,
             "titleColor": "#3b4352", "labelColor": "#3b4352", "gridColor": "#e8ebf0",
             "domainColor": "#9aa3b2", "tickColor": "#9aa3b2"},
    "legend": {"labelFontSize": 11, "titleFontSize": 11, "orient": "bottom"},
    "range": {"category": ["#3867d6", "#f7b731", "#20bf6b", "#eb3b5a", "#8854d0",
                           "#0fb9b1", "#fa8231", "#4b6584"]},
}
"""Vega-Lite config applied to every chart: one quiet, readable style."""

SUFFIXES = (".png", ".svg", ".html", ".json")


def short_name(name: str) -> str:
    """A GPU's display name without the vendor's brand words (as the tables show it)."""
    for prefix in ("NVIDIA GeForce ", "NVIDIA ", "AMD Radeon ", "AMD Instinct ", "AMD ",
                   "Intel ", "Google ", "Apple "):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _vendor(gpu_id: str) -> str:
    head = gpu_id.split("-", 1)[0]
    return head if head in VENDOR_COLORS else "other"


def _data(rows: Sequence[Mapping[str, Any]]) -> alt.Data:
    import altair as alt

    return alt.Data(values=list(rows))  # type: ignore[no-untyped-call]


def _vendor_scale(rows: Sequence[Mapping[str, Any]]) -> Any:
    import altair as alt

    colors = {**VENDOR_COLORS, "other": "#999999"}
    present = [v for v in colors if any(r["vendor"] == v for r in rows)]
    return alt.Scale(domain=present, range=[colors[v] for v in present])


def _option_label(o: Mapping[str, Any]) -> str:
    n = int(o.get("gpus") or 1)
    name = short_name(str(o.get("name") or o["gpu"]))
    return name if n == 1 else f"{n}x {name}"


def _cloud(advice: Mapping[str, Any]) -> bool:
    return advice.get("market") == "cloud"


def value_rows(advice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of the perf-per-dollar chart: fitting, priced options, best first.

    ``value`` is throughput per $1,000 of purchase price (new/used) or per dollar-hour
    (cloud), in the option's throughput unit.
    """
    scale = 1.0 if _cloud(advice) else 1000.0
    rows = [{"label": _option_label(o), "gpu": o["gpu"], "vendor": _vendor(o["gpu"]),
             "value": o["throughput_per_usd"] * scale, "unit": o["throughput"]["unit"],
             "setting": o.get("setting", "")}
            for o in advice.get("options", [])
            if o.get("fits") and o.get("throughput_per_usd")]
    rows.sort(key=lambda r: -r["value"])
    return rows


def value_chart(advice: Mapping[str, Any], *, width: int = 440) -> alt.TopLevelMixin:
    """Bars of throughput per dollar for each option of ``rigwise advise --json``.

    Raises:
        InputError: no option that fits has a price.
    """
    import altair as alt

    rows = value_rows(advice)
    if not rows:
        raise InputError("nothing to plot: no option that fits has a price")
    unit = rows[0]["unit"]
    per = "per $/h" if _cloud(advice) else "per $1,000"
    title = alt.TitleParams(f"{unit} {per}", subtitle=_advice_subtitle(advice))
    base = alt.Chart(_data(rows), title=title, width=width,
                     height=max(60, 22 * len(rows)))
    y = alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=220))
    bars = base.mark_bar(cornerRadiusEnd=2, height=16).encode(
        x=alt.X("value:Q", title=f"{unit} {per}", axis=alt.Axis(grid=True)),
        y=y, color=alt.Color("vendor:N", scale=_vendor_scale(rows), title="vendor"),
        tooltip=["label:N", alt.Tooltip("value:Q", format=",.3~r"), "setting:N"])
    text = base.mark_text(align="left", dx=4, fontSize=10, color="#3b4352").encode(
        x="value:Q", y=y, text=alt.Text("value:Q", format=",.3~r"))
    return alt.layer(bars, text)


def _advice_subtitle(advice: Mapping[str, Any]) -> str:
    market = advice.get("market", "new")
    budget = (advice.get("constraints") or {}).get("budget_usd")
    money = f", budget ${budget:,.0f}" if budget else ""
    return f"{advice.get('task', '')} {advice.get('model', '')}, {market} market{money}"


def price_rows(advice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of the price/throughput scatter; ``pareto`` marks the Pareto front."""
    cloud = _cloud(advice)
    rows = []
    for o in advice.get("options", []):
        price = o["price"]["usd_per_h"] if cloud else o["price"]["usd"]
        if not o.get("fits") or not price:
            continue
        rows.append({"label": _option_label(o), "gpu": o["gpu"], "vendor": _vendor(o["gpu"]),
                     "price": price, "throughput": o["throughput"]["value"],
                     "unit": o["throughput"]["unit"], "pareto": False})
    for i in pareto_front([(r["price"], r["throughput"]) for r in rows]):
        rows[i]["pareto"] = True
    return rows


def price_chart(advice: Mapping[str, Any], *, width: int = 440) -> alt.TopLevelMixin:
    """Throughput against price with the Pareto front, from ``rigwise advise --json``.

    Raises:
        InputError: no option that fits has a price.
    """
    import altair as alt

    rows = price_rows(advice)
    if not rows:
        raise InputError("nothing to plot: no option that fits has a price")
    unit = rows[0]["unit"]
    price_title = "price, USD per hour" if _cloud(advice) else "price, USD"
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["price"])
    base = alt.Chart(_data(rows), width=width, height=300,
                     title=alt.TitleParams(f"{unit} against price",
                                           subtitle="joined and labelled: the Pareto front "
                                                    "(nothing cheaper is faster)"))
    prices = [r["price"] for r in rows]
    log_x = max(prices) / min(prices) > 8
    x = alt.X("price:Q", title=price_title + (" (log scale)" if log_x else ""),
              scale=alt.Scale(type="log") if log_x else alt.Scale(zero=False, nice=True))
    y = alt.Y("throughput:Q", title=unit, scale=alt.Scale(zero=True))
    line = alt.Chart(_data(front)).mark_line(
        interpolate="step-after", color="#8b95a7", strokeDash=[5, 3], strokeWidth=1.5
    ).encode(x=x, y="throughput:Q")
    points = base.mark_circle(size=90, opacity=0.9, stroke="white", strokeWidth=1).encode(
        x=x, y=y, color=alt.Color("vendor:N", scale=_vendor_scale(rows), title="vendor"),
        tooltip=["label:N", alt.Tooltip("price:Q", format=",.2f"),
                 alt.Tooltip("throughput:Q", format=",.4~r")])
    labels = alt.Chart(_data(_thin_labels(front, rows, log_x=log_x))).mark_text(
        align="left", dx=7, dy=-7, fontSize=10, color="#3b4352").encode(
        x="price:Q", y="throughput:Q", text="label:N")
    return alt.layer(line, points, labels)


def _thin_labels(front: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], *,
                 log_x: bool) -> list[Mapping[str, Any]]:
    """The front's points whose labels do not crowd an already labelled point (within 7 %
    of the axis spans), keeping the more expensive, faster one of each crowded pair."""

    def pos(r: Mapping[str, Any]) -> tuple[float, float]:
        px = math.log10(r["price"]) if log_x else r["price"]
        return px, r["throughput"]

    xs = [pos(r)[0] for r in rows]
    ys = [r["throughput"] for r in rows]
    span_x = (max(xs) - min(xs)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    kept: list[Mapping[str, Any]] = []
    for r in sorted(front, key=lambda r: -r["price"]):
        x, y = pos(r)
        if all(abs(x - pos(k)[0]) / span_x > 0.07 or abs(y - pos(k)[1]) / span_y > 0.07
               for k in kept):
            kept.append(r)
    return kept


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


def spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The Vega-Lite spec of ``chart`` with the rigwise theme."""
    d = chart.to_dict()
    d["config"] = {**THEME, **d.get("config", {})}
    return d


def to_svg(chart: alt.TopLevelMixin) -> str:
    """Render ``chart`` to an SVG document (no browser, no network)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(spec(chart))


def to_png(chart: alt.TopLevelMixin, *, scale: float = 2.0) -> bytes:
    """Render ``chart`` to PNG bytes at ``scale`` times the CSS pixel size."""
    import vl_convert as vlc

    return vlc.vegalite_to_png(spec(chart), scale=scale)


def stack(charts: Sequence[alt.TopLevelMixin]) -> alt.TopLevelMixin:
    """Charts one above the other (one file for ``--plot``)."""
    import altair as alt

    if len(charts) == 1:
        return charts[0]
    out: alt.TopLevelMixin = alt.vconcat(*charts, spacing=28).resolve_scale(  # type: ignore[arg-type]
        color="independent", size="independent")
    return out


def save(chart: alt.TopLevelMixin, path: Path) -> Path:
    """Write ``chart`` to ``path``; the suffix picks the format: .png, .svg, .html, .json.

    HTML embeds the Vega runtime (no network needed to open it). Raises InputError for
    another suffix or a folder that does not exist.
    """
    check_plot_path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        path.write_bytes(to_png(chart))
    elif suffix == ".svg":
        path.write_text(to_svg(chart))
    elif suffix == ".json":
        import json

        path.write_text(json.dumps(spec(chart), indent=2))
    else:
        import vl_convert as vlc

        path.write_text(vlc.vegalite_to_html(spec(chart), bundle=True))
    return path


def advice_charts(advice: Mapping[str, Any]) -> list[alt.TopLevelMixin]:
    """The charts of one ``advise`` result: perf per dollar, and throughput vs price.

    Empty when no option that fits has a price.
    """
    if not value_rows(advice):
        return []
    return [value_chart(advice), price_chart(advice)]


def estimate_charts(estimate: Mapping[str, Any],
                    roofline: Mapping[str, Any] | None = None) -> list[alt.TopLevelMixin]:
    """The charts of one ``estimate``: memory breakdown, and the roofline when given."""
    charts: list[alt.TopLevelMixin] = [memory_chart(estimate)]
    if roofline and any(o.get("attained_flop_per_s") for o in roofline["ops"]):
        charts.append(roofline_chart(roofline))
    return charts


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


def check_plot_path(path: Path) -> None:
    """Fail early on a ``--plot`` path that :func:`save` would refuse (InputError)."""
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"--plot {path}: use a file ending in {', '.join(SUFFIXES)}")
    if not path.parent.exists():
        raise InputError(f"--plot {path}: folder {path.parent} does not exist")


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
