"""JSON views of results: the stable ``--json`` contract of DESIGN.md.

Quantities are SI and the unit is in the key (``step_time_s``, ``per_gpu_bytes``).
"""

from __future__ import annotations

from typing import Any

from rigwise.advise.rank import Advice, Option
from rigwise.catalog.models import Gpu
from rigwise.model.estimate import TrainEstimate
from rigwise.model.infer import InferEstimate
from rigwise.model.memory import MemoryBreakdown
from rigwise.validation.intervals import Interval


def _round(x: float | None, digits: int = 6) -> float | None:
    if x is None:
        return None
    return float(f"{x:.{digits}g}")


def memory_json(m: MemoryBreakdown, rng: tuple[float, float] | None = None) -> dict[str, Any]:
    """``memory`` object: total per GPU (with its range where validated), its breakdown and
    the capacity, in bytes; with a paged optimizer, ``paged`` gives its states (CUDA managed
    memory, not in the total), the part that stays on the GPU and the part in host memory;
    ``held_from_previous_micro_batch_bytes`` is the part of the activations an earlier
    micro-batch still holds, where there is one."""
    paged: dict[str, Any] = {} if not m.paged_bytes else {"paged": {
        "optimizer_bytes": _round(m.paged_bytes),
        "resident_bytes": _round(m.paged_resident_bytes),
        "host_bytes": _round(m.paged_host_bytes)}}
    if m.held_bytes:
        paged["held_from_previous_micro_batch_bytes"] = _round(m.held_bytes)
    return {
        "per_gpu_bytes": _round(m.per_gpu_bytes),
        **_range("per_gpu_bytes", rng),
        "capacity_bytes": _round(m.capacity_bytes),
        "breakdown": {
            "weights_bytes": _round(m.weights_bytes),
            "gradients_bytes": _round(m.gradients_bytes),
            "optimizer_bytes": _round(m.optimizer_bytes),
            "activations_bytes": _round(m.activations_bytes),
            "kv_cache_bytes": _round(m.kv_cache_bytes),
            "overhead_bytes": _round(m.overhead_bytes),
        },
        **paged,
    }


def train_json(e: TrainEstimate) -> dict[str, Any]:
    """``rigwise estimate train --json``."""
    c = e.config
    return {
        "model": e.model, "gpu": e.gpu, "gpus": e.gpus, "task": c.task,
        "precision": c.precision, "batch_size": c.batch_size, "seq_len": e.seq_len,
        **({"mean_seq_len": c.mean_seq_len} if c.mean_seq_len is not None else {}),
        **({"grad_accum": c.grad_accum} if c.grad_accum > 1 else {}),
        "optimizer": c.optimizer, "checkpointing": e.checkpointing,
        "master_weights": c.master_weights, "optimizer_in_backward": c.optimizer_in_backward,
        "parallelism": e.parallelism,
        "fits": e.fits, "memory": memory_json(e.memory, e.per_gpu_bytes_range()),
        "step_time_s": _round(e.step_time_s),
        "throughput": _train_throughput(e),
        "mfu": _round(e.mfu, 4), "model_flop_per_step": _round(e.model_flop_per_step),
        "bottleneck": e.bottleneck,
        "time_breakdown_s": {"compute": _round(e.shares.compute_s),
                             "memory": _round(e.shares.memory_s),
                             "launch": _round(e.shares.launch_s),
                             "communication": _round(e.shares.communication_s),
                             **({"host_transfer": _round(e.shares.host_s)}
                                if e.memory.paged_bytes else {})},
        "assumptions": list(e.assumptions),
        "interval": _interval_json(e.basis, e.interval),
        **_loader_json(e),
        **_optimizer_impl_json(e),
        **_framework_json(e),
    }


def _framework_json(e: TrainEstimate) -> dict[str, Any]:
    """Training code other than the generic one, and bitsandbytes before 0.43.2."""
    out: dict[str, Any] = {}
    if e.config.framework != "generic":
        out["framework"] = e.config.framework
    if e.config.bnb_saves_input:
        out["bitsandbytes_keeps_inputs"] = True
    return out


def _optimizer_impl_json(e: TrainEstimate) -> dict[str, Any]:
    """A non-fused optimizer step: its implementation and the CPU seconds of issuing it."""
    if e.optimizer_host_s is None:
        return {}
    return {"optimizer_impl": e.config.optimizer_impl,
            "optimizer_host_s": _round(e.optimizer_host_s)}


def _loader_json(e: TrainEstimate) -> dict[str, Any]:
    """Image models: the CPU data loader's limit and the cores each loader needs to keep up."""
    feed = e.cores_to_feed
    if feed is None:
        return {}
    c = e.config
    return {"data_loader": {
        "loader": c.data_loader, "cpu_cores": c.cpu_cores,
        "limit_samples_per_s": _round(e.loader_limit_samples_per_s),
        "gpu_samples_per_s": _round(e.gpu_samples_per_s),
        "cores_to_feed": {k: _round(v, 3) for k, v in feed.items()}}}


def _interval_json(basis: str, *intervals: Interval | None) -> dict[str, Any]:
    """Where the ranges come from: calibrated or blind, and the validated rows behind them."""
    found = [i for i in intervals if i is not None]
    return {"basis": basis, "percentiles": [10, 90],
            "from": [{"group": i.group, "scope": i.scope, "rows": i.rows} for i in found]}


def _train_throughput(e: TrainEstimate) -> dict[str, Any]:
    out: dict[str, Any] = {"samples_per_s": _round(e.samples_per_s),
                           "tokens_per_s": _round(e.tokens_per_s)}
    rng = e.samples_per_s_range()
    if rng is not None:
        lo, hi = rng
        out["samples_per_s_low"], out["samples_per_s_high"] = _round(lo), _round(hi)
        if e.tokens_per_s is not None:
            scale = e.tokens_per_s / e.samples_per_s
            out["tokens_per_s_low"] = _round(lo * scale)
            out["tokens_per_s_high"] = _round(hi * scale)
    return out


def infer_json(e: InferEstimate) -> dict[str, Any]:
    """``rigwise estimate infer --json``."""
    c = e.config
    return {
        "model": e.model, "gpu": e.gpu, "gpus": e.gpus, "weights": c.weights,
        "batch_size": c.batch_size, "prompt_tokens": c.prompt_tokens,
        "output_tokens": c.output_tokens, "engine": c.engine, "parallelism": e.parallelism,
        "fits": e.fits, "memory": memory_json(e.memory),
        "prefill": {"time_s": _round(e.prefill_time_s),
                    "tokens_per_s": _round(e.prefill_tokens_per_s),
                    **_range("tokens_per_s", e.prefill_tokens_per_s_range())},
        "decode": {"tokens_per_s": _round(e.decode_tokens_per_s),
                   "time_per_token_s": _round(e.decode_time_per_token_s),
                   **_range("tokens_per_s", e.decode_tokens_per_s_range())},
        "bottleneck": e.bottleneck, "assumptions": list(e.assumptions),
        "interval": _interval_json(e.basis, e.prefill_interval, e.decode_interval,
                                   e.serving_interval),
        **_serving_json(e),
    }


def _serving_json(e: InferEstimate) -> dict[str, Any]:
    """With ``--concurrency``: the steady state of serving many requests."""
    s = e.serving
    if s is None:
        return {}
    return {"serving": {
        "concurrency": s.concurrency, "limited_by": s.limited_by,
        "kv_cache_sequences": s.kv_sequences, "kv_cache_bytes": _round(s.kv_cache_bytes),
        "kv_bytes_per_element": e.config.kv_bytes, "prefill_batch": s.prefill_batch,
        "prefill_s_per_request": _round(s.prefill_s_per_request),
        "time_per_output_token_s": _round(s.decode_step_s),
        "output_tokens_per_s": _round(s.output_tokens_per_s),
        **_range("output_tokens_per_s", e.serving_tokens_per_s_range()),
        "requests_per_s": _round(s.requests_per_s),
        "request_latency_s": _round(s.request_latency_s)}}


def _range(key: str, rng: tuple[float, float] | None) -> dict[str, float | None]:
    if rng is None:
        return {}
    return {f"{key}_low": _round(rng[0]), f"{key}_high": _round(rng[1])}


def option_json(o: Option) -> dict[str, Any]:
    """One ranked option of ``rigwise advise --json``."""
    return {
        "gpu": o.gpu.id, "name": o.gpu.name, "gpus": o.gpus, "fits": o.fits,
        **({"devices_per_board": (per := o.gpu.devices_per_board), "boards": o.gpus / per}
           if o.gpu.devices_per_board > 1 else {}),
        "setting": o.setting,
        "memory": {"per_gpu_bytes": _round(o.need_bytes),
                   "capacity_bytes": _round(o.gpu.memory_bytes)},
        "throughput": {"value": _round(o.throughput), "unit": o.unit,
                       "tokens_per_s": _round(o.tokens_per_s)},
        "price": {"usd": _round(o.price_usd), "usd_per_h": _round(o.price_usd_per_h),
                  "note": o.price_note},
        "throughput_per_usd": _round(o.value),
        "power_w": _round(o.power_w),
        "time_to_target_s": _round(o.time_to_target_s),
        "cost_to_target_usd": _round(o.cost_to_target_usd),
        "bottleneck": o.estimate.bottleneck,
        "why": o.why,
        "estimate": train_json(o.estimate) if isinstance(o.estimate, TrainEstimate)
        else infer_json(o.estimate),
    }


def advice_json(a: Advice) -> dict[str, Any]:
    """``rigwise advise --json``."""
    c, w = a.constraints, a.workload
    return {
        "model": a.model.id, "task": w.task, "market": c.market,
        "constraints": {"budget_usd": c.budget_usd, "max_power_w": c.max_power_w,
                        "max_total_power_w": c.max_total_power_w,
                        "min_memory_bytes": c.min_memory_bytes, "gpus": c.gpus,
                        "form_factor": c.form_factor, "vendors": list(c.vendors)},
        "value_unit": "tok/s per USD" if w.task in ("infer", "serve") else "samples/s per USD",
        "options": [option_json(o) for o in a.options],
        "excluded": [{"gpu": g, "reason": r} for g, r in a.excluded],
    }


def gpu_json(g: Gpu) -> dict[str, Any]:
    """One catalog GPU with its specs (SI units), sources and prices."""
    return {
        "id": g.id, "name": g.name, "vendor": g.vendor, "segment": g.segment,
        "architecture": g.architecture, "chip": g.chip,
        "compute_capability": g.compute_capability, "aliases": list(g.aliases),
        "release_date": g.release_date.isoformat(),
        "memory_bytes": g.memory_bytes, "memory_type": g.memory_type,
        "memory_bandwidth_bytes_per_s": g.memory_bandwidth_bytes_per_s,
        "l2_cache_bytes": g.l2_cache_bytes, "compute_units": g.compute_units,
        "boost_clock_hz": g.boost_clock_hz,
        "peak_dense_flop_per_s": dict(g.peak_flop_per_s),
        "sparsity_factor": g.sparsity_factor, "tdp_w": g.tdp_w,
        "form_factor": g.form_factor, "slots": g.slots, "cooling": g.cooling,
        "pcie_gen": g.pcie_gen, "pcie_lanes": g.pcie_lanes,
        "scaleup_fabric": g.scaleup_fabric,
        "scaleup_bytes_per_s_per_direction": g.scaleup_bytes_per_s_per_direction,
        "p2p": g.p2p, "launch_price_usd": g.launch_price_usd,
        "devices_per_board": g.devices_per_board,
        "prices": [p.model_dump(mode="json", exclude_none=True) for p in g.prices],
        "provenance": g.provenance,
        "sources": {k: s.model_dump(mode="json") for k, s in g.sources.items()},
    }
