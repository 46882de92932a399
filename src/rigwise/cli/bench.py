"""``rigwise bench``: measure this machine; keep, compare, share and import runs.

``rigwise bench gemm|memory|collectives|models|scaling|all`` runs suites (on the GPU if
PyTorch sees one, else on the CPU at tiny sizes) and stores the finished run;
``history``, ``show``, ``compare``, ``export`` and ``import`` work on the store.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from rigwise.cli.common import console, print_json

app = typer.Typer(help="Benchmark this machine against what its GPU should do; keep the runs.",
                  no_args_is_help=True)

DbOpt = Annotated[Path | None, typer.Option("--db", help="run store (default: user data dir, "
                                            "or $RIGWISE_DB)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cuda or cpu")]
SizeOpt = Annotated[str | None, typer.Option(help="tiny or full (default: full on a GPU, "
                                             "tiny on the CPU)")]
PrecOpt = Annotated[str | None, typer.Option("--precision", help="comma list: fp32, tf32, "
                                             "fp16, bf16, fp8, int8")]
GpusOpt = Annotated[int | None, typer.Option("--gpus", help="processes per node for "
                                             "collectives/scaling (default: all GPUs)")]
NodesOpt = Annotated[int, typer.Option("--nodes", help="nodes (needs a Slurm allocation)")]
QuickOpt = Annotated[bool, typer.Option("--quick", help="fewer samples (smoke test)")]
NoStoreOpt = Annotated[bool, typer.Option("--no-store", help="do not store the run")]


def _run(suites: tuple[str, ...], device: str, size: str | None, precision: str | None,
         gpus: int | None, nodes: int, quick: bool, db: Path | None, no_store: bool,
         as_json: bool) -> None:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from rigwise.bench.expect import compare_all
    from rigwise.bench.present import run_json, run_view
    from rigwise.bench.runner import BenchOptions, run_bench
    from rigwise.catalog.load import catalog
    from rigwise.store.db import Store

    opts = BenchOptions(suites=suites, device=device, size=size, gpus=gpus, nodes=nodes,
                        precisions=tuple(p.strip() for p in precision.split(",") if p.strip())
                        if precision else None, quick=quick,
                        command=" ".join(["rigwise", *sys.argv[1:]]))
    store = None if no_store else Store(db)  # open first: a bad --db fails before measuring
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed} samples"), TimeElapsedColumn(),
                        console=console, transient=True,
                        disable=as_json or not console.is_terminal)
    try:
        with progress:
            task = progress.add_task("starting", total=None)
            run, notes = run_bench(
                opts, describe=lambda d: progress.update(task, description=d),
                tick=lambda: progress.advance(task))
        if store is not None:
            store.save_run(run)
    except KeyboardInterrupt:
        console.print("interrupted: this run was not stored; earlier runs are intact")
        raise typer.Exit(130) from None
    finally:
        if store is not None:
            store.close()
    gpu = catalog().gpus[run.catalog_id] if run.catalog_id else None
    cs = compare_all(run.measurements, gpu)
    if as_json:
        print_json(run_json(run, cs, notes, stored_in=None if store is None
                            else str(store.path)))
    else:
        console.print(run_view(run, cs, notes))
        if store is not None:
            console.print(f"stored as {run.id} in {store.path}")


def _suite_command(suites: tuple[str, ...], doc: str) -> None:
    def command(device: DeviceOpt = "auto", size: SizeOpt = None, precision: PrecOpt = None,
                gpus: GpusOpt = None, nodes: NodesOpt = 1, quick: QuickOpt = False,
                db: DbOpt = None, no_store: NoStoreOpt = False, as_json: JsonOpt = False,
                ) -> None:
        _run(suites, device, size, precision, gpus, nodes, quick, db, no_store, as_json)
    command.__doc__ = doc
    name = suites[0] if len(suites) == 1 else "all"
    app.command(name)(command)


_suite_command(("gemm",), "GEMM TFLOPS per precision over a sweep of shapes.")
_suite_command(("memory",), "Memory bandwidth: device copy/read, host<->device, P2P.")
_suite_command(("collectives",), "all-reduce, all-gather, reduce-scatter: algbw and busbw "
               "(nccl-tests definitions), launched with torchrun.")
_suite_command(("models",), "ResNet-50 and GPT-2 training steps, attention, LLM decode.")
_suite_command(("scaling",), "GPT-2 DDP training on 1, 2, 4, ... GPUs via torchrun "
               "(srun with --nodes).")
_suite_command(("gemm", "memory", "models", "collectives"),
               "The single-node suites: gemm, memory, models, collectives.")


@app.command("history")
def history(limit: Annotated[int, typer.Option(help="how many runs")] = 20, db: DbOpt = None,
            as_json: JsonOpt = False) -> None:
    """Stored runs, newest first."""
    from rigwise.bench.present import history_table
    from rigwise.store.db import Store

    with Store(db) as store:
        rows = store.history(limit=limit)
    if as_json:
        print_json({"runs": rows})
    else:
        console.print(history_table(rows))


@app.command("show")
def show(run: Annotated[str, typer.Argument(help="run id, unique prefix, or latest")],
         db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """One stored run against the catalog peak and the model."""
    from rigwise.bench.expect import compare_all
    from rigwise.bench.present import run_json, run_view
    from rigwise.catalog.load import catalog
    from rigwise.store.db import Store

    with Store(db) as store:
        r = store.run(run)
        where = str(store.path)
    gpu = catalog().gpus.get(r.catalog_id) if r.catalog_id else None
    cs = compare_all(r.measurements, gpu)
    if as_json:
        print_json(run_json(r, cs, [], stored_in=where))
    else:
        console.print(run_view(r, cs, []))


@app.command("compare")
def compare(a: Annotated[str, typer.Argument(help="first run (id, prefix or latest)")],
            b: Annotated[str, typer.Argument(help="second run")],
            db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Two runs side by side, case by case, with the change."""
    from rigwise.bench.present import compare_runs, compare_table
    from rigwise.store.db import Store

    with Store(db) as store:
        ra, rb = store.run(a), store.run(b)
    rows = compare_runs(ra, rb)
    if as_json:
        print_json({"a": ra.id, "b": rb.id, "cases": rows})
    else:
        console.print(compare_table(ra, rb, rows))


@app.command("export")
def export(file: Annotated[Path, typer.Argument(help="JSON file to write")],
           run: Annotated[list[str] | None, typer.Option("--run", help="run to export "
                                                         "(repeatable; default all)")] = None,
           db: DbOpt = None) -> None:
    """Write runs to a JSON file that others can import."""
    from rigwise.store.db import Store

    with Store(db) as store:
        doc = store.export(run)
    file.write_text(json.dumps(doc, indent=1) + "\n")
    console.print(f"exported {len(doc['runs'])} run(s) to {file}")


@app.command("import")
def import_(file: Annotated[Path, typer.Argument(help="JSON file from `rigwise bench export`")],
            db: DbOpt = None) -> None:
    """Add the runs of an export file to the store (all or nothing)."""
    from rigwise.store.db import Store

    with Store(db) as store:
        added, present = store.import_file(file)
    console.print(f"imported {added} run(s); {present} already stored")
