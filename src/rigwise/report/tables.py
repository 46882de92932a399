"""Rich renderings of estimates and advice for the terminal."""

from __future__ import annotations

import math
from collections.abc import Callable

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rigwise.advise.rank import Advice
from rigwise.model.estimate import TrainEstimate
from rigwise.model.infer import InferEstimate
from rigwise.model.memory import MemoryBreakdown
from rigwise.units import format_bytes, format_duration, format_rate, format_usd
from rigwise.validation.intervals import Interval


def _span(rng: tuple[float, float] | None, fmt: Callable[[float], str]) -> str:
    """`` [dim](low–high)[/dim]`` for an 80 % range, or nothing without one."""
    if rng is None:
        return ""
    return f" [dim]({fmt(rng[0])} – {fmt(rng[1])})[/dim]"


def _number(v: float) -> str:
    """A rate's number and SI prefix without its unit, for ranges next to the full figure."""
    return format_rate(v, "").strip()


def _basis_note(basis: str, *intervals: Interval | None) -> str:
    """What the ranges rest on: the validated rows behind them and whether this GPU family
    was measured (calibrated) or the estimate extrapolates to it (blind)."""
    found = [i for i in intervals if i is not None]
    if not found:
        return f"{basis}; no validated rows to give a range"
    rows = ", ".join(f"{i.rows} {i.group} rows ({i.scope})" for i in found)
    what = ("calibrated: GEMM efficiency from benchmarks of this GPU family"
            if basis == "calibrated" else "blind: no benchmark of this GPU family used")
    return f"{what}; ranges in brackets are the 10th-90th percentile of the errors of {rows}"


def memory_table(m: MemoryBreakdown, rng: tuple[float, float] | None = None) -> Table:
    """The memory breakdown of one GPU; ``rng`` is the (low, high) of the total in bytes."""
    t = Table(title="memory per GPU", show_header=False)
    t.add_column("part")
    t.add_column("size", justify="right")
    for label, v in (("weights", m.weights_bytes), ("gradients", m.gradients_bytes),
                     ("optimizer states", m.optimizer_bytes),
                     ("activations", m.activations_bytes), ("KV cache", m.kv_cache_bytes),
                     ("framework overhead", m.overhead_bytes)):
        if v:
            t.add_row(label, format_bytes(v))
    verdict = "[green]fits[/green]" if m.fits else "[red]does not fit[/red]"
    t.add_row("[bold]total[/bold]",
              f"[bold]{format_bytes(m.per_gpu_bytes)}[/bold]{_span(rng, format_bytes)} of "
              f"{format_bytes(m.capacity_bytes)} — {verdict}")
    if m.paged_bytes:
        t.add_row("[dim]paged optimizer states[/dim]",
                  f"[dim]{format_bytes(m.paged_bytes)} in CUDA managed memory, not in the "
                  f"total: {format_bytes(m.paged_resident_bytes)} on the GPU, "
                  f"{format_bytes(m.paged_host_bytes)} in host memory[/dim]")
    return t


def train_view(e: TrainEstimate, gpu_name: str, model_name: str) -> Group:
    """Summary of a training estimate."""
    c = e.config
    head = Text.from_markup(
        f"[bold]{c.task}[/bold] {model_name} on {e.gpus} x {gpu_name} — {c.precision}, "
        f"batch {c.batch_size}/GPU" + (f" x {c.grad_accum} accumulated" if c.grad_accum > 1
                                       else "")
        + (f", seq {e.seq_len}" if e.seq_len else "")
        + (f" (mean {e.config.mean_seq_len})" if e.config.mean_seq_len else "")
        + (", activation checkpointing" if e.checkpointing else "")
        + ("" if c.master_weights else ", no master weights")
        + (", optimizer in backward" if c.optimizer_in_backward else "")
        + f" ({e.parallelism})")
    t = Table(show_header=False)
    t.add_column("")
    t.add_column("", justify="right")
    rng = e.samples_per_s_range()
    per_sample = e.step_time_s * e.samples_per_s
    t.add_row("step time", format_duration(e.step_time_s) + _span(
        None if rng is None else (per_sample / rng[1], per_sample / rng[0]), format_duration))
    t.add_row("throughput", format_rate(e.samples_per_s, "samples/s")
              + _span(rng, _number))
    if e.tokens_per_s:
        scale = e.tokens_per_s / e.samples_per_s
        t.add_row("", format_rate(e.tokens_per_s, "tokens/s") + _span(
            None if rng is None else (rng[0] * scale, rng[1] * scale),
            _number))
    t.add_row("MFU", f"{e.mfu:.0%}")
    t.add_row("bottleneck", e.bottleneck)
    feed = e.cores_to_feed
    if feed is not None:
        limit = e.loader_limit_samples_per_s
        t.add_row("CPU data loading", (
            f"{c.cpu_cores} cores of {c.data_loader}: {format_rate(limit, 'images/s')}; "
            if limit is not None else "")
            + (f"the GPUs need {_cores(feed['pillow'])} of Pillow or "
               f"{math.ceil(feed['pillow-simd'])} of Pillow-SIMD"))
    if e.optimizer_host_s is not None:
        t.add_row("optimizer step (CPU)", f"{c.optimizer_impl}: "
                  f"{format_duration(e.optimizer_host_s)}, "
                  f"{e.optimizer_host_s / e.step_time_s:.0%} of the step")
    s = e.shares
    t.add_row("time split", f"compute {s.compute_s / s.total_s:.0%}, memory-bound "
              f"{s.memory_s / s.total_s:.0%}, launch {s.launch_s / s.total_s:.0%}"
              + (f", comm {s.communication_s / s.total_s:.0%}" if s.communication_s else "")
              + (f", host transfers {s.host_s / s.total_s:.0%}" if s.host_s else ""))
    notes = Text("assumptions: " + "; ".join(e.assumptions) + "\n"
                 + _basis_note(e.basis, e.interval, e.memory_interval), style="dim")
    return Group(head, t, memory_table(e.memory, e.per_gpu_bytes_range()), notes)


def infer_view(e: InferEstimate, gpu_name: str, model_name: str) -> Group:
    """Summary of an inference estimate."""
    c = e.config
    head = Text.from_markup(
        f"[bold]inference[/bold] {model_name} on {e.gpus} x {gpu_name} — weights {c.weights}, "
        f"batch {c.batch_size}, prompt {c.prompt_tokens}, output {c.output_tokens}, engine "
        f"{c.engine} ({e.parallelism})")
    t = Table(show_header=False)
    t.add_column("")
    t.add_column("", justify="right")
    t.add_row("prefill", f"{format_duration(e.prefill_time_s)} at "
              f"{format_rate(e.prefill_tokens_per_s, 'tok/s')}"
              f"{_span(e.prefill_tokens_per_s_range(), _number)}")
    t.add_row("decode", f"{format_rate(e.decode_tokens_per_s, 'tok/s')}"
              f"{_span(e.decode_tokens_per_s_range(), _number)}"
              f", {format_duration(e.decode_time_per_token_s)} per token")
    t.add_row("bottleneck (decode)", e.bottleneck)
    s = e.serving
    if s is not None:
        if s.concurrency == 0:
            t.add_row("serving", f"[red]{s.limited_by}: not one sequence of "
                      f"{c.prompt_tokens + c.output_tokens} tokens fits[/red]")
        else:
            t.add_row("serving", f"{s.concurrency} sequences in flight (limit: "
                      f"{s.limited_by}; the KV cache holds {s.kv_sequences}), "
                      f"{format_bytes(s.kv_cache_bytes)} of KV cache per GPU")
            t.add_row("", format_rate(s.output_tokens_per_s, "output tok/s")
                      + _span(e.serving_tokens_per_s_range(), _number)
                      + f", {s.requests_per_s:.3g} requests/s")
            t.add_row("", f"{format_duration(s.decode_step_s)} per output token, "
                      f"{format_duration(s.request_latency_s)} per request (no queueing)")
    notes = Text("assumptions: " + "; ".join(e.assumptions) + "\n"
                 + _basis_note(e.basis, e.prefill_interval, e.decode_interval,
                               e.serving_interval), style="dim")
    return Group(head, t, memory_table(e.memory), notes)


def advice_table(a: Advice, *, show_excluded: bool = False) -> Group:
    """The ranked options of ``rigwise advise``."""
    cloud = a.constraints.market == "cloud"
    w = a.workload
    title = (f"{w.task} {a.model.name} — {a.constraints.market} market"
             + (f", budget {format_usd(a.constraints.budget_usd)}"
                if a.constraints.budget_usd else ""))
    t = Table(title=title)
    has_target = any(o.time_to_target_s for o in a.options)
    cols = ["#", "GPU", "GiB need/has", "throughput", "price", "perf/$", "W", "setting", "why"]
    if has_target:
        cols.insert(5, "time to target")
    for c in cols:
        t.add_column(c, justify="right" if c in ("#", "throughput", "price", "perf/$", "power",
                                                  "time to target") else "left",
                     overflow="fold", no_wrap=c in ("GPU", "throughput"))
    for i, o in enumerate(a.options, 1):
        short = o.gpu.name.replace("NVIDIA GeForce ", "").replace("NVIDIA ", "")
        name = short if o.gpus == 1 else f"{o.gpus}x {short}"
        per = o.gpu.devices_per_board  # a K80 or MI250X board carries two GPUs
        if per > 1:
            name += (f", {o.gpus // per} board{'s' if o.gpus > per else ''}"
                     if o.gpus % per == 0 else f", {o.gpus}/{per} board")
        mem = o.estimate.memory
        price = (f"${o.price_usd_per_h:.2f}/h" if o.price_usd_per_h else "-") if cloud else (
            format_usd(o.price_usd) if o.price_usd else "-")
        value = "-" if o.value is None else _per_dollar(o.value if cloud else o.value * 1000)
        need = f"{o.need_bytes / 2**30:.1f}/{mem.capacity_bytes / 2**30:.0f}"
        row = [str(i), name, need if o.fits else f"[red]{need}[/red]",
               format_rate(o.throughput, o.unit), price, value,
               f"{o.power_w:.0f}" if o.power_w else "-", o.setting, o.why]
        if has_target:
            row.insert(5, format_duration(o.time_to_target_s) if o.time_to_target_s else "-")
        t.add_row(*row)
    unit = "per $/h" if cloud else "per $1,000"
    parts: list[Table | Text] = [t, Text(
        f"perf/$ = {a.options[0].unit if a.options else 'throughput'} {unit}; price: "
        + ("cheapest on-demand rate seen" if cloud else f"{a.constraints.market} price")
        + ("; every option serves as many requests at once as its KV cache holds, up to "
           "the engine's limit (GiB need: weights and that KV cache)." if w.task == "serve"
           else "; every option uses its best batch size that fits."), style="dim")]
    if a.excluded:
        shown = "; ".join(f"{g}: {r}" for g, r in a.excluded) if show_excluded else \
            f"{len(a.excluded)} left out by the constraints (--show-excluded lists them)"
        parts.append(Text(shown, style="dim"))
    return Group(*parts)


def _cores(n: float) -> str:
    """``1 core``, ``6 cores``: a whole number of CPU cores, rounded up."""
    k = math.ceil(n)
    return f"{k} core" if k == 1 else f"{k} cores"


def _per_dollar(v: float) -> str:
    """Throughput per dollar (or per $1,000): whole numbers, three digits when small."""
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"
