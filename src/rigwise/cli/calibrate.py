"""``rigwise calibrate``: fit the model's efficiencies from this machine's stored runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rigwise.cli.common import console, print_json


def calibrate(
    db: Annotated[Path | None, typer.Option("--db", help="run store (default: user data "
                                            "dir, or $RIGWISE_DB)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="overlay file (default: user data "
                                             "dir, or $RIGWISE_CALIBRATION)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Fit GEMM and memory efficiencies per GPU architecture and write the overlay that
    estimates on that architecture use."""
    from rigwise.bench.calibrate import calibrate as fit
    from rigwise.store.db import Store

    with Store(db) as store:
        fits, path = fit(store, path=out)
    if as_json:
        print_json({"overlay": str(path), "architectures": {
            f.architecture: {"values": {k: v for k, (v, _) in f.values.items()},
                             "points": {k: n for k, (_, n) in f.values.items()},
                             "runs": list(f.runs), "gpus": list(f.gpus)} for f in fits}})
        return
    for f in fits:
        console.print(f"[bold]{f.architecture}[/bold] ({', '.join(f.gpus)}; "
                      f"{len(f.runs)} run(s))")
        for k, (v, n) in sorted(f.values.items()):
            shown = f"{v:.3g} FLOP" if k.endswith("_half_flop") else f"{v:.1%} of peak"
            console.print(f"  {k:<22} {shown}  ({n} points)")
    console.print(f"overlay written to {path}")
