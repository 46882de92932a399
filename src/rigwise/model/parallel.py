"""Parallel training plans: memory per GPU and step time of DP x TP x PP (x EP) with ZeRO.

A plan splits ``n = dp · tp · pp`` GPUs (expert parallelism ``ep`` divides ``dp``). Ranks are
placed as Megatron-LM places them (Narayanan et al. 2021, §3.3): tensor parallelism innermost
(inside a node), then data parallelism, pipeline stages outermost.

Memory per GPU (bytes; perf-models.md §7.3-7.4):

* model states per parameter: working weights ``w`` (2 for 16-bit, 1 for fp8, none for fp32
  whose master copy is the working copy), fp32 master 4, fp32 gradients 4, optimizer ``K``
  (AdamW 8, 8-bit AdamW 2, SGD 4), as in :mod:`rigwise.model.memory`. A GPU holds its
  stage's layers divided by ``tp`` (experts by ``tp · ep``). ZeRO (Rajbhandari et al. 2020,
  §5): stage 1 shards the optimizer and master weights over the data-parallel group, stage 2
  also the gradients, stage 3 (= FSDP full shard, Zhao et al. 2023) also the working weights,
  keeping two gathered layers (current and prefetched). CPU offload (Ren et al. 2021,
  ZeRO-Offload) moves optimizer and master weights to host memory;
* activations: Korthikanti et al. 2022, §4: tensor parallelism splits everything but the
  layer norms' inputs, the first GEMM inputs of attention and MLP and the dropout masks
  (``10 + 24/t`` of their ``34`` per ``s·b·h``); sequence parallelism splits those too
  (``34/t``). 1F1B keeps ``min(m, p)`` micro-batches in flight on the first stage
  (``× (1 + (p−1)/(p·v))`` interleaved, Narayanan et al. 2021 §2.2); full recomputation
  keeps only each layer's input (``/t`` with SP) plus one layer's activations.

Step time (seconds) of the slowest (last) stage, ``m`` micro-batches of ``b`` sequences:

* ``t_mb`` = compute of one micro-batch (roofline per op, :mod:`rigwise.model.roofline`) +
  TP collectives (2 all-reduces per layer forward, 2 backward, 2 more when recomputing; with
  SP the same bytes as all-gather + reduce-scatter) + EP all-to-alls (2 per MoE layer
  forward, 2 backward) + ZeRO-3 gathers left exposed by prefetch;
* pipeline bubble ``(p−1)/v · t_mb`` (1F1B: ``v = 1``; interleaved with ``v`` chunks per
  GPU: Narayanan et al. 2021, eq. 1 and §2.2.2) and the stage-to-stage sends;
* the data-parallel gradient reduction (all-reduce; ZeRO-2 reduce-scatter + all-gather;
  ZeRO-3 reduce-scatter) overlapped with the last micro-batch's backward pass;
* the optimizer step, on the GPU (memory-bound over the local states) or the CPU.

MFU is model FLOPs (forward and backward, recomputation excluded) over peak (PaLM appendix B).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

from rigwise.catalog.models import Gpu
from rigwise.catalog.systems import System, default_system
from rigwise.errors import InputError
from rigwise.model import comm
from rigwise.model.comm import Group, collective_time
from rigwise.model.efficiency import efficiency_of, overheads
from rigwise.model.estimate import TimeShares, TrainConfig, _backward, _seq_len, _time_ops
from rigwise.model.memory import OPTIMIZER_BYTES_PER_PARAM
from rigwise.model.ops import Op, PassSpec, gemm, memory, transformer_forward
from rigwise.model.precision import train_precision
from rigwise.model.roofline import Device, make_device
from rigwise.workload.params import attention_params, count_params, mlp_params, norm_params
from rigwise.workload.schema import CnnShape, Model, TransformerShape

SCHEDULES = ("1f1b", "interleaved")
_REPLICATED_WITHOUT_SP = ("norm1", "norm2", "residual1", "residual2", "qkv", "mlp_up")


@dataclass(frozen=True, slots=True)
class PlanSpec:
    """One parallel configuration.

    ``dp · tp · pp`` is the GPU count; ``ep`` divides ``dp`` (MoE only); ``zero`` 0-3 (3 is
    FSDP full shard); ``microbatch`` sequences per micro-batch; ``schedule`` ``"1f1b"`` or
    ``"interleaved"`` with ``chunks`` model chunks per GPU; ``sp`` sequence parallelism with
    TP; ``offload`` optimizer states to the CPU; ``compression`` 8-bit gradients.
    """

    dp: int = 1
    tp: int = 1
    pp: int = 1
    ep: int = 1
    zero: int = 0
    microbatch: int = 1
    schedule: str = "1f1b"
    chunks: int = 1
    sp: bool = False
    checkpointing: bool = False
    offload: bool = False
    compression: bool = False

    @property
    def gpus(self) -> int:
        """GPUs the plan uses."""
        return self.dp * self.tp * self.pp

    def describe(self) -> str:
        """Short label, e.g. ``DP4 TP8 PP2(v2) ZeRO-1 mb1 SP ckpt``."""
        parts = [f"DP{self.dp}", f"TP{self.tp}", f"PP{self.pp}"]
        if self.schedule == "interleaved":
            parts[-1] += f"(v{self.chunks})"
        if self.ep > 1:
            parts.append(f"EP{self.ep}")
        parts.append("FSDP/ZeRO-3" if self.zero == 3 else f"ZeRO-{self.zero}")
        parts.append(f"mb{self.microbatch}")
        for flag, name in ((self.sp, "SP"), (self.checkpointing, "ckpt"),
                           (self.offload, "offload"), (self.compression, "8-bit grads")):
            if flag:
                parts.append(name)
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class PlanMemory:
    """Bytes per GPU of the most loaded stage, by kind."""

    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    overhead_bytes: float
    capacity_bytes: float
    host_bytes: float = 0.0

    @property
    def per_gpu_bytes(self) -> float:
        """Total bytes one GPU needs."""
        return (self.weights_bytes + self.gradients_bytes + self.optimizer_bytes
                + self.activations_bytes + self.overhead_bytes)

    @property
    def fits(self) -> bool:
        """True if the total fits in the device memory."""
        return self.per_gpu_bytes <= self.capacity_bytes


@dataclass(frozen=True, slots=True)
class StepTime:
    """Where one step's seconds go (all on the critical path).

    ``comm_exposed_s`` maps each kind of communication (``tp``, ``pp``, ``dp``, ``ep``,
    ``zero3``) to its exposed seconds; ``comm_total_s`` to its seconds before overlap.
    """

    compute_s: float
    memory_s: float
    launch_s: float
    bubble_s: float
    optimizer_s: float
    offload_s: float
    comm_exposed_s: dict[str, float]
    comm_total_s: dict[str, float]

    @property
    def total_s(self) -> float:
        """Step time in seconds."""
        return (self.compute_s + self.memory_s + self.launch_s + self.bubble_s
                + self.optimizer_s + self.offload_s + sum(self.comm_exposed_s.values()))


@dataclass(frozen=True, slots=True)
class Plan:
    """A parallel plan evaluated: memory, step time, rates and what limits it.

    ``fits`` is False when the plan does not fit in memory or cannot run (``reasons`` says
    why); rates are for all GPUs together; ``limit`` names the largest share of the step.
    """

    spec: PlanSpec
    model: str
    gpu: str
    system: str
    global_batch: int
    microbatches: int
    seq_len: int
    feasible: bool
    fits: bool
    reasons: tuple[str, ...]
    memory: PlanMemory
    time: StepTime
    step_time_s: float
    samples_per_s: float
    tokens_per_s: float
    mfu: float
    limit: str
    assumptions: tuple[str, ...] = field(default=())

    @property
    def gpus(self) -> int:
        """GPUs the plan uses."""
        return self.spec.gpus


@dataclass
class _Ctx:
    """What a search shares between plans: model, device, system and cached stage times."""

    model: Model
    shape: TransformerShape
    gpu: Gpu
    dev: Device
    system: System
    cfg: TrainConfig
    precision: str
    act_bytes: float
    w_bytes: float
    seq: int
    global_batch: int
    flop_per_sample: float
    cache: dict[tuple[object, ...], tuple[TimeShares, TimeShares, list[Op]]] = \
        field(default_factory=dict)


def _context(model: Model, gpu: Gpu, cfg: TrainConfig, system: System | None,
             global_batch: int | None, n_gpus: int) -> _Ctx:
    shape = model.shape
    if not isinstance(shape, TransformerShape):
        raise InputError(f"parallel plans cover transformers and CNNs; {model.name} is a "
                         "traced module (rigwise estimate train --gpus N models it as DDP)")
    if cfg.task not in ("train", "finetune"):
        raise InputError(f"parallel plans cover full training; task {cfg.task!r} is not "
                         "supported here")
    if n_gpus <= 0:
        raise InputError(f"GPU count must be positive, got {n_gpus}")
    prec = train_precision(cfg.precision, gpu)
    seq = _seq_len(model, shape, cfg.seq_len)
    batch = global_batch if global_batch is not None else cfg.batch_size * n_gpus
    if batch <= 0:
        raise InputError(f"global batch must be positive, got {batch}")
    if cfg.optimizer not in OPTIMIZER_BYTES_PER_PARAM:
        raise InputError(f"unknown optimizer {cfg.optimizer!r}")
    dev = make_device(gpu, prec.matmul, efficiency_of(gpu))
    sys_ = system or default_system(gpu, n_gpus)
    if sys_.max_gpus is not None and n_gpus > sys_.max_gpus:
        raise InputError(f"{sys_.name} holds at most {sys_.max_gpus} GPUs, not {n_gpus}; "
                         "pick a cluster template or your own file with --system")
    spec = PassSpec(batch=1, seq=seq, context=seq, act_bytes=prec.act_bytes,
                    w_bytes=prec.gemm_weight_bytes, causal=shape.family == "decoder")
    fwd = transformer_forward(shape, spec)
    flop = sum(op.flop * op.count for op in fwd + _backward(fwd))
    return _Ctx(model, shape, gpu, dev, sys_, cfg, prec.name, prec.act_bytes,
                prec.gemm_weight_bytes, seq, batch, flop)


def _check(ctx: _Ctx, p: PlanSpec, n_gpus: int) -> list[str]:
    """Why a plan cannot run (empty when it can)."""
    s, why = ctx.shape, []
    if p.gpus != n_gpus:
        why.append(f"DP{p.dp} x TP{p.tp} x PP{p.pp} = {p.gpus} GPUs, not {n_gpus}")
    if s.n_heads % p.tp or s.n_kv_heads % p.tp:
        why.append(f"TP{p.tp} does not divide the {s.n_heads} attention heads and "
                   f"{s.n_kv_heads} KV heads")
    if p.pp > s.n_layers:
        why.append(f"PP{p.pp} has more stages than the {s.n_layers} layers")
    if p.schedule == "interleaved" and (p.pp < 2 or p.chunks < 2
                                        or s.n_layers < p.pp * p.chunks):
        why.append(f"interleaved schedule needs PP>1 and at least PP x chunks = "
                   f"{p.pp * p.chunks} layers ({s.n_layers} here)")
    if p.ep > 1 and (s.n_experts % p.ep or p.dp % p.ep):
        why.append(f"EP{p.ep} must divide the {s.n_experts} experts and DP{p.dp}")
    per_replica, rem = divmod(ctx.global_batch, p.dp)
    if rem or per_replica % p.microbatch or per_replica == 0:
        why.append(f"global batch {ctx.global_batch} is not a multiple of DP{p.dp} x "
                   f"micro-batch {p.microbatch}")
    if p.sp and p.tp == 1:
        why.append("sequence parallelism needs TP > 1")
    if p.offload and p.zero == 0:
        why.append("CPU offload needs ZeRO stage 1 or more")
    max_gpus = ctx.system.max_gpus
    if max_gpus is not None and n_gpus > max_gpus:
        why.append(f"{ctx.system.name} holds at most {max_gpus} GPUs")
    return why


def _placement(ctx: _Ctx, p: PlanSpec) -> dict[str, Group]:
    g = ctx.system.gpus_per_node
    tp_k = min(p.tp, g)
    dp_k = min(p.dp, max(1, g // p.tp))
    ep_k = min(p.ep, max(1, g // p.tp))
    inside = p.tp * p.dp < g
    return {"tp": Group(p.tp, tp_k), "dp": Group(p.dp, dp_k), "ep": Group(p.ep, ep_k),
            "edp": Group(p.dp // p.ep, max(1, dp_k // p.ep)),
            "pp": Group(2, 2 if inside else 1)}


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
    t_in = _time_ops(ctx.dev, inner + _backward(inner) + recompute, launch)
    t_out = _time_ops(ctx.dev, outer + _backward(outer), launch)
    ctx.cache[key] = (t_in, t_out, fwd)
    return t_in, t_out, fwd


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


def _state_bytes(ctx: _Ctx, p: PlanSpec) -> tuple[float, float, float, float]:
    """(weights, gradients, optimizer, host) bytes per GPU under ZeRO and offload."""
    dense, experts, dense_layer, expert_layer = _params(ctx, p)
    work = {"fp16": 2.0, "bf16": 2.0, "fp8": 1.0}.get(ctx.precision, 0.0)
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
            host += m_bytes + o_bytes
            m_bytes = o_bytes = 0.0
        w += w_bytes + m_bytes
        g += params * grad / (d if p.zero >= 2 else 1)
        o += o_bytes
    if p.zero == 3:
        w += 2 * (dense_layer + expert_layer) * (work or master)  # current + prefetched layer
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
    oh = overheads()
    overhead = oh.cuda_context_bytes + oh.fragmentation * (acts + g)
    return PlanMemory(w, g, o, acts, overhead, ctx.gpu.memory_bytes, host)


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
    work = {"fp16": 2.0, "bf16": 2.0, "fp8": 1.0}.get(ctx.precision, 4.0)
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
    16-bit parameters are all-gathered (Rajbhandari et al. 2020, §7: the same ``2Ψ`` as an
    all-reduce) behind the next step's first forward pass, as Megatron-LM's distributed
    optimizer does (``--overlap-param-gather``). ZeRO-3 reduce-scatters only (its gathers
    are per layer, in ``zero3``).
    """
    b = _grad_bytes_per_value(ctx)
    work = {"fp16": 2.0, "bf16": 2.0, "fp8": 2.0}.get(ctx.precision, 4.0)
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
    the local states (AdamW 32 B per parameter read and written, as in estimate.py); with
    offload the CPU updates the shard at ``cpu_adam_params_per_s`` shared by the GPUs in use
    and gradients go down, parameters up the host link (2 B each per parameter)."""
    dense, experts, _, _ = _params(ctx, p)
    shard = max(1, p.dp) if p.zero >= 1 else 1
    local = dense / shard + experts / (max(1, p.dp // p.ep) if p.zero >= 1 else 1)
    per_param = {"adamw": 32.0, "adamw8bit": 20.0, "sgd": 20.0}[ctx.cfg.optimizer]
    if not p.offload:
        return local * per_param / ctx.dev.memory_bytes_per_s, 0.0
    share = ctx.system.cpu_adam_params_per_s / min(ctx.system.gpus_per_node, p.gpus)
    transfer = (dense + experts) / (p.dp if p.zero >= 2 else 1) * 2.0 * 2.0 \
        / ctx.system.host_bytes_per_s
    return 0.0, local / share + transfer


_LIMIT_NAMES = {"compute": "compute", "memory": "memory bandwidth",
                "launch": "kernel launch overhead", "bubble": "pipeline bubble",
                "optimizer": "optimizer step", "offload": "CPU offload",
                "tp": "tensor-parallel communication", "pp": "pipeline communication",
                "dp": "data-parallel gradient sync", "ep": "expert all-to-all",
                "zero3": "ZeRO-3/FSDP parameter gathers"}


def _limit(t: StepTime) -> str:
    parts = {"compute": t.compute_s, "memory": t.memory_s, "launch": t.launch_s,
             "bubble": t.bubble_s, "optimizer": t.optimizer_s, "offload": t.offload_s,
             **t.comm_exposed_s}
    return _LIMIT_NAMES[max(parts, key=lambda k: parts[k])]


def _evaluate(ctx: _Ctx, p: PlanSpec, n_gpus: int) -> Plan:
    why = _check(ctx, p, n_gpus)
    m = max(1, ctx.global_batch // max(p.dp, 1) // max(p.microbatch, 1))
    if why:
        return _infeasible(ctx, p, m, tuple(why))
    t_in, t_out, fwd = _microbatch_compute(ctx, p)
    mem = _plan_memory(ctx, p, fwd, m)
    compute_mb = t_in.total_s + t_out.total_s
    exposed, total, comm_mb = _comm(ctx, p, compute_mb, m, fwd)
    bubble = (p.pp - 1) / p.chunks * (compute_mb + comm_mb)
    opt_s, off_s = _optimizer_s(ctx, p)
    t = StepTime(compute_s=m * (t_in.compute_s + t_out.compute_s),
                 memory_s=m * (t_in.memory_s + t_out.memory_s),
                 launch_s=m * (t_in.launch_s + t_out.launch_s), bubble_s=bubble,
                 optimizer_s=opt_s, offload_s=off_s, comm_exposed_s=exposed,
                 comm_total_s=total)
    step = t.total_s
    samples = ctx.global_batch / step
    mfu = ctx.global_batch * ctx.flop_per_sample / (step * n_gpus * ctx.dev.matmul_flop_per_s)
    reasons: tuple[str, ...] = ()
    if not mem.fits:
        reasons = (f"needs {mem.per_gpu_bytes / 2**30:.1f} GiB per GPU, "
                   f"{ctx.gpu.name} has {ctx.gpu.memory_bytes / 2**30:.0f} GiB",)
    return Plan(spec=p, model=ctx.model.id, gpu=ctx.gpu.id, system=ctx.system.id,
                global_batch=ctx.global_batch, microbatches=m, seq_len=ctx.seq, feasible=True,
                fits=mem.fits, reasons=reasons, memory=mem, time=t, step_time_s=step,
                samples_per_s=samples, tokens_per_s=samples * ctx.seq, mfu=mfu,
                limit=_limit(t) if mem.fits else "memory capacity",
                assumptions=ctx.system.assumptions)


def _infeasible(ctx: _Ctx, p: PlanSpec, m: int, why: tuple[str, ...]) -> Plan:
    zero_mem = PlanMemory(0.0, 0.0, 0.0, 0.0, 0.0, ctx.gpu.memory_bytes)
    zero_t = StepTime(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, {}, {})
    return Plan(spec=p, model=ctx.model.id, gpu=ctx.gpu.id, system=ctx.system.id,
                global_batch=ctx.global_batch, microbatches=m, seq_len=ctx.seq,
                feasible=False, fits=False, reasons=why, memory=zero_mem, time=zero_t,
                step_time_s=math.inf, samples_per_s=0.0, tokens_per_s=0.0, mfu=0.0,
                limit="infeasible", assumptions=ctx.system.assumptions)


def evaluate_plan(model: Model, gpu: Gpu, spec: PlanSpec, cfg: TrainConfig, *,
                  system: System | None = None, global_batch: int | None = None) -> Plan:
    """Memory and step time of one plan of ``spec.gpus`` GPUs.

    ``cfg`` gives precision, sequence length and optimizer (``cfg.batch_size`` is per GPU
    when ``global_batch`` is None: ``global = batch_size · gpus``). A plan that cannot run
    (TP not dividing the heads, more stages than layers, a batch that does not split) comes
    back with ``feasible = fits = False`` and its ``reasons``. A CNN gets data-parallel
    plans only (DDP or ZeRO-1/2, :mod:`rigwise.model.ddp`); its ``seq_len`` is 0.

    Raises:
        InputError: a traced module, a task other than full training, non-positive sizes.
        UnsupportedError: a precision the GPU cannot run.
    """
    if isinstance(model.shape, CnnShape):
        from rigwise.model import ddp
        cctx = ddp.cnn_context(model, gpu, cfg, system, global_batch, spec.gpus)
        return ddp.evaluate_cnn(cctx, spec, spec.gpus)
    ctx = _context(model, gpu, cfg, system, global_batch, spec.gpus)
    return _evaluate(ctx, spec, spec.gpus)


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """Which options :func:`search_plans` tries. ``None`` leaves a choice to the search."""

    zero_stages: tuple[int, ...] = (0, 1, 2, 3)
    microbatches: tuple[int, ...] = (1, 2, 4, 8, 16)
    chunks: tuple[int, ...] = (2, 4)
    checkpointing: tuple[bool, ...] = (False, True)
    sp: tuple[bool, ...] = (False, True)
    offload: tuple[bool, ...] = (False, True)
    compression: bool = False
    max_tp: int | None = None


def spec_from_label(label: str, n_gpus: int) -> PlanSpec:
    """A plan from a label such as ``"TP8 PP35 mb1 ZeRO-1 SP ckpt"`` (the form
    :meth:`PlanSpec.describe` writes; ``PP16(v4)`` for interleaving; DP is what is left of
    ``n_gpus``).

    Raises:
        InputError: an unknown token, or TP x PP not dividing ``n_gpus``.
    """
    import re
    fields: dict[str, object] = {}
    for tok in label.replace(",", " ").split():
        t = tok.lower()
        if mt := re.fullmatch(r"(dp|tp|pp|ep)(\d+)(?:\(v(\d+)\))?", t):
            fields[mt.group(1)] = int(mt.group(2))
            if mt.group(3):
                fields["schedule"], fields["chunks"] = "interleaved", int(mt.group(3))
        elif mz := re.fullmatch(r"(?:zero-?|fsdp/zero-)(\d)", t):
            fields["zero"] = int(mz.group(1))
        elif mb := re.fullmatch(r"mb(\d+)", t):
            fields["microbatch"] = int(mb.group(1))
        elif t in ("sp", "ckpt", "offload"):
            fields[{"sp": "sp", "ckpt": "checkpointing", "offload": "offload"}[t]] = True
        else:
            raise InputError(f"unknown plan token {tok!r} in {label!r}")
    tp, pp = int(str(fields.get("tp", 1))), int(str(fields.get("pp", 1)))
    if n_gpus % (tp * pp):
        raise InputError(f"TP{tp} x PP{pp} does not divide {n_gpus} GPUs")
    fields.setdefault("dp", n_gpus // (tp * pp))
    return PlanSpec(**fields)  # type: ignore[arg-type]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def enumerate_plans(n_gpus: int, shape: TransformerShape, gpus_per_node: int,
                    space: SearchSpace = SearchSpace()) -> list[PlanSpec]:
    """Every plan of the search space for ``n_gpus`` (before feasibility checks): TP up to a
    node (and ``max_tp``), PP up to the layer count, EP over the divisors of DP and of the
    expert count, every ZeRO stage, micro-batch, schedule, SP, checkpointing, offload."""
    max_tp = min(space.max_tp or gpus_per_node, gpus_per_node, n_gpus, 64)
    out: list[PlanSpec] = []
    for tp in (d for d in _divisors(n_gpus) if d <= max_tp and shape.n_heads % d == 0):
        for pp in (d for d in _divisors(n_gpus // tp) if d <= shape.n_layers):
            dp = n_gpus // (tp * pp)
            eps = [e for e in _divisors(dp) if shape.n_experts % e == 0] \
                if shape.n_experts > 1 else [1]
            scheds = [("1f1b", 1)] + ([("interleaved", c) for c in space.chunks
                                       if shape.n_layers >= pp * c] if pp > 1 else [])
            # one replica: ZeRO has nothing to shard, but ZeRO-Offload still moves the
            # optimizer to the CPU (stage 2 + offload)
            stages = [(z, o) for z in space.zero_stages for o in space.offload
                      if (not o or z >= 1) and (dp > 1 or (z, o) in ((0, False), (2, True)))]
            sps = [x for x in space.sp if not x or tp > 1]
            for ep, (zero, off), mb, (sched, ch), sp, ck in itertools.product(
                    eps, stages, space.microbatches, scheds, sps, space.checkpointing):
                out.append(PlanSpec(dp, tp, pp, ep, zero, mb, sched, ch, sp, ck, off,
                                    space.compression and dp > 1))
    return out


def _rank_key(p: Plan) -> tuple[int, float, float]:
    return (0 if p.fits else 1 if p.feasible else 2, p.step_time_s if p.fits else 0.0,
            p.memory.per_gpu_bytes)


def search_plans(model: Model, gpu: Gpu, n_gpus: int, cfg: TrainConfig, *,
                 system: System | None = None, global_batch: int | None = None,
                 space: SearchSpace = SearchSpace()) -> list[Plan]:
    """Evaluate every plan of ``space`` on ``n_gpus`` GPUs, best first.

    Order: plans that fit, fastest first; then plans that run but do not fit, smallest
    memory first; then impossible ones (with their reasons). Plans whose batch does not
    split are dropped before evaluation.

    Raises:
        InputError, UnsupportedError: as :func:`evaluate_plan`.
    """
    if isinstance(model.shape, CnnShape):
        from rigwise.model import ddp
        cctx = ddp.cnn_context(model, gpu, cfg, system, global_batch, n_gpus)
        return ddp.search_cnn(cctx, n_gpus, space.zero_stages, space.compression)
    ctx = _context(model, gpu, cfg, system, global_batch, n_gpus)
    specs = enumerate_plans(n_gpus, ctx.shape, ctx.system.gpus_per_node, space)
    plans = [_evaluate(ctx, s, n_gpus) for s in specs]
    plans.sort(key=_rank_key)
    return plans


def best_plan(model: Model, gpu: Gpu, n_gpus: int, cfg: TrainConfig, *,
              system: System | None = None, global_batch: int | None = None,
              space: SearchSpace = SearchSpace()) -> Plan:
    """The fastest plan that fits on ``n_gpus`` x ``gpu``, or, when none fits, the plan with
    the least memory per GPU, ``fits = False`` and a reason that says so.

    ``cfg.batch_size`` is per GPU unless ``global_batch`` (sequences per step) is given.

    Raises:
        InputError, UnsupportedError: as :func:`evaluate_plan`.
    """
    plans = search_plans(model, gpu, n_gpus, cfg, system=system, global_batch=global_batch,
                         space=space)
    runnable = [p for p in plans if p.feasible]
    if not runnable:
        why = plans[0].reasons if plans else ("no plan splits the batch",)
        return replace(plans[0], reasons=("no plan can run: " + "; ".join(why),)) \
            if plans else _no_plan(model, gpu, n_gpus, cfg, system, global_batch)
    best = runnable[0]
    if not best.fits:
        need = best.memory.per_gpu_bytes / 2**30
        best = replace(best, reasons=(
            f"fits nowhere on {n_gpus} x {gpu.name}: the leanest plan ({best.spec.describe()})"
            f" needs {need:.1f} GiB per GPU of {gpu.memory_bytes / 2**30:.0f} GiB",))
    return best


def _no_plan(model: Model, gpu: Gpu, n: int, cfg: TrainConfig, system: System | None,
             global_batch: int | None) -> Plan:
    ctx = _context(model, gpu, cfg, system, global_batch, n)
    return _infeasible(ctx, PlanSpec(dp=n), 1, (f"no parallel layout of {n} GPUs exists "
                                                f"for {model.name}",))


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One point of a scaling curve: the best plan on ``gpus`` GPUs and its efficiency
    ``(throughput / gpus) / (throughput_base / gpus_base)`` against the smallest count that
    fits; ``note`` says why when the efficiency is above 1 (:func:`superlinear_note`)."""

    gpus: int
    plan: Plan
    scaling_efficiency: float | None
    note: str | None = None


def _per_sample_ms(p: Plan) -> dict[str, float]:
    """Milliseconds of one GPU's step per sample it processes, by part of the step."""
    t, per_gpu = p.time, p.global_batch / p.gpus
    parts = {"kernels": t.compute_s + t.memory_s + t.launch_s, "optimizer": t.optimizer_s,
             "offload": t.offload_s, "bubble": t.bubble_s,
             "communication": sum(t.comm_exposed_s.values())}
    return {k: v * 1e3 / per_gpu for k, v in parts.items()}


def superlinear_note(base: Plan, plan: Plan) -> str | None:
    """Why ``plan`` on more GPUs does more per GPU than ``base`` (scaling efficiency above
    1 by more than half a point), part by part of the step per sample; None otherwise.

    Real causes: ZeRO-1/2 split the optimizer step over the data-parallel GPUs (each updates
    ``1/dp`` of the parameters; Rajbhandari et al. 2020), whose gradient reduce-scatter and
    parameter all-gather can hide behind the backward and forward passes; a larger
    micro-batch or a smaller shard per GPU runs nearer the peak.
    """
    if plan.samples_per_s / plan.gpus <= base.samples_per_s / base.gpus * 1.005:
        return None  # within half a point: nothing to explain
    a, b = _per_sample_ms(base), _per_sample_ms(plan)
    why = {"optimizer": f"ZeRO-{plan.spec.zero} splits it over {plan.spec.dp} GPUs"
           if plan.spec.zero >= 1 and plan.spec.dp > 1 else "a smaller shard per GPU",
           "kernels": f"micro-batch {base.spec.microbatch} -> {plan.spec.microbatch}"
           if plan.spec.microbatch != base.spec.microbatch else "a different layout"}
    names = {"kernels": "forward/backward kernels", "optimizer": "optimizer step",
             "offload": "CPU offload", "bubble": "pipeline bubble",
             "communication": "exposed communication"}
    gains = [f"{names[k]} {a[k]:.3g} -> {b[k]:.3g} ms ({why.get(k, 'layout')})"
             for k in a if a[k] - b[k] > 1e-3 * a[k] and a[k] > b[k]]
    costs = [f"{names[k]} {a[k]:.3g} -> {b[k]:.3g} ms" for k in a
             if b[k] - a[k] > 1e-3 * b[k] and b[k] > a[k]]
    text = f"above 100 % against {base.gpus} GPU(s); per sample: " + "; ".join(gains)
    return text + (f"; against {', '.join(costs)}" if costs else "")


def scaling_curve(model: Model, gpu: Gpu, counts: list[int], cfg: TrainConfig, *,
                  system: System | None = None, global_batch: int | None = None,
                  space: SearchSpace = SearchSpace()) -> list[CurvePoint]:
    """Best plan for each GPU count and the scaling efficiency against the first count that
    fits. Weak scaling (``cfg.batch_size`` per GPU) unless ``global_batch`` fixes the batch.

    Raises:
        InputError: an empty or non-positive count list; as :func:`evaluate_plan`.
    """
    if not counts or any(c <= 0 for c in counts):
        raise InputError("--curve needs positive GPU counts, e.g. 1,2,4,8")
    points: list[CurvePoint] = []
    base: Plan | None = None
    for n in sorted(set(counts)):
        plan = best_plan(model, gpu, n, cfg, system=system, global_batch=global_batch,
                         space=space)
        eff, note = None, None
        if plan.fits:
            if base is None:
                base = plan
            eff = (plan.samples_per_s / n) / (base.samples_per_s / base.gpus)
            note = superlinear_note(base, plan)
        points.append(CurvePoint(n, plan, eff, note))
    return points
