"""``rigwise report``: one self-contained HTML file for a result.

Two ways in::

    rigwise report -o advice.html advise --model llama-3-8b --task qlora --budget 2000
    rigwise estimate train --model gpt2 --gpu "RTX 4090" --json > est.json
    rigwise report --from est.json -o est.html

The first runs the rigwise command given after the options (with ``--json``) in this process
and reports its result; the second reads a saved ``--json`` output of ``advise``,
``estimate``, ``scale``, ``doctor`` or ``bench``.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rigwise.errors import ConfigFileError, InputError

COMMANDS = ("advise", "estimate", "scale", "doctor", "bench")
"""Commands whose result ``rigwise report`` can run and render."""


def run_json(args: list[str]) -> dict[str, Any]:
    """Run ``rigwise ARGS --json`` in this process and return the JSON object it prints.

    Raises:
        InputError: not a reportable command, a usage error, or output that is not JSON.
    """
    import click

    from rigwise.cli.main import app

    if not args or args[0] not in COMMANDS:
        raise InputError("give a result: --from FILE.json, or a command after the options "
                         f"({', '.join(COMMANDS)}), e.g. rigwise report -o r.html advise "
                         "--model llama-3-8b --task qlora")
    command = typer.main.get_command(app)
    out = io.StringIO()
    argv = [*args, "--json"] if "--json" not in args else list(args)
    try:
        with contextlib.redirect_stdout(out):
            command.main(args=argv, prog_name="rigwise", standalone_mode=False)
    except click.ClickException as exc:
        raise InputError(f"rigwise {' '.join(args[:2])}: {exc.format_message()}") from None
    try:
        data = json.loads(out.getvalue())
    except json.JSONDecodeError:
        raise InputError(f"rigwise {args[0]} printed no JSON result to report") from None
    if not isinstance(data, dict):
        raise InputError(f"rigwise {args[0]} printed no JSON object to report")
    return data


def read_json(path: Path) -> dict[str, Any]:
    """A saved ``--json`` result.

    Raises:
        ConfigFileError: missing, unreadable or not a JSON object.
    """
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigFileError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigFileError(f"{path} is not a JSON result: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path} is not a JSON object")
    return data


def _kind(args: list[str]) -> str | None:
    if args[:2] == ["estimate", "train"]:
        return "estimate-train"
    if args[:2] == ["estimate", "infer"]:
        return "estimate-infer"
    return None


def report(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="the HTML file to write")],
    from_file: Annotated[Path | None, typer.Option(
        "--from", help="a saved --json result of advise, estimate, scale, doctor or bench")
    ] = None,
) -> None:
    """Write one self-contained HTML report (tables, charts, assumptions, sources).

    Give a saved result with --from, or a rigwise command after the options:
    rigwise report -o r.html advise --model llama-3-8b --task qlora
    """
    from rigwise.report.html import render_report

    if output.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--output {output}: use a file ending in .html")
    if not output.parent.exists():
        raise InputError(f"--output {output}: folder {output.parent} does not exist")
    args = list(ctx.args)
    if from_file is not None and args:
        raise InputError("give either --from FILE or a command, not both")
    data = read_json(from_file) if from_file is not None else run_json(args)
    html = render_report(data, kind=None if from_file is not None else _kind(args))
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(output)
    typer.echo(f"wrote {output} ({len(html) / 1024:.0f} KiB)", err=True)
