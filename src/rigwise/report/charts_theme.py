"""What every rigwise chart shares: vendor colours, the Vega-Lite theme, data helpers, and
rendering with vl-convert (:func:`spec`, :func:`to_svg`, :func:`to_png`, :func:`stack`,
:func:`save`) without a browser or network. Altair is imported inside the functions so that
the CLI starts fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rigwise.errors import InputError

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


def check_plot_path(path: Path) -> None:
    """Fail early on a ``--plot`` path that :func:`save` would refuse (InputError)."""
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"--plot {path}: use a file ending in {', '.join(SUFFIXES)}")
    if not path.parent.exists():
        raise InputError(f"--plot {path}: folder {path.parent} does not exist")
