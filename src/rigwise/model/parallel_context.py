"""What a plan search shares between plans (:class:`_Ctx`), the checks that rule a plan out,
and where its ranks sit.

Ranks are placed as Megatron-LM places them (Narayanan et al. 2021, §3.3): tensor parallelism
innermost (inside a node), then data parallelism, pipeline stages outermost (:func:`_placement`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rigwise.catalog.models import Gpu
from rigwise.catalog.systems import System, default_system
from rigwise.errors import InputError
from rigwise.model.comm import Group
from rigwise.model.efficiency import efficiency_of
from rigwise.model.estimate import TrainConfig, _seq_len
from rigwise.model.memory import OPTIMIZER_BYTES_PER_PARAM
from rigwise.model.ops import Op, PassSpec, transformer_forward
from rigwise.model.parallel_plan import PlanSpec
from rigwise.model.precision import TrainPrecision, train_precision
from rigwise.model.roofline import Device, make_device
from rigwise.model.step import TimeShares, backward_ops
from rigwise.workload.schema import Model, TransformerShape

_REPLICATED_WITHOUT_SP = ("norm1", "norm2", "residual1", "residual2", "qkv", "mlp_up")
"""Ops of a layer that tensor parallelism alone leaves whole on every rank (layer norms,
residuals, the first GEMM inputs of attention and MLP); sequence parallelism splits them
(Korthikanti et al. 2022, §4). Used by the stage ops and the activation memory."""


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


@dataclass(frozen=True, slots=True)
class SearchSetup:
    """What every plan search (transformer or CNN) starts from: the precision on the GPU,
    the device model, the system and the global batch."""

    prec: TrainPrecision
    dev: Device
    system: System
    global_batch: int


def search_setup(gpu: Gpu, cfg: TrainConfig, system: System | None,
                 global_batch: int | None, n_gpus: int) -> SearchSetup:
    """Check the inputs of a plan search on ``n_gpus`` GPUs and build its shared setup;
    ``global_batch`` None is ``cfg.batch_size`` per GPU, ``system`` None the GPU's default
    system.

    Raises:
        InputError: non-positive GPU count or batch, an unknown optimizer, more GPUs than
            the system holds.
        UnsupportedError: a precision the GPU cannot run.
    """
    if n_gpus <= 0:
        raise InputError(f"GPU count must be positive, got {n_gpus}")
    batch = global_batch if global_batch is not None else cfg.batch_size * n_gpus
    if batch <= 0:
        raise InputError(f"global batch must be positive, got {batch}")
    if cfg.optimizer not in OPTIMIZER_BYTES_PER_PARAM:
        raise InputError(f"unknown optimizer {cfg.optimizer!r}")
    prec = train_precision(cfg.precision, gpu)
    dev = make_device(gpu, prec.matmul, efficiency_of(gpu))
    sys_ = system or default_system(gpu, n_gpus)
    if sys_.max_gpus is not None and n_gpus > sys_.max_gpus:
        raise InputError(f"{sys_.name} holds at most {sys_.max_gpus} GPUs, not {n_gpus}; "
                         "pick a cluster template or your own file with --system")
    return SearchSetup(prec, dev, sys_, batch)


def _context(model: Model, gpu: Gpu, cfg: TrainConfig, system: System | None,
             global_batch: int | None, n_gpus: int) -> _Ctx:
    shape = model.shape
    if not isinstance(shape, TransformerShape):
        raise InputError(f"parallel plans cover transformers and CNNs; {model.name} is a "
                         "traced module (rigwise estimate train --gpus N models it as DDP)")
    if cfg.task not in ("train", "finetune"):
        raise InputError(f"parallel plans cover full training; task {cfg.task!r} is not "
                         "supported here")
    setup = search_setup(gpu, cfg, system, global_batch, n_gpus)
    prec = setup.prec
    seq = _seq_len(model, shape, cfg.seq_len)
    spec = PassSpec(batch=1, seq=seq, context=seq, act_bytes=prec.act_bytes,
                    w_bytes=prec.gemm_weight_bytes, causal=shape.family == "decoder")
    fwd = transformer_forward(shape, spec)
    flop = sum(op.flop * op.count for op in fwd + backward_ops(fwd))
    return _Ctx(model, shape, gpu, setup.dev, setup.system, cfg, prec.name, prec.act_bytes,
                prec.gemm_weight_bytes, seq, setup.global_batch, flop)


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
