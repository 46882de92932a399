"""``rigwise build``: plan a whole machine, check a parts list, pick edge devices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rigwise.advise.build import BuildPlan, Feed, plan_build
from rigwise.advise.check import BuildCheck, check_parts, load_parts_list
from rigwise.advise.edge import EdgeAdvice, edge_options
from rigwise.catalog.load import catalog
from rigwise.catalog.models import Gpu
from rigwise.cli.common import console, gpu_by_name, model_by_name, print_json
from rigwise.errors import InputError
from rigwise.model.estimate import TrainEstimate
from rigwise.units import GIGA, format_usd
from rigwise.workload.schema import CnnShape, Model

app = typer.Typer(help="Plan a whole machine, check a parts list, or pick an edge device.",
                  no_args_is_help=True)


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else float(f"{x:.{digits}g}")


def _feed(m: Model, g: Gpu, gpus: int, loader: str) -> Feed:
    """The training rate of image model ``m`` on ``gpus`` x ``g`` at its best setting that
    fits (as ``rigwise advise`` picks it), for the CPU's data loader to keep up with."""
    from rigwise.advise.rank import Constraints, Workload, advise

    if loader not in ("pillow", "pillow-simd"):
        raise InputError("--loader must be pillow or pillow-simd")
    if not isinstance(m.shape, CnnShape):
        raise InputError(f"--model sizes the CPU for an image model's data loader; {m.name} "
                         "is not a built-in image model")
    a = advise(m, Workload(task="train"), [g], Constraints(gpus=gpus))
    if not a.options:
        raise InputError(f"{m.name} cannot be trained on {gpus} x {g.name}")
    o = a.options[0]
    est = o.estimate
    rate = est.gpu_samples_per_s if isinstance(est, TrainEstimate) and \
        est.gpu_samples_per_s else o.throughput
    return Feed(rate, loader, f"{m.name} training ({o.setting})")


@app.command("plan")
def plan(
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU id or name")],
    gpus: Annotated[int, typer.Option(help="number of GPUs")] = 1,
    data: Annotated[str, typer.Option(help="on-the-fly or preprocessed data pipeline")]
    = "on-the-fly",
    dataset_gb: Annotated[float, typer.Option(help="dataset size, GB (10^9 B)")] = 0.0,
    market: Annotated[str, typer.Option(help="new or used GPU price")] = "new",
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="image model to feed: the CPU gets the cores its data loader "
        "needs at the model's training rate on these GPUs")] = None,
    loader: Annotated[str, typer.Option(
        help="CPU data loader with --model: pillow or pillow-simd")] = "pillow",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Plan CPU, board, RAM, storage, PSU, cooling and case around N GPUs, with reasons."""
    if market not in ("new", "used"):
        raise InputError("--market must be new or used")
    g = gpu_by_name(gpu)
    feed = _feed(model_by_name(model), g, gpus, loader) if model else None
    p = plan_build(g, gpus, data=data, dataset_bytes=dataset_gb * GIGA, market=market,
                   feed=feed)
    if as_json:
        print_json(plan_json(p))
        return
    t = Table(title=f"{p.gpus} x {p.gpu.name}: total {format_usd(p.total_usd)}"
              + (f" (no price: {', '.join(p.unpriced)})" if p.unpriced else ""))
    for col in ("part", "choice", "price", "why"):
        t.add_column(col, overflow="fold")
    for c in p.choices:
        price = "?" if c.price_usd is None else format_usd(c.price_usd * c.quantity)
        t.add_row(c.part, c.item or "-", price, c.reason)
    console.print(t)
    for n in p.notes:
        console.print(n)


def plan_json(p: BuildPlan) -> dict[str, Any]:
    """``rigwise build plan --json``."""
    s = p.psu
    return {
        "gpu": p.gpu.id, "gpus": p.gpus, "total_usd": _r(p.total_usd),
        "unpriced": list(p.unpriced),
        "parts": [{"part": c.part, "item": c.item, "quantity": c.quantity,
                   "price_usd": _r(c.price_usd), "reason": c.reason} for c in p.choices],
        "psu": {"gpus_w": s.gpus_w, "cpu_w": s.cpu_w, "other_w": s.other_w,
                "headroom": s.headroom, "required_w": _r(s.required_w),
                "recommended_w": s.recommended_w, "spike_w": _r(s.spike_w)},
        "power_limit": None if p.power_limit is None else {
            "per_gpu_w": _r(p.power_limit.per_gpu_w), "fraction": _r(p.power_limit.fraction),
            "speed_kept": _r(p.power_limit.speed_kept)},
        "notes": list(p.notes),
        "data_loader": None if p.feed is None else {
            "what": p.feed.what, "images_per_s": _r(p.feed.images_per_s),
            "loader": p.feed.loader, "cores": p.feed.cores},
    }


@app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="parts list, .toml or .yaml")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Find what is wrong or wasteful in a parts list, and what it costs."""
    c = check_parts(load_parts_list(path))
    if as_json:
        print_json(check_json(c))
        return
    if not c.findings:
        console.print(f"No problems found for {c.spec.gpus} x {c.gpu.name}.")
    t = Table(title=f"{c.spec.gpus} x {c.gpu.name}: {'OK' if c.ok else 'will not work'}")
    for col in ("severity", "check", "finding"):
        t.add_column(col, overflow="fold")
    for f in c.findings:
        t.add_row(f.severity, f.code, f.message)
    if c.findings:
        console.print(t)
    if c.psu_sizing:
        s = c.psu_sizing
        console.print(f"PSU rule: ({s.gpus_w:.0f} + {s.cpu_w:.0f} + {s.other_w:.0f}) W x "
                      f"{s.headroom:g} = {s.required_w:,.0f} W -> {s.recommended_w:,.0f} W")


def check_json(c: BuildCheck) -> dict[str, Any]:
    """``rigwise build check --json``."""
    s = c.psu_sizing
    return {
        "gpu": c.gpu.id, "gpus": c.spec.gpus, "cpu": c.cpu.id if c.cpu else None, "ok": c.ok,
        "findings": [{"severity": f.severity, "code": f.code, "message": f.message}
                     for f in c.findings],
        "psu": None if s is None else {"required_w": _r(s.required_w),
                                       "recommended_w": s.recommended_w,
                                       "spike_w": _r(s.spike_w)},
    }


@app.command("edge")
def edge(
    model: Annotated[str, typer.Option("--model", "-m", help="decoder language model")],
    max_power: Annotated[float, typer.Option(help="power cap per device, W")],
    max_latency_ms: Annotated[float, typer.Option(help="latency target, ms")],
    latency: Annotated[str, typer.Option(help="token (per output token) or request")]
    = "token",
    weights: Annotated[str, typer.Option(help="weight format")] = "int4",
    prompt_tokens: Annotated[int, typer.Option(help="prompt tokens")] = 512,
    output_tokens: Annotated[int, typer.Option(help="output tokens")] = 128,
    max_slots: Annotated[int | None, typer.Option(help="only PCIe cards this wide")] = None,
    top: Annotated[int, typer.Option(help="show this many devices")] = 15,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Devices that serve a model under a power cap and a latency target, at what batch."""
    a = edge_options(model_by_name(model), catalog().gpus.values(), max_power_w=max_power,
                     max_latency_s=max_latency_ms / 1000.0, latency=latency, weights=weights,
                     prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                     max_slots=max_slots)
    if as_json:
        print_json(edge_json(a))
        return
    t = Table(title=f"{a.model.name} within {a.max_power_w:.0f} W and "
              f"{a.max_latency_s * 1e3:.0f} ms per {a.latency}")
    for col in ("device", "meets", "batch", f"ms/{a.latency}", "tok/s", "tok/J", "why"):
        t.add_column(col, overflow="fold")
    for o in a.options[:top]:
        t.add_row(o.gpu.name, "yes" if o.meets else "no", str(o.batch),
                  f"{o.latency_s * 1e3:.1f}", f"{o.tokens_per_s:,.0f}",
                  f"{o.tokens_per_joule:.2f}", o.why)
    console.print(t)


def edge_json(a: EdgeAdvice) -> dict[str, Any]:
    """``rigwise build edge --json``."""
    return {
        "model": a.model.id, "max_power_w": a.max_power_w, "max_latency_s": a.max_latency_s,
        "latency": a.latency,
        "options": [{"gpu": o.gpu.id, "name": o.gpu.name, "meets": o.meets, "batch": o.batch,
                     "power_w": _r(o.power_w), "power_limited": o.power_limited,
                     "speed_kept": _r(o.speed_kept), "latency_s": _r(o.latency_s),
                     "tokens_per_s": _r(o.tokens_per_s),
                     "tokens_per_joule": _r(o.tokens_per_joule), "weights": o.weights,
                     "why": o.why} for o in a.options],
        "excluded": [{"gpu": g, "reason": r} for g, r in a.excluded],
    }
