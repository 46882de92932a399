"""One parallel plan evaluated: memory per GPU, step time, rates, MFU and what limits it.

Step time (seconds) of the slowest (last) stage, ``m`` micro-batches of ``b`` sequences:

* ``m`` micro-batches of ``t_mb`` (:mod:`rigwise.model.parallel_time`);
* pipeline bubble ``(p−1)/v · t_mb`` (1F1B: ``v = 1``; interleaved with ``v`` chunks per
  GPU: Narayanan et al. 2021, eq. 1 and §2.2.2);
* the exposed communication of the step (stage-to-stage sends, data-parallel gradient
  reduction) and the optimizer step.

MFU is model FLOPs (forward and backward, recomputation excluded) over peak (PaLM appendix B).
"""

from __future__ import annotations

import math

from rigwise.catalog.models import Gpu
from rigwise.catalog.systems import System
from rigwise.model.estimate import TrainConfig
from rigwise.model.parallel_context import _check, _context, _Ctx
from rigwise.model.parallel_memory import _plan_memory
from rigwise.model.parallel_plan import Plan, PlanMemory, PlanSpec, StepTime, _limit
from rigwise.model.parallel_time import _comm, _microbatch_compute, _optimizer_s
from rigwise.workload.schema import CnnShape, Model


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
