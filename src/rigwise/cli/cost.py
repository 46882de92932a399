"""``rigwise cost``: own or rent, break-even, cost per run, energy and emissions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.table import Table

from rigwise.advise.build import plan_build
from rigwise.advise.cost import (
    HOURS_PER_MONTH,
    CostComparison,
    Rate,
    Usage,
    compare,
    defaults,
    run_hours_from_seconds,
)
from rigwise.advise.rank import Constraints, Workload
from rigwise.advise.rank import advise as rank
from rigwise.catalog.models import Gpu
from rigwise.cli.common import console, gpu_by_name, model_by_name, print_json
from rigwise.errors import InputError
from rigwise.units import format_usd


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else float(f"{x:.{digits}g}")


def cost(
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU id or name")],
    gpus: Annotated[int, typer.Option(help="number of GPUs")] = 1,
    hours_per_month: Annotated[float | None, typer.Option(
        help="GPU-busy hours per month (default: utilization x 730 h)")] = None,
    utilization: Annotated[float | None, typer.Option(
        help="fraction of the time the GPUs work (default 0.15, Dettmers 2020)")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="model of a training run")]
    = None,
    task: Annotated[str, typer.Option(help="train, finetune, lora or qlora")] = "train",
    tokens: Annotated[float | None, typer.Option(help="run: tokens to train on")] = None,
    epochs: Annotated[float | None, typer.Option(help="run: epochs")] = None,
    dataset_samples: Annotated[float | None, typer.Option(help="samples per epoch")] = None,
    batch_size: Annotated[int | None, typer.Option(help="batch per GPU")] = None,
    precision: Annotated[str | None, typer.Option(help="training precision")] = None,
    purchase_usd: Annotated[float | None, typer.Option(
        help="price of the whole machine (default: rigwise build plan)")] = None,
    cloud_usd_per_h: Annotated[float | None, typer.Option(
        help="compare with this rate per GPU-hour instead of the catalog's")] = None,
    system_power_w: Annotated[float | None, typer.Option(
        help="machine power at load (default: GPU TDPs + 100 W, as Dettmers 2020)")] = None,
    electricity_usd_per_kwh: Annotated[float | None, typer.Option(
        help="electricity price (default 0.16, EIA U.S. residential 2023)")] = None,
    years: Annotated[float | None, typer.Option(help="years you keep the machine")] = None,
    resale_fraction: Annotated[float | None, typer.Option(
        help="resale value after the years, as a fraction of the purchase")] = None,
    grid_g_per_kwh: Annotated[float | None, typer.Option(
        help="grid carbon intensity, gCO2/kWh (default 366, EIA U.S. 2023)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Own or rent: break-even hours and months, cost per run, energy, emissions."""
    d = defaults()
    g = gpu_by_name(gpu)
    u = utilization if utilization is not None else d["utilization"][0]
    if not 0 < u <= 1:
        raise InputError("--utilization must be in (0, 1]")
    per_month = hours_per_month if hours_per_month is not None else u * HOURS_PER_MONTH
    usage = _usage(g, gpus, per_month, model, task, tokens, epochs, dataset_samples, batch_size,
                   precision)
    if purchase_usd is None:
        plan = plan_build(g, gpus)
        purchase_usd = plan.total_usd
        note = "rigwise build plan" + (f" (without {', '.join(plan.unpriced)})"
                                       if plan.unpriced else "")
    else:
        note = "given"
    rates = None if cloud_usd_per_h is None else [
        Rate("given", "cloud_on_demand", cloud_usd_per_h, dt.date.today().isoformat(), None,
             "--cloud-usd-per-h")]
    c = compare(g, gpus, usage, purchase_usd=purchase_usd, purchase_note=note,
                power_w=system_power_w if system_power_w else (g.tdp_w or 0.0) * gpus + 100.0,
                usd_per_kwh=electricity_usd_per_kwh or d["electricity_usd_per_kwh"][0],
                years=years or d["years"][0], resale_fraction=resale_fraction,
                grid_g_per_kwh=grid_g_per_kwh or d["grid_g_co2_per_kwh"][0], rates=rates)
    if as_json:
        print_json(cost_json(c))
    else:
        _print(c)


def _usage(g: Gpu, n: int, per_month: float, model: str | None, task: str,
           tokens: float | None, epochs: float | None, dataset_samples: float | None,
           batch_size: int | None, precision: str | None) -> Usage:
    if model is None:
        if tokens or epochs:
            raise InputError("--tokens/--epochs need --model")
        return Usage(per_month)
    if not (tokens or epochs):
        raise InputError("a training run needs --tokens or --epochs")
    work = Workload(task=task, precision=precision, batch_size=batch_size, target_tokens=tokens,
                    target_epochs=epochs, dataset_samples=dataset_samples)
    advice = rank(model_by_name(model), work, [g], Constraints(gpus=n, market="new"))
    opt = advice.options[0] if advice.options else None
    if opt is None or not opt.fits or opt.time_to_target_s is None:
        raise InputError(f"{model} does not fit on {n} x {g.name} for {task}; try more --gpus")
    return Usage(per_month, run_hours_from_seconds(opt.time_to_target_s), tokens, epochs)


def cost_json(c: CostComparison) -> dict[str, Any]:
    """``rigwise cost --json``."""
    o, run = c.own, c.run
    out: dict[str, Any] = {
        "gpu": c.gpu.id, "gpus": c.gpus, "hours_per_month": _r(c.usage.hours_per_month),
        "own": {"purchase_usd": _r(o.purchase_usd), "purchase_note": o.purchase_note,
                "power_w": _r(o.power_w), "usd_per_kwh": o.usd_per_kwh,
                "energy_usd_per_h": _r(o.energy_usd_per_h), "years": o.years,
                "resale_usd": _r(o.resale_usd), "retention_per_year": _r(o.retention_per_year),
                "total_usd": _r(o.total_usd), "usd_per_h_of_use": _r(o.usd_per_h_of_use)},
        "rent": [{"provider": r.rate.provider, "kind": r.rate.kind,
                  "usd_per_h": _r(r.usd_per_h), "observed": r.rate.date,
                  "total_usd": _r(r.total_usd), "break_even_hours": _r(r.break_even_hours),
                  "break_even_months": _r(r.break_even_months),
                  "break_even_hours_with_resale": _r(r.break_even_hours_with_resale)}
                 for r in c.rent],
        "grid_g_co2_per_kwh": c.grid_g_per_kwh,
    }
    if run is not None:
        out["run"] = {"hours": _r(run.hours), "energy_kwh": _r(run.energy_kwh),
                      "emissions_kg_co2": _r(run.emissions_kg), "own_usd": _r(run.own_usd),
                      "rent_usd": {k: _r(v) for k, v in run.rent_usd.items()},
                      "own_usd_per_million_tokens": _r(run.own_usd / run.tokens * 1e6)
                      if run.tokens else None,
                      "own_usd_per_epoch": _r(run.own_usd / run.epochs) if run.epochs else None}
    return out


def _print(c: CostComparison) -> None:
    o = c.own
    console.print(f"Own {c.gpus} x {c.gpu.name}: {format_usd(o.purchase_usd)} ({o.purchase_note})"
                  f", {o.power_w:.0f} W at ${o.usd_per_kwh:.2f}/kWh = "
                  f"{format_usd(o.energy_usd_per_h)}/h; resale after {o.years:g} years "
                  f"{format_usd(o.resale_usd)} ({o.retention_per_year:.0%}/year retained); "
                  f"{c.usage.hours_per_month:.0f} h/month -> {format_usd(o.total_usd)} total, "
                  f"{format_usd(o.usd_per_h_of_use)} per hour of use")
    t = Table(title="Renting instead (break-even: hours of use after which owning is cheaper)")
    for col in ("provider", "kind", "$/h", "observed", f"{o.years:g}-year cost",
                "break-even h", "months", "h with resale"):
        t.add_column(col)
    for r in c.rent:
        t.add_row(r.rate.provider, r.rate.kind.removeprefix("cloud_"), f"{r.usd_per_h:.2f}",
                  r.rate.date, format_usd(r.total_usd), _fmt(r.break_even_hours),
                  _fmt(r.break_even_months, 1), _fmt(r.break_even_hours_with_resale))
    console.print(t)
    if c.run is not None:
        run = c.run
        rent = ", ".join(f"{k.removeprefix('cloud_')} {format_usd(v)}"
                         for k, v in run.rent_usd.items())
        what = "Per run" if c.usage.run_hours is not None else "Per month"
        console.print(f"{what} ({run.hours:,.1f} h): own {format_usd(run.own_usd)}; rent {rent}; "
                      f"{run.energy_kwh:,.1f} kWh, {run.emissions_kg:,.1f} kg CO2 at "
                      f"{c.grid_g_per_kwh:.0f} g/kWh")


def _fmt(x: float | None, digits: int = 0) -> str:
    return "never" if x is None else f"{x:,.{digits}f}"
