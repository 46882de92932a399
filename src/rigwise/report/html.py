"""``rigwise report``: one self-contained HTML file for a result.

The page holds the key figures (with their ranges where the result has ``*_low``/``*_high``
fields), the charts as inline SVG, the tables, the assumptions and the sources of every GPU
and model shown; the CSS is inline and nothing is fetched from a network, so the file opens
anywhere. Jinja2 renders the templates in ``report/templates`` with autoescaping on.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rigwise.report.views import Linker, detect_kind, view

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).parent / "templates"


def stylesheet() -> str:
    """The CSS shared by the report and the web app."""
    return (TEMPLATES / "style.css").read_text()


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report templates (autoescaping HTML)."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              trim_blocks=False, lstrip_blocks=False)


def chart_svgs(data: Mapping[str, Any], kind: str) -> list[str]:
    """The charts of a result rendered as SVG documents (without the XML prolog)."""
    from rigwise.report.charts import result_charts, to_svg

    out = []
    for c in result_charts(data, kind):
        svg = to_svg(c)
        out.append(svg[svg.index("<svg"):] if "<svg" in svg else svg)
    return out


def render_report(data: Mapping[str, Any], *, kind: str | None = None,
                  link: Linker | None = None) -> str:
    """The self-contained HTML report of a result (the ``--json`` dict of a command).

    Raises:
        InputError: ``data`` is not a rigwise result.
    """
    from rigwise import __version__

    kind = kind or detect_kind(data)
    v = view(data, kind, link=link)
    return environment().get_template("report.html.j2").render(
        v=v, charts=chart_svgs(data, kind), css=stylesheet(), version=__version__,
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        raw=json.dumps(data, indent=2))
