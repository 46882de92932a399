"""``rigwise gpus list|show|compare``: browse the hardware catalog."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from rigwise.catalog.load import catalog
from rigwise.catalog.models import Gpu
from rigwise.cli.common import console, gpu_by_name, print_json
from rigwise.errors import InputError
from rigwise.report.jsonout import gpu_json
from rigwise.units import GIB, format_usd

app = typer.Typer(help="Browse the GPU and accelerator catalog.", no_args_is_help=True)

_PEAKS = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")


def _tflops(g: Gpu, p: str) -> str:
    v = g.peak_flop_per_s.get(p)
    return f"{v / 1e12:,.1f}" if v else "-"


def _price(g: Gpu, market: str) -> tuple[float | None, str]:
    if market == "cloud":
        c = g.cloud_price_usd_per_h()
        return (c[0], f"${c[0]:.2f}/h") if c else (None, "-")
    p = g.purchase_price_usd(market)
    return (p[0], format_usd(p[0])) if p else (None, "-")


@app.command("list")
def list_gpus(
    vendor: Annotated[str | None, typer.Option(help="nvidia, amd, intel, google, apple")] = None,
    segment: Annotated[str | None, typer.Option(
        help="consumer, workstation, datacenter, edge, soc, tpu")] = None,
    min_memory: Annotated[float | None, typer.Option(help="minimum memory, GiB")] = None,
    max_price: Annotated[float | None, typer.Option(help="maximum price in the market, USD "
                                                    "(USD per hour for cloud)")] = None,
    market: Annotated[str, typer.Option(help="new, used or cloud")] = "new",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List accelerators, newest first, with their key specs and a price."""
    if market not in ("new", "used", "cloud"):
        raise InputError("--market must be new, used or cloud")
    if min_memory is not None and min_memory <= 0:
        raise InputError("--min-memory must be positive")
    rows = []
    for g in catalog().gpus.values():
        if vendor and g.vendor != vendor.lower():
            continue
        if segment and g.segment != segment.lower():
            continue
        if min_memory and g.memory_bytes < min_memory * GIB:
            continue
        price, shown = _price(g, market)
        if max_price is not None and (price is None or price > max_price):
            continue
        if market != "new" and price is None:
            continue
        rows.append((g, shown))
    rows.sort(key=lambda r: (r[0].release_date, r[0].id), reverse=True)
    if as_json:
        print_json({"market": market, "gpus": [
            {**gpu_json(g), "price_shown": shown} for g, shown in rows]})
        return
    t = Table(title=f"{len(rows)} accelerators ({market} prices)")
    for col in ("id", "released", "memory", "GB/s", "bf16/fp16 TFLOPS", "fp8", "TDP W",
                "price"):
        t.add_column(col, justify="left" if col == "id" else "right")
    for g, shown in rows:
        name = g.id if g.devices_per_board == 1 else f"{g.id} *"
        t.add_row(name, f"{g.release_date:%Y-%m}", f"{g.memory_bytes / GIB:.0f} GiB",
                  f"{g.memory_bandwidth_bytes_per_s / 1e9:,.0f}",
                  _tflops(g, "bf16") if g.supports("bf16") else _tflops(g, "fp16"),
                  _tflops(g, "fp8"), f"{g.tdp_w:.0f}" if g.tdp_w else "-", shown)
    if any(g.devices_per_board > 1 for g, _ in rows):
        t.caption = ("* one of the devices on a multi-device board (one GPU to CUDA/ROCm "
                     "and clouds): figures and price per device")
    console.print(t)


def _spec_rows(g: Gpu) -> list[tuple[str, str]]:
    rows = [
        ("name", g.name), ("vendor / segment", f"{g.vendor} / {g.segment}"),
        ("architecture", f"{g.architecture}" + (f" ({g.chip})" if g.chip else "")),
        ("compute capability", g.compute_capability or "-"),
        ("released", g.release_date.isoformat()),
        ("memory", f"{g.memory_bytes / GIB:.0f} GiB {g.memory_type}, "
                   f"{g.memory_bandwidth_bytes_per_s / 1e9:,.0f} GB/s"),
        ("L2 cache", f"{g.l2_cache_bytes / 2**20:.0f} MiB" if g.l2_cache_bytes else "-"),
        ("SMs / CUs", str(g.compute_units or "-")),
    ]
    if g.devices_per_board > 1:
        rows.insert(1, ("devices", f"{g.devices_per_board} per board; every figure and price "
                                   "here is one device's share (one GPU to CUDA/ROCm and clouds)"))
    for p in _PEAKS:
        if g.supports(p):
            rows.append((f"{p} dense TFLOPS", _tflops(g, p)))
    rows += [
        ("sparsity factor", f"{g.sparsity_factor:g}x"),
        ("TDP", f"{g.tdp_w:.0f} W" if g.tdp_w else "-"),
        ("form factor", f"{g.form_factor}" + (
            f", {g.slots * g.devices_per_board}-slot board" if g.slots else "")),
        ("host link", f"PCIe {g.pcie_gen}.0 x{g.pcie_lanes}" if g.pcie_gen else "-"),
        ("scale-up", g.scaleup_fabric + (
            f", {g.scaleup_bytes_per_s_per_direction / 1e9:,.0f} GB/s per direction"
            if g.scaleup_bytes_per_s_per_direction else "")),
        ("peer-to-peer", "yes" if g.p2p else "no"),
        ("launch price", format_usd(g.launch_price_usd) if g.launch_price_usd else "-"),
    ]
    for market in ("new", "used", "cloud"):
        rows.append((f"price ({market})", _price(g, market)[1]))
    return rows


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="catalog id or common name, e.g. 'RTX 4090'")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show one accelerator's specs, prices and the source of every value."""
    g = gpu_by_name(name)
    if as_json:
        print_json(gpu_json(g))
        return
    t = Table(title=g.id, show_header=False)
    t.add_column("field")
    t.add_column("value")
    for k, v in _spec_rows(g):
        t.add_row(k, v)
    console.print(t)
    console.print("Sources:")
    for key, s in g.sources.items():
        console.print(f"  [{key}] {s.title} ({s.as_of}) {s.url}")


@app.command("compare")
def compare(
    names: Annotated[list[str], typer.Argument(help="two or more GPU names")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Compare accelerators side by side."""
    if len(names) < 2:
        raise InputError("compare needs at least two GPUs")
    gpus = [gpu_by_name(n) for n in names]
    if as_json:
        print_json({"gpus": [gpu_json(g) for g in gpus]})
        return
    t = Table(title="comparison")
    t.add_column("field")
    for g in gpus:
        t.add_column(g.id, justify="right")
    columns = [dict(_spec_rows(g)) for g in gpus]
    fields = list(dict.fromkeys(k for c in columns for k in c))
    for f in fields:
        t.add_row(f, *[c.get(f, "-") for c in columns])
    console.print(t)
