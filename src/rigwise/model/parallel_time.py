"""Time of the parts of a parallel plan's step (seconds), on the slowest (last) stage:

* ``t_mb`` = compute of one micro-batch (roofline per op, :mod:`rigwise.model.roofline`) +
  TP collectives (2 all-reduces per layer forward, 2 backward, 2 more when recomputing; with
  SP the same bytes as all-gather + reduce-scatter) + EP all-to-alls (2 per MoE layer
  forward, 2 backward) + ZeRO-3 gathers left exposed by prefetch;
* the stage-to-stage sends of the pipeline;
* the data-parallel traffic: ZeRO-0 all-reduces the gradients; ZeRO-1 and ZeRO-2 both
  reduce-scatter them and all-gather the updated parameters (Rajbhandari et al. 2020, §5, §7);
  ZeRO-3 reduce-scatters them (its parameter gathers are per layer, above). The gradient
  reduction overlaps the last micro-batch's backward pass, the parameter all-gather the next
  step's first forward pass (:func:`_dp_sync`);
* the optimizer step, on the GPU (memory-bound over the local states) or the CPU.

Parameter gathers move :func:`rigwise.model.parallel_memory.gathered_weight_bytes` per value
(2 for 16-bit, 1 for fp8, 4 for fp32); gradients 2 bytes per value for 16-bit and fp8
training, 4 for fp32.

:mod:`rigwise.model.parallel_evaluate` adds them up with the pipeline bubble.
"""

from __future__ import annotations

import math
from dataclasses import replace

from rigwise.model import comm
from rigwise.model.comm import Group, collective_time
from rigwise.model.efficiency import overheads
from rigwise.model.memory import OPTIMIZER_STEP_BYTES_PER_PARAM
from rigwise.model.ops import Op, PassSpec, gemm, memory, transformer_forward
from rigwise.model.parallel_context import _REPLICATED_WITHOUT_SP, _Ctx, _placement
from rigwise.model.parallel_memory import _params, gathered_weight_bytes
from rigwise.model.parallel_plan import PlanSpec
from rigwise.model.step import TimeShares, backward_ops, time_ops
from rigwise.workload.schema import TransformerShape


def _sharded_shape(s: TransformerShape, p: PlanSpec, layers: int) -> TransformerShape:
    return s.model_copy(update={
        "n_layers": layers, "n_heads": s.n_heads // p.tp, "n_kv_heads": s.n_kv_heads // p.tp,
        "head_dim": s.d_head, "ffn_hidden": max(1, s.ffn_hidden // p.tp),
        "vocab": max(1, math.ceil(s.vocab / p.tp)) if s.vocab else 0,
        "n_experts": 1, "experts_per_token": 1})


def _moe_ops(ctx: _Ctx, p: PlanSpec, layers: int) -> list[Op]:
    """Expert MLP ops of one GPU: its ``E/ep`` experts on the ``b·s·k`` token slots routed to
    it on average (balanced routing), each expert split ``tp`` ways."""
    s, ab, wb = ctx.shape, ctx.act_bytes, ctx.w_bytes
    t = p.microbatch * ctx.seq
    local = s.n_experts // p.ep
    t_exp = max(1, round(t * s.experts_per_token / local))
    f = max(1, s.ffn_hidden // p.tp)
    up = 2 * f if s.ffn_kind == "swiglu" else f
    count = layers * local
    return [gemm("router", t, s.n_experts, s.hidden, act_bytes=ab, w_bytes=wb, count=layers),
            memory("permute", 2 * t * s.experts_per_token * s.hidden * ab,
                   t * s.experts_per_token * s.hidden * ab, count=layers),
            gemm("mlp_up", t_exp, up, s.hidden, act_bytes=ab, w_bytes=wb, count=count),
            memory("act", 2 * t_exp * f * ab, t_exp * f * ab, count=count,
                   saved=(2 if s.ffn_kind == "swiglu" else 1) * t_exp * f * ab),
            gemm("mlp_down", t_exp, s.hidden, f, act_bytes=ab, w_bytes=wb, count=count)]


def _stage_ops(ctx: _Ctx, p: PlanSpec, layers: int) -> list[Op]:
    """Forward ops of one GPU of the last stage for one micro-batch."""
    s = ctx.shape
    spec = PassSpec(batch=p.microbatch, seq=ctx.seq, context=ctx.seq, act_bytes=ctx.act_bytes,
                    w_bytes=ctx.w_bytes, causal=s.family == "decoder")
    ops = transformer_forward(_sharded_shape(s, p, layers), spec)
    if s.n_experts > 1:
        ops = [o for o in ops if not o.name.startswith(("mlp_", "swiglu", "gelu"))]
        ops += _moe_ops(ctx, p, layers)
    if p.sp:  # norms, residuals and dropout run on s/t tokens each
        ops = [replace(o, bytes=o.bytes / p.tp, saved_bytes=o.saved_bytes / p.tp)
               if o.name in _REPLICATED_WITHOUT_SP and o.kind == "memory" else o for o in ops]
    return ops


def _microbatch_compute(ctx: _Ctx, p: PlanSpec) -> tuple[TimeShares, TimeShares, list[Op]]:
    """(layers, outside-layers) time of one micro-batch forward+backward(+recompute) on the
    last stage, and its forward ops; cached on the parts of the plan that matter."""
    layers = math.ceil(ctx.shape.n_layers / p.pp)
    key = (p.tp, p.ep, p.microbatch, p.sp, p.checkpointing, layers)
    hit = ctx.cache.get(key)
    if hit is not None:
        return hit
    fwd = _stage_ops(ctx, p, layers)
    inner = [o for o in fwd if o.layer]
    outer = [o for o in fwd if not o.layer and (p.pp == 1 or o.name != "embedding")]
    recompute = inner if p.checkpointing else []
    launch = ctx.dev.eff.launch_s
    t_in = time_ops(ctx.dev, inner + backward_ops(inner) + recompute, launch)
    t_out = time_ops(ctx.dev, outer + backward_ops(outer), launch)
    ctx.cache[key] = (t_in, t_out, fwd)
    return t_in, t_out, fwd


def _grad_bytes_per_value(ctx: _Ctx) -> float:
    return 2.0 if ctx.precision in ("fp16", "bf16", "fp8") else 4.0


def _comm(ctx: _Ctx, p: PlanSpec, t_mb_compute: float, m: int, fwd: list[Op]
          ) -> tuple[dict[str, float], dict[str, float], float]:
    """Exposed and total communication seconds per step by kind, and exposed seconds per
    micro-batch (TP, EP and ZeRO-3 gathers sit on every micro-batch's critical path)."""
    s, sys_ = ctx.shape, ctx.system
    groups = _placement(ctx, p)
    layers = math.ceil(s.n_layers / p.pp)
    overlap = overheads().ddp_overlap
    act = p.microbatch * ctx.seq * s.hidden * ctx.act_bytes
    per_mb: dict[str, float] = {}
    if p.tp > 1:
        n_ar = layers * (4 + (2 if p.checkpointing else 0))
        per_mb["tp"] = n_ar * collective_time("all_reduce", act, sys_, groups["tp"]).time_s
    if p.ep > 1 and s.n_experts > 1:
        n_a2a = layers * (4 + (2 if p.checkpointing else 0))
        size = act * s.experts_per_token / (p.tp if p.sp else 1)
        per_mb["ep"] = n_a2a * collective_time("all_to_all", size, sys_, groups["ep"]).time_s
    dense, experts, dense_layer, expert_layer = _params(ctx, p)
    work = gathered_weight_bytes(ctx.precision)
    if p.zero == 3 and p.dp > 1:
        layer_bytes = (dense_layer + expert_layer) * work
        c = collective_time("all_gather", layer_bytes, sys_, groups["dp"]).time_s
        per_layer = t_mb_compute / max(layers, 1) / 3.0  # forward third of fwd+bwd
        per_mb["zero3"] = prefetch_twice(c, per_layer, layers, overlap)
    total = {k: v * m for k, v in per_mb.items()}
    exposed = dict(total)
    if p.pp > 1:
        size = act / (p.tp if p.sp else 1)
        hop = collective_time("send_recv", size, sys_, groups["pp"]).time_s
        sends = (m + p.pp - 1) * 2 * p.chunks
        total["pp"] = exposed["pp"] = sends * hop
    if p.dp > 1:
        total["dp"], exposed["dp"] = _dp_sync(ctx, p, groups, dense, experts,
                                              backward_s=t_mb_compute * 2.0 / 3.0,
                                              forward_s=t_mb_compute / 3.0)
    return exposed, total, sum(per_mb.values())


def prefetch_twice(per_layer_comm_s: float, per_layer_fwd_s: float, layers: int,
                   overlap: float) -> float:
    """ZeRO-3/FSDP gathers of one micro-batch: forward (hidden behind the previous layer's
    forward) and backward (behind the previous layer's backward, twice as long)."""
    return (comm.prefetch_exposed(per_layer_comm_s, per_layer_fwd_s, layers, overlap)
            + comm.prefetch_exposed(per_layer_comm_s, 2 * per_layer_fwd_s, layers, overlap))


def _dp_sync(ctx: _Ctx, p: PlanSpec, groups: dict[str, Group], dense: float, experts: float,
             backward_s: float, forward_s: float) -> tuple[float, float]:
    """(total, exposed) seconds of the data-parallel traffic of a step.

    ZeRO-0 all-reduces the gradients behind the last micro-batch's backward pass. ZeRO-1
    and -2 reduce-scatter them instead, each GPU updates its ``1/dp`` shard, and the updated
    parameters are all-gathered (Rajbhandari et al. 2020, §7: the same ``2Ψ`` as an
    all-reduce) behind the next step's first forward pass, as Megatron-LM's distributed
    optimizer does (``--overlap-param-gather``), at :func:`gathered_weight_bytes` per value
    (the working copy: 2 for 16-bit, 1 for fp8, 4 for fp32). ZeRO-3 reduce-scatters only
    (its gathers are per layer, in ``zero3``).
    """
    b = _grad_bytes_per_value(ctx)
    work = gathered_weight_bytes(ctx.precision)
    op: comm.Collective = "all_reduce" if p.zero == 0 else "reduce_scatter"
    grads = gather = overhead = 0.0
    for params, group in ((dense, groups["dp"]), (experts, groups["edp"])):
        if params <= 0 or group.size <= 1:
            continue
        size = params * b
        if p.compression:
            overhead += comm.compression_overhead_s(size, b, ctx.dev.memory_bytes_per_s,
                                                    group.size)
            size = comm.compressed_bytes(size, b)
        grads += collective_time(op, size, ctx.system, group).time_s
        if p.zero in (1, 2):
            gather += collective_time("all_gather", params * work, ctx.system, group).time_s
    o = overheads().ddp_overlap
    tail = grads * min(1.0, comm.DDP_BUCKET_BYTES / max(dense * b, 1.0))
    v = p.chunks if p.schedule == "interleaved" else 1
    # interleaved: min(m, p) micro-batches of one chunk run between two chunks' passes
    m = max(1, ctx.global_batch // max(p.dp, 1) // max(p.microbatch, 1))
    spacing = min(m, p.pp) / v
    exposed = (comm.chunked_exposed(grads, backward_s, v, spacing * backward_s, o, tail)
               + comm.chunked_exposed(gather, forward_s, v, spacing * forward_s, o) + overhead)
    return grads + gather + overhead, exposed


def _optimizer_s(ctx: _Ctx, p: PlanSpec) -> tuple[float, float]:
    """(GPU optimizer step, CPU offload) seconds. The GPU step is one memory-bound pass over
    the local states (:data:`rigwise.model.memory.OPTIMIZER_STEP_BYTES_PER_PARAM`, e.g.
    AdamW 32 B per parameter read and written, as the single-GPU estimate); with offload
    (Ren et al. 2021, ZeRO-Offload) the CPU updates the shard at ``cpu_adam_params_per_s``
    shared by the GPUs in use, gradients go down the host link (2 B per parameter for
    16-bit and fp8 training, 4 for fp32) and the updated parameters come up in the GPU's
    working format (:func:`gathered_weight_bytes`: 2, 1 for fp8, 4 for fp32)."""
    dense, experts, _, _ = _params(ctx, p)
    shard = max(1, p.dp) if p.zero >= 1 else 1
    local = dense / shard + experts / (max(1, p.dp // p.ep) if p.zero >= 1 else 1)
    per_param = OPTIMIZER_STEP_BYTES_PER_PARAM[ctx.cfg.optimizer]
    if not p.offload:
        return local * per_param / ctx.dev.memory_bytes_per_s, 0.0
    share = ctx.system.cpu_adam_params_per_s / min(ctx.system.gpus_per_node, p.gpus)
    per_value = _grad_bytes_per_value(ctx) + gathered_weight_bytes(ctx.precision)
    transfer = (dense + experts) / (p.dp if p.zero >= 2 else 1) * per_value \
        / ctx.system.host_bytes_per_s
    return 0.0, local / share + transfer
