"""Charts of ``rigwise advise --json``:

  * :func:`value_chart`: throughput per dollar of each option, bars, best first (the
    layout of Dettmers' performance-per-dollar chart, "Which GPU(s) to get", 2023);
  * :func:`price_chart`: throughput against price with the Pareto front.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rigwise.errors import InputError
from rigwise.report.charts_theme import _data, _vendor, _vendor_scale, short_name
from rigwise.report.figures import pareto_front

if TYPE_CHECKING:
    import altair as alt


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


def advice_charts(advice: Mapping[str, Any]) -> list[alt.TopLevelMixin]:
    """The charts of one ``advise`` result: perf per dollar, and throughput vs price.

    Empty when no option that fits has a price.
    """
    if not value_rows(advice):
        return []
    return [value_chart(advice), price_chart(advice)]
