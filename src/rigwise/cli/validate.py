"""``rigwise validate``: the model against published measurements, row by row."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from rigwise.cli.common import console, print_json
from rigwise.errors import InputError

if TYPE_CHECKING:
    from rigwise.validation.run import GroupSummary, Result


def validate(
    data: Annotated[Path | None, typer.Option(
        help="a rows file or folder (default: tests/validation/data of this checkout)")] = None,
    kind: Annotated[str | None, typer.Option(
        help="only this group: train, decode, prefill, memory, multi-gpu, scaling")] = None,
    write_intervals: Annotated[bool, typer.Option(
        "--write-intervals", help="store the residual percentiles that estimates' ranges use")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    markdown: Annotated[bool, typer.Option(
        "--markdown", help="print the tables as Markdown (for docs/method.md)")] = False,
) -> None:
    """Predict every published measurement and print the error, and the MAPE per group."""
    from rigwise.validation import intervals
    from rigwise.validation.rows import default_data_dir, load_rows
    from rigwise.validation.run import GROUPS, run, summarize

    path = data or default_data_dir()
    if path is None:
        raise InputError("no validation data found; pass --data FILE_OR_FOLDER")
    if kind is not None and kind not in GROUPS.values():
        raise InputError(f"--kind must be one of {', '.join(sorted(set(GROUPS.values())))}")
    results = [r for r in run(load_rows(path)) if kind is None or r.group == kind]
    summary = summarize(results)
    if write_intervals:
        fitted = intervals.fit(results)
        intervals.INTERVALS_FILE.write_text(intervals.to_toml(fitted))
    if as_json:
        print_json({
            "rows": [{"id": r.row.id, "group": r.group, "gpu": r.row.gpu,
                      "architecture": r.architecture, "basis": r.basis,
                      "model": r.row.model, "unit": r.row.unit, "measured": r.row.measured,
                      "predicted": r.predicted, "error": r.error, "problem": r.problem,
                      "expected_miss": r.row.expected_miss, "implied_mfu": r.implied_mfu,
                      "source": r.row.source}
                     for r in results],
            "summary": [{"group": g.group, "basis": g.basis, "rows": g.rows, "mape": g.mape,
                         "median_error": g.median_error, "within_10_percent": g.within_10,
                         "rows_without_expected_misses": g.rows_known,
                         "mape_without_expected_misses": g.mape_known}
                        for g in summary]})
        return
    if markdown:
        sys.stdout.write(_markdown(results, summary))
        return
    table = Table(title=f"Validation: {len(results)} published measurements")
    for col in ("row", "GPU", "measured", "predicted", "error", "unit / note"):
        table.add_column(col, justify="right" if col in ("measured", "predicted", "error")
                         else "left")
    for r in results:
        err = "" if r.error is None else f"{r.error:+.0%}"
        style = "" if r.error is None or abs(r.error) <= 0.10 else (
            "yellow" if abs(r.error) <= 0.25 else "red")
        table.add_row(r.row.id, r.row.gpu, f"{r.row.measured:.4g}",
                      "—" if r.predicted is None else f"{r.predicted:.4g}",
                      f"[{style}]{err}[/]" if style else err,
                      _note(r))
    console.print(table)
    summ = Table(title="Mean absolute percentage error per group")
    for col in ("group", "basis", "rows", "MAPE", "median error", "within 10 %",
                "MAPE w/o known misses"):
        summ.add_column(col, justify="left" if col in ("group", "basis") else "right")
    for g in summary:
        summ.add_row(g.group, g.basis, str(g.rows), f"{g.mape:.1%}", f"{g.median_error:+.1%}",
                     f"{g.within_10}/{g.rows}",
                     "—" if g.mape_known is None else f"{g.mape_known:.1%} ({g.rows_known})")
    console.print(summ)


def _markdown(results: list[Result], summary: list[GroupSummary]) -> str:
    lines = ["| group | basis | rows | MAPE | median error | within 10 % | MAPE w/o known misses |",
             "|---|---|---|---|---|---|---|"]
    for g in summary:
        known = "—" if g.mape_known is None else f"{g.mape_known:.1%} ({g.rows_known})"
        lines.append(f"| {g.group} | {g.basis} | {g.rows} | {g.mape:.1%} | "
                     f"{g.median_error:+.1%} | {g.within_10}/{g.rows} | {known} |")
    lines += ["", "| row | GPU | basis | measured | predicted | error | note |",
              "|---|---|---|---|---|---|---|"]
    for r in results:
        err = "" if r.error is None else (
            f"{r.error * 100:+.1f} pts" if r.row.unit == "scaling_efficiency"
            else f"{r.error:+.0%}")
        pred = "—" if r.predicted is None else f"{r.predicted:.4g}"
        note = (r.row.expected_miss and f"known miss: {r.row.expected_miss}") or r.problem or ""
        if r.implied_mfu is not None and r.implied_mfu > 1.0:
            note = f"implies {r.implied_mfu:.0%} MFU; {note}".rstrip("; ")
        lines.append(f"| {r.row.id} | {r.row.gpu} | {r.basis} | {r.row.measured:.4g} "
                     f"{r.row.unit} | {pred} | {err} | {note} |")
    return "\n".join(lines) + "\n"


def _note(r: Result) -> str:
    parts: list[str] = [r.row.unit]
    if r.problem:
        parts.append(f"({r.problem})")
    if r.implied_mfu is not None and r.implied_mfu > 1.0:
        parts.append(f"[red]implies {r.implied_mfu:.0%} MFU[/]")
    if r.row.expected_miss:
        parts.append("known miss")
    return " ".join(parts)
