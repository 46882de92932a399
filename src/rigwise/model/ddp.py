"""Data-parallel plans for CNNs: PyTorch DDP with bucketed gradient all-reduce, or ZeRO-1/2.

A CNN's parameters are small next to its activations, so the plans are data-parallel only:
``dp`` replicas, each with ``global_batch / dp`` images, split into micro-batches of
``microbatch`` images when gradients are accumulated (DDP's ``no_sync`` for all but the last).

* **Compute** of a micro-batch is the single-GPU estimate's (``estimate.py``: forward ops of
  :func:`rigwise.model.ops.cnn_forward`, their backward kernels, roofline per kernel), so a
  one-GPU plan is exactly ``rigwise estimate train`` on one GPU.
* **Gradient all-reduce** (Li et al. 2020, "PyTorch Distributed: Experiences on Accelerating
  Data Parallel Training", VLDB, §3.2-3.3): gradients go into buckets in the order the
  backward pass produces them (last layer first; the first bucket 1 MiB, the others 25 MiB);
  each bucket's all-reduce starts when its last gradient is ready and runs after the previous
  one on one NCCL stream, beside the rest of the backward pass
  (:func:`rigwise.model.comm.overlapped_finish`). What is left after the backward pass is
  exposed. Across nodes the collective is hierarchical (:func:`rigwise.model.comm.collective_time`).
  Gradients are fp32 (PyTorch AMP keeps fp32 parameters, so their gradients are fp32).
* **ZeRO-1/2** (Rajbhandari et al. 2020, §5; Megatron-LM's distributed optimizer): the
  buckets are reduce-scattered instead, each GPU updates ``1/dp`` of the parameters, and the
  updated parameters are all-gathered behind the next step's forward pass (in the working
  format, :func:`rigwise.model.parallel_memory.gathered_weight_bytes`). Stage 1 shards the
  optimizer states (and fp32 master weights), stage 2 also the gradients.
* **Optimizer step**: one memory-bound pass over the local states, as on one GPU
  (:data:`rigwise.model.memory.OPTIMIZER_STEP_BYTES_PER_PARAM`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rigwise.catalog.models import Gpu
from rigwise.catalog.systems import System
from rigwise.errors import InputError
from rigwise.model import comm
from rigwise.model.comm import Group, collective_time
from rigwise.model.efficiency import overheads
from rigwise.model.estimate import TrainConfig
from rigwise.model.memory import (
    OPTIMIZER_BYTES_PER_PARAM,
    OPTIMIZER_STEP_BYTES_PER_PARAM,
    framework_overhead_bytes,
)
from rigwise.model.ops import TRANSPOSE_SUFFIX, Op, cnn_forward, memory, nchw_transposes
from rigwise.model.parallel_context import search_setup
from rigwise.model.parallel_memory import gathered_weight_bytes, working_weight_bytes
from rigwise.model.parallel_plan import Plan, PlanMemory, PlanSpec, StepTime, _limit
from rigwise.model.parallel_search import _rank_key
from rigwise.model.roofline import Device
from rigwise.model.step import (
    TimeShares,
    backward_ops,
    backward_shares,
    op_times,
    sum_shares,
    time_ops,
)
from rigwise.workload.schema import CnnShape, Model

GRAD_BYTES = 4.0
"""Bytes per gradient value on the wire: fp32 (PyTorch AMP trains fp32 parameters)."""

ACCUMULATION = (1, 2, 4, 8, 16)
"""Gradient-accumulation steps the search tries (micro-batch = per-replica batch / steps)."""


@dataclass(frozen=True, slots=True)
class _Micro:
    """One micro-batch on one GPU: forward ops, time shares, model FLOPs, and per layer in
    backward order (last layer first) the time its gradient is ready and its bytes."""

    fwd: list[Op]
    fwd_shares: TimeShares
    bwd_shares: TimeShares
    flop: float
    ready_s: list[float]
    grad_bytes: list[float]


@dataclass
class CnnCtx:
    """What a CNN search shares between plans."""

    model: Model
    shape: CnnShape
    gpu: Gpu
    dev: Device
    system: System
    cfg: TrainConfig
    precision: str
    act_bytes: float
    w_bytes: float
    global_batch: int
    cache: dict[int, _Micro] = field(default_factory=dict)


def cnn_context(model: Model, gpu: Gpu, cfg: TrainConfig, system: System | None,
                global_batch: int | None, n_gpus: int) -> CnnCtx:
    """The shared state of a CNN plan search on ``n_gpus`` GPUs.

    Raises:
        InputError: a task other than full training, non-positive sizes, an unknown
            optimizer, more GPUs than the system holds.
        UnsupportedError: a precision the GPU cannot run.
    """
    shape = model.shape
    assert isinstance(shape, CnnShape)
    if cfg.task not in ("train", "finetune"):
        raise InputError(f"{cfg.task} needs a transformer; {model.name} is a CNN")
    setup = search_setup(gpu, cfg, system, global_batch, n_gpus)
    prec = setup.prec
    return CnnCtx(model, shape, gpu, setup.dev, setup.system, cfg, prec.name, prec.act_bytes,
                  prec.gemm_weight_bytes, setup.global_batch)


def _micro(ctx: CnnCtx, batch: int) -> _Micro:
    hit = ctx.cache.get(batch)
    if hit is not None:
        return hit
    launch = ctx.dev.eff.launch_s
    fwd = cnn_forward(ctx.shape, batch, ctx.act_bytes, ctx.w_bytes,
                      nchw_transposes(ctx.cfg.memory_format, ctx.dev.tensor_cores,
                                      ctx.dev.eff.nchw_transpose_passes))
    fwd_shares = sum_shares(op_times(ctx.dev, fwd), launch)
    bwd_shares, bwd_flop = backward_shares(ctx.dev, fwd, launch)
    ready, grads, t = [], [], 0.0
    for layer, ops in zip(reversed(ctx.shape.layers), reversed(_per_layer(fwd)), strict=True):
        t += time_ops(ctx.dev, backward_ops(ops), launch).total_s
        ready.append(t)
        grads.append(layer.params * GRAD_BYTES)
    # the per-layer times add up to the backward pass; scale out rounding differences
    scale = bwd_shares.total_s / t if t > 0 else 1.0
    flop = sum(op.flop * op.count for op in fwd) + bwd_flop
    hit = _Micro(fwd, fwd_shares, bwd_shares, flop, [r * scale for r in ready], grads)
    ctx.cache[batch] = hit
    return hit


def _per_layer(fwd: list[Op]) -> list[list[Op]]:
    """The forward ops grouped by CNN layer: a convolution with its NCHW transposes."""
    groups: list[list[Op]] = []
    for op in fwd:
        if op.name.endswith(TRANSPOSE_SUFFIX) and groups:
            groups[-1].append(op)
        else:
            groups.append([op])
    return groups


def _check(ctx: CnnCtx, p: PlanSpec, n_gpus: int) -> list[str]:
    why = []
    if p.gpus != n_gpus:
        why.append(f"DP{p.dp} x TP{p.tp} x PP{p.pp} = {p.gpus} GPUs, not {n_gpus}")
    if p.tp > 1 or p.pp > 1 or p.ep > 1 or p.sp or p.schedule != "1f1b":
        why.append(f"{ctx.model.name} is a CNN: plans are data-parallel only (TP1 PP1)")
    if p.zero > 2 or p.offload or p.checkpointing:
        why.append("CNN plans cover DDP and ZeRO-1/2, without offload or recomputation")
    per_replica, rem = divmod(ctx.global_batch, p.dp)
    if rem or per_replica == 0 or per_replica % p.microbatch:
        why.append(f"global batch {ctx.global_batch} is not a multiple of DP{p.dp} x "
                   f"micro-batch {p.microbatch}")
    return why


def _memory(ctx: CnnCtx, p: PlanSpec, micro: _Micro) -> PlanMemory:
    """Bytes per GPU as :func:`rigwise.model.memory.train_memory`, with ZeRO's shards."""
    params = float(ctx.shape.params)
    work = working_weight_bytes(ctx.precision)
    zd = p.dp if p.zero >= 1 else 1
    master = params * 4.0 / (zd if work else 1)  # fp32: the master copy is the working copy
    grads = params * 4.0 / (p.dp if p.zero >= 2 else 1)
    opt = params * OPTIMIZER_BYTES_PER_PARAM[ctx.cfg.optimizer] / zd
    acts = sum(o.saved_bytes * o.count for o in micro.fwd)
    return PlanMemory(params * work + master, grads, opt, acts,
                      framework_overhead_bytes(acts, grads), ctx.gpu.memory_bytes)


def _dp_comm(ctx: CnnCtx, p: PlanSpec, micro: _Micro) -> tuple[float, float]:
    """(total, exposed) seconds of the gradient reduction and, under ZeRO, of the
    parameter all-gather."""
    if p.dp <= 1:
        return 0.0, 0.0
    g = ctx.system.gpus_per_node
    group = Group(p.dp, min(p.dp, g))
    op: comm.Collective = "all_reduce" if p.zero == 0 else "reduce_scatter"
    ready, times, overhead = [], [], 0.0
    for last, size in comm.ddp_buckets(micro.grad_bytes):
        if p.compression:
            overhead += comm.compression_overhead_s(size, GRAD_BYTES,
                                                    ctx.dev.memory_bytes_per_s, p.dp)
            size = comm.compressed_bytes(size, GRAD_BYTES)
        ready.append(micro.ready_s[last])
        times.append(collective_time(op, size, ctx.system, group).time_s)
    window = micro.bwd_shares.total_s
    o = overheads().ddp_overlap
    exposed = max(0.0, comm.overlapped_finish(ready, times, window, o) - window) + overhead
    total = sum(times) + overhead
    if p.zero >= 1:  # updated parameters gathered behind the next forward pass
        work = gathered_weight_bytes(ctx.precision)
        ag = collective_time("all_gather", ctx.shape.params * work, ctx.system, group).time_s
        total += ag
        exposed += comm.exposed_time(ag, micro.fwd_shares.total_s, o)
    return total, exposed


def evaluate_cnn(ctx: CnnCtx, p: PlanSpec, n_gpus: int) -> Plan:
    """Memory and step time of one data-parallel plan of a CNN (module docstring)."""
    m = max(1, ctx.global_batch // max(p.dp, 1) // max(p.microbatch, 1))
    why = _check(ctx, p, n_gpus)
    if why:
        return _infeasible(ctx, p, m, tuple(why))
    micro = _micro(ctx, p.microbatch)
    mem = _memory(ctx, p, micro)
    total, exposed = _dp_comm(ctx, p, micro)
    shard = p.dp if p.zero >= 1 else 1
    per_param = OPTIMIZER_STEP_BYTES_PER_PARAM[ctx.cfg.optimizer] * ctx.shape.params / shard
    opt = time_ops(ctx.dev, [memory("optimizer_step", per_param * 0.6, per_param * 0.4,
                                     layer=False)], ctx.dev.eff.launch_s).total_s
    f, b = micro.fwd_shares, micro.bwd_shares
    comm_s = {"dp": exposed} if p.dp > 1 else {}
    t = StepTime(compute_s=m * (f.compute_s + b.compute_s), memory_s=m * (f.memory_s + b.memory_s),
                 launch_s=m * (f.launch_s + b.launch_s), bubble_s=0.0, optimizer_s=opt,
                 offload_s=0.0, comm_exposed_s=comm_s,
                 comm_total_s={"dp": total} if p.dp > 1 else {})
    step = t.total_s
    mfu = m * p.dp * micro.flop / (step * n_gpus * ctx.dev.matmul_flop_per_s)
    reasons: tuple[str, ...] = ()
    if not mem.fits:
        reasons = (f"needs {mem.per_gpu_bytes / 2**30:.1f} GiB per GPU, "
                   f"{ctx.gpu.name} has {ctx.gpu.memory_bytes / 2**30:.0f} GiB",)
    return Plan(spec=p, model=ctx.model.id, gpu=ctx.gpu.id, system=ctx.system.id,
                global_batch=ctx.global_batch, microbatches=m, seq_len=0, feasible=True,
                fits=mem.fits, reasons=reasons, memory=mem, time=t, step_time_s=step,
                samples_per_s=ctx.global_batch / step, tokens_per_s=0.0, mfu=mfu,
                limit=_limit(t) if mem.fits else "memory capacity",
                assumptions=_assumptions(ctx, p))


def _assumptions(ctx: CnnCtx, p: PlanSpec) -> tuple[str, ...]:
    out = list(ctx.system.assumptions)
    if p.dp > 1:
        kind = "all-reduce" if p.zero == 0 else "reduce-scatter"
        out.append(f"PyTorch DDP: fp32 gradients in 25 MiB buckets (first 1 MiB), {kind} "
                   "overlapped with the backward pass")
    return tuple(out)


def _infeasible(ctx: CnnCtx, p: PlanSpec, m: int, why: tuple[str, ...]) -> Plan:
    zero_mem = PlanMemory(0.0, 0.0, 0.0, 0.0, 0.0, ctx.gpu.memory_bytes)
    zero_t = StepTime(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, {}, {})
    return Plan(spec=p, model=ctx.model.id, gpu=ctx.gpu.id, system=ctx.system.id,
                global_batch=ctx.global_batch, microbatches=m, seq_len=0, feasible=False,
                fits=False, reasons=why, memory=zero_mem, time=zero_t,
                step_time_s=float("inf"), samples_per_s=0.0, tokens_per_s=0.0, mfu=0.0,
                limit="infeasible", assumptions=ctx.system.assumptions)


def cnn_specs(ctx: CnnCtx, n_gpus: int, zero_stages: tuple[int, ...],
              compression: bool) -> list[PlanSpec]:
    """Every data-parallel plan of ``n_gpus`` replicas: ZeRO 0-2 (0 alone on one GPU) and
    gradient accumulation over 1-16 micro-batches where the batch divides."""
    per_replica, rem = divmod(ctx.global_batch, n_gpus)
    if rem or per_replica == 0:
        return [PlanSpec(dp=n_gpus, microbatch=max(1, per_replica))]
    micro = [per_replica // a for a in ACCUMULATION if per_replica % a == 0]
    stages = [z for z in zero_stages if z <= 2 and (n_gpus > 1 or z == 0)] or [0]
    return [PlanSpec(dp=n_gpus, zero=z, microbatch=mb, compression=compression and n_gpus > 1)
            for z in stages for mb in micro]


DDP_PREFERENCE = 0.02
"""A ZeRO plan must beat plain DDP by this fraction of the step to rank first: ZeRO-1/2
save a CNN only its small optimizer step, a gain below the model's resolution, and a plan
should say what people run unless ZeRO is needed to fit or clearly faster."""


def search_cnn(ctx: CnnCtx, n_gpus: int, zero_stages: tuple[int, ...],
               compression: bool) -> list[Plan]:
    """Every plan of :func:`cnn_specs`, best first (as :func:`parallel.search_plans`), with
    the fastest DDP plan first when it is within :data:`DDP_PREFERENCE` of the best."""
    plans = [evaluate_cnn(ctx, s, n_gpus)
             for s in cnn_specs(ctx, n_gpus, zero_stages, compression)]
    plans.sort(key=_rank_key)
    ddp = next((p for p in plans if p.fits and p.spec.zero == 0), None)
    if plans and ddp is not None and plans[0].fits \
            and ddp.step_time_s <= plans[0].step_time_s * (1 + DDP_PREFERENCE):
        plans.remove(ddp)
        plans.insert(0, ddp)
    return plans
