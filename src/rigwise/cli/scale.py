"""``rigwise scale``: the best parallel plans on N GPUs, or the scaling curve over GPU counts."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from rigwise.catalog.systems import System, get_system
from rigwise.cli.common import console, gpu_by_name, model_by_name, print_json
from rigwise.errors import InputError
from rigwise.model.estimate import TrainConfig
from rigwise.model.parallel import CurvePoint, Plan, scaling_curve, search_plans
from rigwise.units import format_bytes, format_duration, format_rate


def _counts(curve: str) -> list[int]:
    try:
        counts = [int(x) for x in curve.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--curve takes GPU counts separated by commas, got {curve!r}") from None
    if not counts or any(c <= 0 for c in counts):
        raise InputError(f"--curve takes positive GPU counts, got {curve!r}")
    return counts


def plan_json(p: Plan) -> dict[str, Any]:
    """JSON view of a plan (SI units, the unit in each key)."""
    s, m, t = p.spec, p.memory, p.time
    return {
        "plan": {"dp": s.dp, "tp": s.tp, "pp": s.pp, "ep": s.ep, "zero_stage": s.zero,
                 "microbatch_size": s.microbatch, "microbatches": p.microbatches,
                 "schedule": s.schedule, "chunks": s.chunks, "sequence_parallel": s.sp,
                 "checkpointing": s.checkpointing, "cpu_offload": s.offload,
                 "grad_compression_8bit": s.compression, "label": s.describe()},
        "gpus": p.gpus, "system": p.system, "global_batch": p.global_batch,
        "seq_len": p.seq_len, "feasible": p.feasible, "fits": p.fits,
        "reasons": list(p.reasons),
        "memory": {"per_gpu_bytes": m.per_gpu_bytes, "capacity_bytes": m.capacity_bytes,
                   "host_bytes": m.host_bytes,
                   "breakdown": {"weights_bytes": m.weights_bytes,
                                 "gradients_bytes": m.gradients_bytes,
                                 "optimizer_bytes": m.optimizer_bytes,
                                 "activations_bytes": m.activations_bytes,
                                 "overhead_bytes": m.overhead_bytes}},
        "step_time_s": p.step_time_s if p.feasible else None,
        "time_split_s": {"compute_s": t.compute_s, "memory_bound_s": t.memory_s,
                         "launch_s": t.launch_s, "bubble_s": t.bubble_s,
                         "optimizer_s": t.optimizer_s, "offload_s": t.offload_s,
                         "comm_exposed_s": t.comm_exposed_s, "comm_total_s": t.comm_total_s},
        "throughput": {"samples_per_s": p.samples_per_s,
                       "tokens_per_s": p.tokens_per_s if p.seq_len else None},
        "mfu": p.mfu, "limit": p.limit, "assumptions": list(p.assumptions),
    }


def _rate(p: Plan, gpus: int = 1) -> str:
    """Tokens/s for token models, samples/s (images) for CNNs, divided by ``gpus``."""
    if p.seq_len:
        return format_rate(p.tokens_per_s / gpus, "tok/s")
    return format_rate(p.samples_per_s / gpus, "samples/s")


def _plans_table(plans: list[Plan], title: str) -> Table:
    t = Table(title=title)
    rate = "tokens/s" if not plans or plans[0].seq_len else "samples/s"
    for col in ("plan", "step", rate, "MFU", "memory/GPU", "limited by"):
        t.add_column(col, justify="left" if col in ("plan", "limited by") else "right")
    for p in plans:
        mem = format_bytes(p.memory.per_gpu_bytes) + ("" if p.fits else " [red]✗[/red]")
        t.add_row(p.spec.describe(), format_duration(p.step_time_s), _rate(p),
                  f"{p.mfu:.0%}", mem, p.limit)
    return t


def _curve_table(points: list[CurvePoint], title: str) -> Table:
    t = Table(title=title)
    rate = "tokens/s" if not points or points[0].plan.seq_len else "samples/s"
    for col in ("GPUs", "best plan", rate, "per GPU", "MFU", "scaling eff.",
                "limited by"):
        t.add_column(col, justify="left" if col in ("best plan", "limited by") else "right")
    for pt in points:
        p = pt.plan
        if not p.fits:
            need = format_bytes(p.memory.per_gpu_bytes)
            t.add_row(str(pt.gpus), "[red]does not fit[/red]", "-", "-", "-", "-",
                      f"memory: the leanest plan needs {need} per GPU")
            continue
        eff = f"{pt.scaling_efficiency:.0%}" if pt.scaling_efficiency is not None else "-"
        t.add_row(str(pt.gpus), p.spec.describe(), _rate(p), _rate(p, pt.gpus),
                  f"{p.mfu:.0%}", eff, p.limit)
    return t


def scale(
    model: Annotated[str, typer.Option("--model", "-m", help="model id, name or config.json")],
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU id or common name")],
    gpus: Annotated[int | None, typer.Option("--gpus", help="number of GPUs")] = None,
    system: Annotated[str | None, typer.Option(
        "--system", help="system template id or a path to your own .toml")] = None,
    global_batch: Annotated[int | None, typer.Option(
        "--global-batch", help="sequences per step, all GPUs (default: batch-size x GPUs)")
    ] = None,
    batch_size: Annotated[int, typer.Option(
        help="sequences (images for a CNN) per GPU when no --global-batch")] = 8,
    seq_len: Annotated[int | None, typer.Option(help="sequence length (tokens)")] = None,
    precision: Annotated[str, typer.Option(help="fp32, tf32, fp16, bf16 or fp8")] = "bf16",
    optimizer: Annotated[str, typer.Option(help="adamw, adamw8bit or sgd")] = "adamw",
    top: Annotated[int, typer.Option("--top", help="plans to show")] = 5,
    curve: Annotated[str | None, typer.Option(
        "--curve", help="GPU counts for a scaling curve, e.g. 1,2,4,8,16")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Best parallel plans (DP/TP/PP/EP, ZeRO/FSDP, offload; DDP for CNNs) on N GPUs, or a
    scaling curve."""
    if (gpus is None) == (curve is None):
        raise InputError("give either --gpus N or --curve 1,2,4,...")
    if top <= 0:
        raise InputError(f"--top must be positive, got {top}")
    if optimizer not in ("adamw", "adamw8bit", "sgd"):
        raise InputError("--optimizer must be adamw, adamw8bit or sgd")
    m, g = model_by_name(model), gpu_by_name(gpu)
    sys_: System | None = get_system(system) if system else None
    cfg = TrainConfig(precision=precision, batch_size=batch_size, seq_len=seq_len,
                      optimizer=optimizer)
    if curve is not None:
        points = scaling_curve(m, g, _counts(curve), cfg, system=sys_,
                               global_batch=global_batch)
        if as_json:
            print_json({"model": m.id, "gpu": g.id, "curve": [
                {"gpus": pt.gpus, "scaling_efficiency": pt.scaling_efficiency,
                 "scaling_note": pt.note, **plan_json(pt.plan)} for pt in points]})
        else:
            console.print(_curve_table(points, f"{m.name} on {g.name}: scaling"))
            for pt in points:
                if pt.note:
                    console.print(f"[dim]{pt.gpus} GPUs: {pt.note}[/dim]")
        return
    assert gpus is not None
    plans = search_plans(m, g, gpus, cfg, system=sys_, global_batch=global_batch)
    fitting = [p for p in plans if p.fits]
    shown = (fitting or [p for p in plans if p.feasible] or plans)[:top]
    if as_json:
        print_json({"model": m.id, "gpu": g.id, "gpus": gpus, "searched": len(plans),
                    "fitting": len(fitting), "plans": [plan_json(p) for p in shown]})
        return
    title = f"{m.name} on {gpus} x {g.name} ({shown[0].system if shown else '-'}): " \
        f"{len(fitting)} of {len(plans)} plans fit"
    if not fitting and shown:
        lean = shown[0]
        why = (f"the leanest plan needs {format_bytes(lean.memory.per_gpu_bytes)} per GPU of "
               f"{format_bytes(lean.memory.capacity_bytes)}") if lean.feasible \
            else "; ".join(lean.reasons)
        console.print(f"[red]fits nowhere on {gpus} x {g.name}[/red]: {why}")
    console.print(_plans_table(shown, title))
    if shown and shown[0].assumptions:
        console.print("[dim]assumptions: " + "; ".join(shown[0].assumptions) + "[/dim]")
