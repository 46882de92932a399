"""Run benchmark suites on this machine and collect them into one :class:`Run`.

On a GPU: clocks are warmed up first (a GEMM burn until the SM clock that NVML reports is
steady, bench-tools.md §6.2), NVML telemetry is sampled throughout, and the multi-process
suites (collectives, scaling) are launched through ``torchrun``. On the CPU the same suites
run at tiny sizes with ``time.perf_counter`` and gloo, and the run says it is a CPU run.
Nothing is stored here: the caller stores the finished run in one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rigwise.bench.launch import run_distributed
from rigwise.bench.measurement import Measurement, Run, new_run_id
from rigwise.bench.suites import SIZES, SUITES, BenchContext, import_torch
from rigwise.bench.telemetry import TelemetrySampler
from rigwise.bench.timer import QUICK, TimerConfig
from rigwise.errors import InputError
from rigwise.probe.nvml import CLOCK_SM, Nvml, open_nvml

SETTLE_MAX_S = 15.0
SETTLE_MIN_S = 1.0
SETTLE_TOLERANCE = 0.01


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """What to run: suites, device (``auto``, ``cpu``, ``cuda``), size class (None: ``full``
    on a GPU, ``tiny`` on the CPU), precisions, processes per node and nodes."""

    suites: tuple[str, ...]
    device: str = "auto"
    size: str | None = None
    precisions: tuple[str, ...] | None = None
    gpus: int | None = None
    nodes: int = 1
    quick: bool = False
    command: str = "rigwise bench"


def _resolve_device(torch: Any, device: str) -> str:
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device must be auto, cpu or cuda, got {device!r}")
    has_cuda = bool(torch.cuda.is_available())
    if device == "cuda" and not has_cuda:
        raise InputError("no CUDA device is visible to PyTorch (a CPU build, or no driver): "
                         "see `rigwise doctor`, or run with --device cpu")
    return "cuda:0" if device == "cuda" or (device == "auto" and has_cuda) else "cpu"


def _catalog_match(name: str) -> tuple[str | None, str | None]:
    from rigwise.catalog.load import catalog
    from rigwise.errors import UnknownNameError

    try:
        g = catalog().gpu(name)
    except UnknownNameError:
        return None, None
    return g.id, g.architecture


def settle_clocks(ctx: BenchContext, nv: Nvml) -> float:
    """Run GEMMs until the SM clock is steady (3 readings within 1%) or 15 s; returns the
    seconds spent. Idle GPUs start at low clocks and a Gen1 PCIe link."""
    torch = ctx.torch
    a = torch.randn(4096, 4096, device=ctx.device, dtype=torch.bfloat16)
    handles = nv.handles() if nv.ok else []
    t0 = time.perf_counter()
    readings: list[float] = []
    while time.perf_counter() - t0 < SETTLE_MAX_S:
        for _ in range(20):
            a @ a
        ctx.sync()
        clock = nv.get("nvmlDeviceGetClockInfo", handles[0], CLOCK_SM) if handles else None
        readings.append(float(clock or 0.0))
        last = readings[-3:]
        steady = len(last) == 3 and max(last) > 0 and (max(last) - min(last)) <= \
            SETTLE_TOLERANCE * max(last)
        if time.perf_counter() - t0 >= SETTLE_MIN_S and (steady or not handles):
            break
    return time.perf_counter() - t0


def _settings(torch: Any, device: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "threads": torch.get_num_threads(), "clock_mode": "unlocked (driver default)",
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    if device.startswith("cuda"):
        out["cudnn"] = torch.backends.cudnn.version()
        out["gpus_visible"] = torch.cuda.device_count()
    return out


def _distributed(opts: BenchOptions, suite: str, device: str, size: str, ctx: BenchContext,
                 describe: Callable[[str], None]) -> list[Measurement]:
    torch = ctx.torch
    kind = "cuda" if device.startswith("cuda") else "cpu"
    most = opts.gpus or (torch.cuda.device_count() if kind == "cuda" else 2)
    counts = [most] if suite == "collectives" else \
        [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= most]
    out: list[Measurement] = []
    for n in counts:
        describe(f"{suite} on {n} process(es) x {opts.nodes} node(s) (torchrun)")
        ms, notes = run_distributed(suite, n, size=size, device=kind, nodes=opts.nodes,
                                    precisions=opts.precisions, quick=opts.quick)
        out += ms
        ctx.notes += notes
    if suite == "scaling" and 1 in counts:
        from rigwise.bench.suites.scaling import efficiency

        eff = efficiency(out)
        ctx.notes.append("DDP scaling efficiency (throughput / (n x 1 rank)): " + ", ".join(
            f"x{n} {e:.0%}" for n, e in eff.items()))
    return out


def run_bench(opts: BenchOptions, *, describe: Callable[[str], None] | None = None,
              tick: Callable[[], None] | None = None) -> tuple[Run, list[str]]:
    """Run the suites of ``opts``; returns the finished run and notes on what was skipped.

    Raises:
        TorchMissingError: PyTorch is not installed.
        InputError: unknown suite, size or device, or a failed distributed launch.
    """
    from rigwise.bench.suites import gemm, memory, models
    from rigwise.probe.inventory import take_inventory

    bad = [s for s in opts.suites if s not in SUITES]
    if bad:
        raise InputError(f"unknown suite {bad[0]!r}; choose from {', '.join(SUITES)}")
    # CUDA numbers GPUs fastest first unless told otherwise; NVML by PCI bus id. The same
    # order lets telemetry of NVML GPU i describe CUDA device i (set before CUDA starts).
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    torch = import_torch()
    device = _resolve_device(torch, opts.device)
    size = opts.size or ("full" if device.startswith("cuda") else "tiny")
    if size not in SIZES:
        raise InputError(f"--size must be one of {', '.join(SIZES)}")
    say = describe or (lambda _: None)
    inv = take_inventory()
    if device.startswith("cuda"):
        name = str(torch.cuda.get_device_name(0))
        catalog_id, arch = _catalog_match(name)
    else:
        name, catalog_id, arch = f"CPU: {inv.cpu.model}", None, None
    run = Run(id=new_run_id(), started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              device_kind="cuda" if device.startswith("cuda") else "cpu", device_name=name,
              catalog_id=catalog_id, architecture=arch, suites=opts.suites,
              command=opts.command, environment={"inventory": dataclasses.asdict(inv),
                                                 "settings": _settings(torch, device)})
    nv = open_nvml() if device.startswith("cuda") else Nvml(None, "CPU run")
    try:
        with TelemetrySampler(nv) as tel:
            ctx = BenchContext(torch=torch, device=device, size=size,
                               timer=QUICK if opts.quick else TimerConfig(), telemetry=tel,
                               precisions=opts.precisions, describe=say, tick=tick)
            if device.startswith("cuda"):
                say("warming up until clocks settle")
                run.environment["settings"]["warmup_s"] = settle_clocks(ctx, nv)
            local = {"gemm": gemm.run, "memory": memory.run, "models": models.run}
            for suite in opts.suites:
                if suite in local:
                    run.measurements += local[suite](ctx)
                else:
                    run.measurements += _distributed(opts, suite, device, size, ctx, say)
        run.telemetry = list(tel.samples)
    finally:
        nv.close()
    run.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return run, ctx.notes
