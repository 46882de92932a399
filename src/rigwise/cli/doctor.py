"""``rigwise doctor``: is this machine set up right? Inventory and verdicts with fixes."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from rigwise.cli.common import console, print_json


def doctor(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Inventory of CPU, memory, GPUs, driver and software stack, with verdicts and fixes.

    Works without a GPU and without root.
    """
    from rigwise.bench.present import inventory_view
    from rigwise.probe.doctor import diagnose, worst
    from rigwise.probe.inventory import take_inventory

    inv = take_inventory()
    findings = diagnose(inv)
    if as_json:
        print_json({"inventory": dataclasses.asdict(inv),
                    "findings": [dataclasses.asdict(f) for f in findings],
                    "verdict": worst(findings)})
    else:
        console.print(inventory_view(inv, findings))
