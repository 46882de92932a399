"""The ``rigwise`` command: a thin shell over the Python API.

Every user error (:class:`~rigwise.errors.InputError`) prints one line on stderr and exits 2.
"""

from __future__ import annotations

import sys

import typer

from rigwise.cli import advise as advise_cmd
from rigwise.cli import bench as bench_cmd
from rigwise.cli import build as build_cmd
from rigwise.cli import calibrate as calibrate_cmd
from rigwise.cli import cost as cost_cmd
from rigwise.cli import doctor as doctor_cmd
from rigwise.cli import estimate as estimate_cmd
from rigwise.cli import gpus as gpus_cmd
from rigwise.cli import models as models_cmd
from rigwise.cli import report as report_cmd
from rigwise.cli import scale as scale_cmd
from rigwise.cli import serve as serve_cmd
from rigwise.cli import validate as validate_cmd
from rigwise.errors import InputError

app = typer.Typer(
    name="rigwise",
    help="Which GPU for my deep-learning work? Memory, speed and price, with the reasons.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(gpus_cmd.app, name="gpus")
app.add_typer(models_cmd.app, name="models")
app.add_typer(estimate_cmd.app, name="estimate")
app.command("advise")(advise_cmd.advise)
app.command("doctor")(doctor_cmd.doctor)
app.add_typer(bench_cmd.app, name="bench")
app.command("calibrate")(calibrate_cmd.calibrate)
app.add_typer(build_cmd.app, name="build")
app.command("cost")(cost_cmd.cost)
app.command("report", context_settings={"allow_extra_args": True,
                                        "ignore_unknown_options": True})(report_cmd.report)
app.command("serve")(serve_cmd.serve)
app.command("validate")(validate_cmd.validate)
app.command("scale")(scale_cmd.scale)


def run() -> None:
    """Console-script entry point: run the app, turning input errors into exit code 2."""
    try:
        app(standalone_mode=True)
    except InputError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
