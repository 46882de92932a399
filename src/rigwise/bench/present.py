"""Terminal and JSON presentation of benchmark runs, comparisons and inventories."""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rigwise import units
from rigwise.bench.expect import Comparison
from rigwise.bench.measurement import Measurement, Run, measurement_json
from rigwise.probe.doctor import Finding
from rigwise.probe.inventory import Inventory

_STYLE = {"ok": "green", "warn": "yellow", "fail": "red", "suspect": "magenta", "info": "cyan",
          "n/a": "dim"}


def rate(value: float | None, metric: str) -> str:
    """A rate in the unit people read: TFLOPS, GB/s, samples/s, tokens/s."""
    if value is None:
        return "-"
    if metric == "flop_per_s":
        if value < units.TERA:
            return f"{value / units.GIGA:,.2f} GFLOPS"
        return f"{units.flop_per_s_to_tflops(value):,.1f} TFLOPS"
    if metric == "bytes_per_s":
        return f"{value / units.GIGA:,.2f} GB/s"
    unit = {"samples_per_s": "samples/s", "tokens_per_s": "tok/s"}.get(metric, metric)
    return units.format_rate(value, unit)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def comparison_table(cs: list[Comparison], *, title: str) -> Table:
    """Measured figure, peak and model prediction with percentages and the verdict."""
    t = Table(title=title)
    for col, just in (("case", "left"), ("measured", "right"), ("peak", "right"),
                      ("% peak", "right"), ("model", "right"), ("% model", "right"),
                      ("verdict", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for c in cs:
        verdict = Text(c.verdict, style=_STYLE.get(c.verdict, ""))
        if c.reasons:
            verdict.append(": " + "; ".join(c.reasons), style="dim")
        t.add_row(c.name, rate(c.value, c.metric), rate(c.peak, c.metric),
                  _pct(c.fraction_of_peak), rate(c.predicted, c.metric),
                  _pct(c.fraction_of_model), verdict)
    return t


def run_view(run: Run, cs: list[Comparison], notes: list[str]) -> Group:
    """A finished run: header, comparison table, notes."""
    cpu = run.device_kind == "cpu"
    head = Text(f"run {run.id} on {run.device_name}" + (
        " (CPU run: tiny sizes, timed with time.perf_counter; not a GPU measurement)"
        if cpu else f" [{run.catalog_id or 'not in the catalog'}]"), style="bold")
    parts: list[Any] = [head, comparison_table(cs, title="measured vs peak and model")]
    parts += [Text(f"note: {n}", style="dim") for n in notes]
    return Group(*parts)


def comparison_json(c: Comparison) -> dict[str, Any]:
    """A comparison as JSON (rates in the metric's SI unit)."""
    d = dataclasses.asdict(c)
    d["reasons"] = list(c.reasons)
    return d


def run_json(run: Run, cs: list[Comparison], notes: list[str], *,
             stored_in: str | None) -> dict[str, Any]:
    """One JSON object for ``rigwise bench ... --json``."""
    return {
        "run": {"id": run.id, "started_at": run.started_at, "finished_at": run.finished_at,
                "device_kind": run.device_kind, "device_name": run.device_name,
                "catalog_id": run.catalog_id, "architecture": run.architecture,
                "suites": list(run.suites)},
        "stored_in": stored_in,
        "measurements": [measurement_json(m) for m in run.measurements],
        "comparisons": [comparison_json(c) for c in cs],
        "notes": notes,
        "telemetry_samples": len(run.telemetry),
    }


def compare_runs(a: Run, b: Run) -> list[dict[str, Any]]:
    """Measurements of two runs matched by name: both values and the change (b / a - 1)."""
    mb: dict[str, Measurement] = {m.name: m for m in b.measurements}
    rows = []
    for m in a.measurements:
        other = mb.pop(m.name, None)
        rows.append({"name": m.name, "metric": m.metric, "a": m.value,
                     "b": other.value if other else None,
                     "change": other.value / m.value - 1.0 if other else None})
    rows += [{"name": n, "metric": m.metric, "a": None, "b": m.value, "change": None}
             for n, m in mb.items()]
    return rows


def compare_table(a: Run, b: Run, rows: list[dict[str, Any]]) -> Table:
    """Two runs side by side."""
    t = Table(title=f"{a.id} ({a.device_name}) vs {b.id} ({b.device_name})")
    for col in ("case", "A", "B", "change"):
        t.add_column(col, justify="left" if col == "case" else "right")
    for r in rows:
        ch = r["change"]
        style = "" if ch is None else ("green" if ch > 0.03 else "red" if ch < -0.03 else "")
        t.add_row(r["name"], rate(r["a"], r["metric"]), rate(r["b"], r["metric"]),
                  Text("-" if ch is None else f"{ch:+.1%}", style=style))
    return t


def history_table(rows: list[dict[str, Any]]) -> Table:
    """Stored runs, newest first."""
    t = Table(title="stored runs")
    for col in ("id", "started (UTC)", "device", "suites", "cases"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["id"], r["started_at"], r["device_name"], r["suites"],
                  str(r["measurements"]))
    return t


def inventory_view(inv: Inventory, findings: list[Finding]) -> Group:
    """``rigwise doctor``: the machine, then the verdicts with their fixes."""
    c = inv.cpu
    t = Table(title="this machine", show_header=False)
    t.add_column("what")
    t.add_column("value")
    t.add_row("CPU", f"{c.model}: {c.physical_cores or '?'} cores, {c.logical_cores} threads "
              f"({c.usable_cores} usable), {len(c.numa_nodes) or 1} NUMA node(s)")
    t.add_row("memory", units.format_bytes(c.memory_bytes))
    t.add_row("NVIDIA driver", f"{inv.driver_version or '-'} (CUDA {inv.cuda_driver_version or '-'}"
              f"); NVML: {inv.nvml_status}")
    for g in inv.gpus:
        link = f"PCIe Gen{g.pcie_gen} x{g.pcie_width} (max Gen{g.pcie_max_gen} x{g.pcie_max_width})"
        power = f"{g.power_limit_w or 0:.0f}/{g.power_default_limit_w or 0:.0f} W limit/default"
        t.add_row(f"GPU {g.index}", f"{g.name} [{g.catalog_id or 'unknown to the catalog'}], "
                  f"{units.format_bytes(g.memory_bytes or 0)}, CC {g.compute_capability}, "
                  f"{link}, {power}, {g.temperature_c} °C, NUMA {g.numa_node}")
    s = inv.stack
    for label, comps in (("CUDA runtime", s.cuda_runtime), ("cuDNN", s.cudnn), ("NCCL", s.nccl)):
        t.add_row(label, ", ".join(f"{x.version} ({x.name})" for x in comps) or "-")
    for fw in s.frameworks:
        t.add_row(fw.name, f"{fw.version}, built for CUDA {fw.cuda or '- (CPU build)'}")
    v = Table(title="verdicts")
    for col in ("", "check", "finding", "fix"):
        v.add_column(col)
    for f in findings:
        v.add_row(Text(f.level, style=_STYLE.get(f.level, "")), f.check, f.message, f.fix or "")
    return Group(t, v)
