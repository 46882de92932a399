"""Memory per GPU of a parallel plan, on its most loaded stage (bytes; perf-models.md §7.3-7.4):

* model states per parameter: working weights ``w`` (:func:`working_weight_bytes`: 2 for
  16-bit, 1 for fp8, none for fp32 whose master copy is the working copy), fp32 master 4,
  fp32 gradients 4, optimizer ``K`` (AdamW 8, 8-bit AdamW 2, SGD 4), as in
  :mod:`rigwise.model.memory`. A GPU holds its stage's layers divided by ``tp`` (experts by
  ``tp · ep``). ZeRO (Rajbhandari et al. 2020, §5): stage 1 shards the optimizer and master
  weights over the data-parallel group, stage 2 also the gradients, stage 3 (= FSDP full
  shard, Zhao et al. 2023) also the working weights, keeping two gathered layers (current and
  prefetched). CPU offload (Ren et al. 2021, ZeRO-Offload, §4: the fp32 parameter shard and
  the optimizer states live on the host, the compute copy on the GPU) moves the optimizer
  states and the fp32 master shard to host memory; with fp32 training the fp32 parameters
  are the GPU's compute copy, so they stay on the GPU (sharded by ZeRO-3) and the host keeps
  the copy of the shard its CPU Adam updates, beside the optimizer states;
* activations: Korthikanti et al. 2022, §4: tensor parallelism splits everything but the
  layer norms' inputs, the first GEMM inputs of attention and MLP and the dropout masks
  (``10 + 24/t`` of their ``34`` per ``s·b·h``); sequence parallelism splits those too
  (``34/t``). 1F1B keeps ``min(m, p)`` micro-batches in flight on the first stage
  (``× (1 + (p−1)/(p·v))`` interleaved, Narayanan et al. 2021 §2.2); full recomputation
  keeps only each layer's input (``/t`` with SP) plus one layer's activations.
"""

from __future__ import annotations

import math

from rigwise.model.memory import OPTIMIZER_BYTES_PER_PARAM, framework_overhead_bytes
from rigwise.model.ops import Op
from rigwise.model.parallel_context import _REPLICATED_WITHOUT_SP, _Ctx
from rigwise.model.parallel_plan import PlanMemory, PlanSpec
from rigwise.workload.params import attention_params, count_params, mlp_params, norm_params


def _params(ctx: _Ctx, p: PlanSpec) -> tuple[float, float, float, float]:
    """Parameters one GPU holds: (dense of the heaviest stage, experts, one layer's dense
    share, one layer's expert share), after TP/PP/EP splitting."""
    s = ctx.shape
    pc = count_params(s)
    layers = math.ceil(s.n_layers / p.pp)
    moe = s.n_experts > 1
    dense_layer = attention_params(s) + 2 * norm_params(s) + (0 if moe else mlp_params(s)) \
        + (s.hidden * s.n_experts if moe else 0)
    expert_layer = s.n_experts * mlp_params(s) if moe else 0
    ends = pc.embedding + pc.head if p.pp == 1 else max(pc.embedding, pc.head)
    dense = (layers * dense_layer + ends) / p.tp
    experts = layers * expert_layer / (p.tp * p.ep)
    return dense, experts, dense_layer / p.tp, expert_layer / (p.tp * p.ep)


_WORKING_WEIGHT_BYTES = {"fp16": 2.0, "bf16": 2.0, "fp8": 1.0}


def working_weight_bytes(precision: str) -> float:
    """Bytes per parameter of the working (compute) copy held beside the fp32 master
    weights: 2 for fp16/bf16 (Megatron-LM's accounting, Narayanan et al. 2021), 1 for fp8,
    0 for fp32/tf32, whose master copy is the working copy.

    fp8 keeps fp8 working weights: Transformer Engine's ``fp8_model_init`` (Megatron-LM
    ``--fp8-param-gather``; torchao float8 with FSDP2 ``enable_fsdp_float8_all_gather``), as
    :mod:`rigwise.model.memory` counts an fp8 run and as the GEMMs read the weights
    (:data:`rigwise.model.precision.TRAIN_PRECISIONS`: 1 byte per weight). Transformer
    Engine's default keeps bf16 parameters and casts them per GEMM; that setup is not
    modelled.
    """
    return _WORKING_WEIGHT_BYTES.get(precision, 0.0)


def gathered_weight_bytes(precision: str) -> float:
    """Bytes per parameter value in a parameter all-gather (ZeRO-1/2's gather of the updated
    parameters, ZeRO-3/FSDP's per-layer gathers, the gathered-layer buffers): the working
    copy's bytes (:func:`working_weight_bytes`: 2 for 16-bit, 1 for fp8, which gathers in
    fp8 as Megatron-LM ``--fp8-param-gather`` and torchao float8 FSDP2 all-gather do), or 4
    for fp32/tf32, whose fp32 weights are gathered themselves."""
    return working_weight_bytes(precision) or 4.0


def _state_bytes(ctx: _Ctx, p: PlanSpec) -> tuple[float, float, float, float]:
    """(weights, gradients, optimizer, host) bytes per GPU under ZeRO and offload."""
    dense, experts, dense_layer, expert_layer = _params(ctx, p)
    work = working_weight_bytes(ctx.precision)
    master, grad = 4.0, 4.0
    opt = OPTIMIZER_BYTES_PER_PARAM[ctx.cfg.optimizer]
    w = g = o = host = 0.0
    for params, d in ((dense, p.dp), (experts, max(1, p.dp // p.ep))):
        zd = d if p.zero >= 1 else 1
        m_bytes, o_bytes = params * master / zd, params * opt / zd
        w_bytes = params * work / (d if p.zero == 3 else 1)
        if work == 0.0 and p.zero < 3:
            m_bytes = params * master  # fp32: the master copy is the working copy
        if p.offload:
            host += params * master / zd + o_bytes  # CPU Adam's fp32 shard and its states
            o_bytes = 0.0
            if work > 0.0:  # 16-bit/fp8: the GPU keeps only its working copy
                m_bytes = 0.0
        w += w_bytes + m_bytes
        g += params * grad / (d if p.zero >= 2 else 1)
        o += o_bytes
    if p.zero == 3:  # current + prefetched layer, gathered
        w += 2 * (dense_layer + expert_layer) * gathered_weight_bytes(ctx.precision)
    return w, g, o, host


def _activations(ctx: _Ctx, p: PlanSpec, fwd: list[Op], microbatches: int) -> float:
    layers = math.ceil(ctx.shape.n_layers / p.pp)
    inner = sum(o.saved_bytes * o.count for o in fwd if o.layer)
    if p.sp:
        inner -= sum(o.saved_bytes * o.count * (1 - 1 / p.tp) for o in fwd
                     if o.layer and o.kind == "gemm" and o.name in _REPLICATED_WITHOUT_SP)
    outer = sum(o.saved_bytes * o.count for o in fwd if not o.layer)
    if p.checkpointing:
        layer_input = p.microbatch * ctx.seq * ctx.shape.hidden * ctx.act_bytes
        layer_input /= p.tp if p.sp else 1
        per_mb = layer_input * layers
        transient = inner / max(layers, 1)
    else:
        per_mb, transient = inner, 0.0
    if p.pp == 1:
        return per_mb + outer + transient
    inflight = float(min(microbatches, p.pp))
    if p.schedule == "interleaved":
        inflight *= 1 + (p.pp - 1) / (p.pp * p.chunks)
    first = per_mb * inflight + transient
    last = per_mb + outer + transient
    return max(first, last)


def _plan_memory(ctx: _Ctx, p: PlanSpec, fwd: list[Op], microbatches: int) -> PlanMemory:
    w, g, o, host = _state_bytes(ctx, p)
    acts = _activations(ctx, p, fwd, microbatches)
    return PlanMemory(w, g, o, acts, framework_overhead_bytes(acts, g), ctx.gpu.memory_bytes,
                      host)
