"""Plan search: every DP x TP x PP (x EP) layout of ``n`` GPUs with every ZeRO stage,
micro-batch, schedule and memory option (:func:`enumerate_plans`), evaluated and ranked
(:func:`search_plans`, :func:`best_plan`); :func:`spec_from_label` reads a published layout.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from rigwise.catalog.models import Gpu
from rigwise.catalog.systems import System
from rigwise.errors import InputError
from rigwise.model.estimate import TrainConfig
from rigwise.model.parallel_context import _context
from rigwise.model.parallel_evaluate import _evaluate, _infeasible
from rigwise.model.parallel_plan import Plan, PlanSpec
from rigwise.workload.schema import CnnShape, Model, TransformerShape


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """Which options :func:`search_plans` tries. ``None`` leaves a choice to the search.

    ``max_tp``: the largest tensor-parallel degree tried, at least 1 (1: no tensor
    parallelism); ``None``: up to the GPUs of one node. ``compression``: 8-bit gradients on
    every plan with more than one replica.

    Raises:
        InputError: ``max_tp`` below 1.
    """

    zero_stages: tuple[int, ...] = (0, 1, 2, 3)
    microbatches: tuple[int, ...] = (1, 2, 4, 8, 16)
    chunks: tuple[int, ...] = (2, 4)
    checkpointing: tuple[bool, ...] = (False, True)
    sp: tuple[bool, ...] = (False, True)
    offload: tuple[bool, ...] = (False, True)
    compression: bool = False
    max_tp: int | None = None

    def __post_init__(self) -> None:
        if self.max_tp is not None and self.max_tp < 1:
            raise InputError(f"max_tp must be at least 1 (1 = no tensor parallelism, None = "
                             f"up to a node), got {self.max_tp}")


_FLAGS = {"sp": "sp", "ckpt": "checkpointing", "offload": "offload",
          "8-bit-grads": "compression"}
"""Flag tokens of a plan label and the :class:`PlanSpec` field each sets."""


def spec_from_label(label: str, n_gpus: int) -> PlanSpec:
    """A plan from a label such as ``"TP8 PP35 mb1 ZeRO-1 SP ckpt"``: any label
    :meth:`PlanSpec.describe` writes reads back to the same plan (``PP16(v4)`` for
    interleaving, ``EP8``, ``FSDP/ZeRO-3``, ``offload``, ``8-bit grads``); DP, when the label
    leaves it out, is what is left of ``n_gpus``.

    Raises:
        InputError: an unknown token, or TP x PP not dividing ``n_gpus``.
    """
    import re
    fields: dict[str, object] = {}
    text = re.sub(r"8-bit\s+grads", "8-bit-grads", label, flags=re.IGNORECASE)
    for tok in text.replace(",", " ").split():
        t = tok.lower()
        if mt := re.fullmatch(r"(dp|tp|pp|ep)(\d+)(?:\(v(\d+)\))?", t):
            fields[mt.group(1)] = int(mt.group(2))
            if mt.group(3):
                fields["schedule"], fields["chunks"] = "interleaved", int(mt.group(3))
        elif mz := re.fullmatch(r"(?:zero-?|fsdp/zero-)(\d)", t):
            fields["zero"] = int(mz.group(1))
        elif mb := re.fullmatch(r"mb(\d+)", t):
            fields["microbatch"] = int(mb.group(1))
        elif t in _FLAGS:
            fields[_FLAGS[t]] = True
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
    cap = gpus_per_node if space.max_tp is None else space.max_tp
    max_tp = min(cap, gpus_per_node, n_gpus, 64)
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
    memory first; then plans that cannot run (a batch that does not split, TP not dividing
    the heads ...), with their reasons. Empty only when ``space`` holds no plan for
    ``n_gpus`` (e.g. SP only with ``max_tp=1``).

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
    the least memory per GPU, ``fits = False`` and a reason that says so. When no plan can
    run, the first one with its reasons; when ``space`` holds no plan for ``n_gpus``, an
    infeasible plan whose reason says so.

    ``cfg.batch_size`` is per GPU unless ``global_batch`` (sequences per step) is given.

    Raises:
        InputError, UnsupportedError: as :func:`evaluate_plan`.
    """
    plans = search_plans(model, gpu, n_gpus, cfg, system=system, global_batch=global_batch,
                         space=space)
    if not plans:
        return _no_plan(model, gpu, n_gpus, cfg, system, global_batch)
    runnable = [p for p in plans if p.feasible]
    if not runnable:
        return replace(plans[0], reasons=("no plan can run: " + "; ".join(plans[0].reasons),))
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
    return _infeasible(ctx, PlanSpec(dp=n), 1, (
        f"the search space holds no plan for {n} GPUs: widen its ZeRO stages, micro-batches, "
        "SP, offload or max_tp",))
