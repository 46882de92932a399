"""``rigwise models list|show``: the built-in workload catalog."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from rigwise.cli.common import console, model_by_name, print_json
from rigwise.workload.models import builtin_models
from rigwise.workload.params import count_params
from rigwise.workload.schema import CnnShape, Model, TransformerShape

app = typer.Typer(help="Browse the built-in models.", no_args_is_help=True)


def _params(m: Model) -> int:
    return count_params(m.shape).total if isinstance(m.shape, TransformerShape) \
        else m.shape.params


def _summary(m: Model) -> dict[str, object]:
    s = m.shape
    out: dict[str, object] = {"id": m.id, "name": m.name, "params": _params(m),
                              "source": m.source.model_dump(mode="json")}
    if isinstance(s, TransformerShape):
        out["shape"] = s.model_dump()
        out["active_params"] = count_params(s).active
    elif isinstance(s, CnnShape):
        out["shape"] = {"kind": "cnn", "layers": len(s.layers), "image_size": s.image_size}
    else:
        out["shape"] = {"kind": "traced", "kernels": len(s.ops)}
    return out


@app.command("list")
def list_models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the built-in models with their parameter counts."""
    models = sorted(builtin_models().values(), key=_params)
    if as_json:
        print_json({"models": [_summary(m) for m in models]})
        return
    t = Table(title=f"{len(models)} built-in models")
    for col in ("id", "name", "params", "kind", "source"):
        t.add_column(col)
    for m in models:
        kind = m.shape.family if isinstance(m.shape, TransformerShape) else "cnn"
        t.add_row(m.id, m.name, f"{_params(m) / 1e6:,.0f} M", kind, m.source.url)
    console.print(t)


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="model id, name or config.json path")],
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show one model's shape and source."""
    m = model_by_name(name)
    summary = _summary(m)
    if as_json:
        print_json(summary)
        return
    console.print(f"[bold]{m.name}[/bold] ({m.id}): {_params(m) / 1e6:,.1f} M parameters")
    shape = summary["shape"]
    assert isinstance(shape, dict)
    for k, v in shape.items():
        if v not in (None, False, 0):
            console.print(f"  {k}: {v}")
    console.print(f"source: {m.source.title} ({m.source.as_of}) {m.source.url}")
