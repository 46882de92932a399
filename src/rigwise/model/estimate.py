"""Estimates of a training step, composed from ops, roofline and memory (inference:
:mod:`rigwise.model.infer`).

* Training step = forward + backward + optimizer step (+ the recomputed forward of each layer
  under activation checkpointing) + kernel launch overhead. Backward GEMMs are the data
  gradient ``(M x N) @ (N x K)`` and the weight gradient ``(K x M) @ (M x N)``, each as many
  FLOPs as the forward GEMM (hence ``6·P`` FLOP per token, Kaplan et al. 2020); frozen weights
  (LoRA, QLoRA) skip the weight gradient (``≈ 4·P``). Fused attention backward costs 2.5x its
  forward (five GEMMs against two, Dao 2023). Memory-bound kernels move twice their forward
  bytes backward. AdamW is one memory-bound pass over its states.
* MFU = model FLOPs (forward + backward, recomputation excluded) per second over the dense
  peak of the GEMM precision (Chowdhery et al. 2022, PaLM, appendix B).
* Several GPUs: full training of transformers and CNNs takes the fastest plan of
  :func:`rigwise.model.parallel.best_plan` (DP/TP/PP/EP, ZeRO/FSDP, DDP buckets). LoRA/QLoRA
  and traced modules keep the simple path: data parallelism with a ring all-reduce of the
  gradients, sharded (ZeRO-3/FSDP) when one GPU cannot hold the model states,
  ``2·(n−1)/n · S / B`` (Patarasuk & Yuan 2009).
"""

from __future__ import annotations

from dataclasses import replace

from rigwise.catalog.models import Gpu
from rigwise.errors import InputError, UnsupportedError
from rigwise.model.efficiency import (
    basis_of,
    efficiency_of,
    overheads,
)
from rigwise.model.litgpt import litgpt_qlora
from rigwise.model.loader import loader_limit
from rigwise.model.memory import (
    NF4_BITS_NO_DOUBLE_QUANT,
    OPTIMIZER_BYTES_PER_PARAM,
    OPTIMIZER_STEP_BYTES_PER_PARAM,
    MemoryBreakdown,
    train_memory,
    weights_bytes_train,
)
from rigwise.model.model_states import (
    StateSetup,
    TensorSizes,
    check_options,
    cnn_tensors,
    lora_tensors,
    paged_step,
    step_bytes_per_param,
    transformer_tensors,
    uses_states,
)
from rigwise.model.ops import (
    LORA_TARGETS,
    Op,
    PassSpec,
    cnn_forward,
    nchw_transposes,
    traced_forward,
    transformer_forward,
)
from rigwise.model.optstep import (
    OptimizerStep,
    check_impl,
    describe,
    lora_matrix_count,
    optimizer_step,
    trainable_tensors,
)
from rigwise.model.precision import (
    NF4_BITS_PER_WEIGHT,
    train_precision,
)
from rigwise.model.roofline import Device, make_device
from rigwise.model.step import (
    TimeShares,
    add_shares,
    backward_shares,
    bottleneck,
    link_bytes_per_s,
    op_times,
    require_positive,
    sum_shares,
)
from rigwise.model.train_config import FRAMEWORKS
from rigwise.model.train_config import TRAIN_TASKS as TRAIN_TASKS
from rigwise.model.train_config import TrainConfig as TrainConfig
from rigwise.model.train_config import TrainEstimate as TrainEstimate
from rigwise.model.train_config import lora_targets as lora_targets
from rigwise.validation.intervals import lookup
from rigwise.workload.params import count_params, layer_linear_weights
from rigwise.workload.schema import CnnShape, Model, TracedShape, TransformerShape


def _lora_params(s: TransformerShape, rank: int, targets: str = "all",
                 head: bool = False) -> int:
    """Trainable LoRA parameters, ``r·(d_in + d_out)`` per adapted matrix (Hu et al. 2021):
    every linear layer, or (``qv``) separate query and value adapters; ``head``: the output
    head as well."""
    d, a, g, h, f = s.d_head, s.n_heads, s.n_kv_heads, s.hidden, s.ffn_hidden
    on_head = rank * (h + s.vocab) if head else 0
    if targets == "qv":
        return s.n_layers * rank * ((h + a * d) + (h + g * d)) + on_head
    mats = [(h, (a + 2 * g) * d), (a * d, h)]
    mlp = [(h, 2 * f), (f, h)] if s.ffn_kind == "swiglu" else [(h, f), (f, h)]
    per_layer = sum(rank * (i + o) for i, o in mats) + s.n_experts * sum(
        rank * (i + o) for i, o in mlp)
    return s.n_layers * per_layer + on_head


def estimate_train(model: Model, gpu: Gpu, cfg: TrainConfig) -> TrainEstimate:
    """Memory and speed of one training step of ``model`` on ``cfg.gpus`` x ``gpu``.

    Raises:
        InputError: non-positive sizes, a task the model cannot do.
        UnsupportedError: a precision the device does not support.
    """
    for name, value in (("batch size", cfg.batch_size), ("GPU count", cfg.gpus),
                        ("LoRA rank", cfg.lora_rank),
                        ("gradient accumulation steps", cfg.grad_accum)):
        require_positive(name, value)
    if cfg.grad_accum > 1 and cfg.gpus > 1 and cfg.task not in ("lora", "qlora"):
        raise UnsupportedError("gradient accumulation is modelled on one GPU (and LoRA data "
                               "parallelism); multi-GPU plans step every micro-batch")
    if cfg.task not in TRAIN_TASKS:
        raise InputError(f"unknown training task {cfg.task!r}; choose one of {TRAIN_TASKS}")
    nchw_transposes(cfg.memory_format, False, 0.0)  # rejects an unknown memory format
    if not 0.0 <= cfg.lora_dropout < 1.0:
        raise InputError(f"LoRA dropout must be in [0, 1), got {cfg.lora_dropout}")
    if cfg.lora_targets is not None and cfg.lora_targets not in LORA_TARGETS:
        raise InputError(f"unknown LoRA targets {cfg.lora_targets!r}; choose one of "
                         f"{', '.join(LORA_TARGETS)}")
    if cfg.framework not in FRAMEWORKS:
        raise InputError(f"unknown framework {cfg.framework!r}; choose one of "
                         f"{', '.join(FRAMEWORKS)}")
    check_impl(cfg.optimizer_impl, cfg.optimizer)
    check_options(master_weights=cfg.master_weights, in_backward=cfg.optimizer_in_backward,
                  optimizer=cfg.optimizer, precision=cfg.precision, autocast=cfg.autocast,
                  gpus=cfg.gpus, traced=isinstance(model.shape, TracedShape))
    prec = train_precision(cfg.precision, gpu)
    eff = efficiency_of(gpu)
    dev = make_device(gpu, prec.matmul, eff)
    shape = model.shape
    peft = cfg.task in ("lora", "qlora")
    if isinstance(shape, CnnShape | TracedShape):
        if cfg.mean_seq_len is not None:
            raise InputError(f"a mean sequence length needs a transformer; {model.name} "
                             "takes no sequences")
        if peft:
            raise InputError(f"{cfg.task} needs a transformer shape; {model.name} has none "
                             "(use a built-in model or a config.json)")
        if isinstance(shape, TracedShape):
            _no_loader(model, cfg)
            return _train_traced(model, gpu, cfg, dev, shape)
        # DDP with bucketed all-reduce for several GPUs (rigwise.model.ddp)
        est = (_train_planned(model, gpu, cfg, dev) if cfg.gpus > 1
               else _train_cnn(model, gpu, cfg, dev, shape))
        return _fed_by_loader(est, cfg)
    _no_loader(model, cfg)
    seq = _seq_len(model, shape, cfg.seq_len)
    mean = _mean_seq_len(cfg, seq)
    if cfg.gpus > 1 and not peft:
        if mean != seq:
            raise UnsupportedError("a mean sequence length is modelled on one GPU (and LoRA "
                                   "data parallelism); parallel plans use --seq-len")
        return _train_planned(model, gpu, cfg, dev)
    ckpt = cfg.checkpointing if cfg.checkpointing is not None else cfg.task == "qlora"
    if cfg.task == "qlora" and prec.matmul not in ("fp16", "bf16"):
        raise UnsupportedError("QLoRA computes in 16 bit: use --precision bf16 or fp16")
    pc = count_params(shape)
    linear: float = shape.n_layers * layer_linear_weights(shape)
    lora = _lora_params(shape, cfg.lora_rank, lora_targets(cfg), cfg.lora_head) if peft else 0
    fwd = _forward(model, cfg, dev, prec.act_bytes, prec.gemm_weight_bytes)
    layer_input = cfg.batch_size * seq * shape.hidden * prec.act_bytes
    shard, parallelism = _train_sharding(model, gpu, cfg, pc.total, linear, lora, fwd,
                                         ckpt, layer_input, shape.n_layers)
    dequant, held = 0.0, 0.0
    if cfg.task == "qlora":
        dequant = _largest_matrix(shape) * 2.0
        if cfg.framework == "litgpt":
            linear, dequant, held = litgpt_qlora(shape, fwd, linear, ckpt,
                                                  cfg.bnb_saves_input)
    mem = train_memory(task=cfg.task, precision=prec.name, optimizer=cfg.optimizer,
                       params=pc.total, linear_params=linear, lora_params=lora, forward=fwd,
                       checkpointing=ckpt, layer_input_bytes=layer_input,
                       n_layers=shape.n_layers, capacity_bytes=gpu.memory_bytes, shard=shard,
                       dequant_buffer_bytes=dequant, held_bytes=held,
                       nf4_bits=NF4_BITS_PER_WEIGHT if cfg.nf4_double_quant
                       else NF4_BITS_NO_DOUBLE_QUANT,
                       states=_states(cfg, lora_tensors(shape, cfg.lora_rank, lora_targets(cfg),
                                                        lora, cfg.lora_head) if peft
                                      else transformer_tensors(shape))
                       if _uses_states(cfg) else None)
    trainable = lora if peft else pc.total
    if mean == seq:
        return _compose_train(model, gpu, cfg, dev, fwd, mem, trainable, seq, ckpt, shard,
                              parallelism, tokens=model.is_language_model)
    # time the mean padded batch; the memory above holds the longest
    fwd = _forward(model, replace(cfg, seq_len=mean), dev, prec.act_bytes,
                   prec.gemm_weight_bytes)
    est = _compose_train(model, gpu, cfg, dev, fwd, mem, trainable, mean, ckpt, shard,
                         parallelism, tokens=model.is_language_model)
    note = (f"variable-length batches: time at the mean padded length {mean} tokens, "
            f"peak memory at the longest {seq}")
    return replace(est, seq_len=seq, assumptions=(*est.assumptions, note))


def _mean_seq_len(cfg: TrainConfig, seq: int) -> int:
    """The mean padded sequence length that step time follows: ``cfg.mean_seq_len``, else
    the (longest) sequence length ``seq``.

    Raises:
        InputError: a mean that is not positive or exceeds ``seq``.
    """
    if cfg.mean_seq_len is None:
        return seq
    require_positive("mean sequence length", cfg.mean_seq_len)
    if cfg.mean_seq_len > seq:
        raise InputError(f"mean sequence length {cfg.mean_seq_len} exceeds the sequence "
                         f"length {seq} (--seq-len is the longest batch)")
    return cfg.mean_seq_len


def _uses_states(cfg: TrainConfig) -> bool:
    """Whether ``cfg`` departs from mixed precision's model states (only then are the tensor
    sizes those terms need counted)."""
    return uses_states(cfg.master_weights, cfg.optimizer_in_backward, cfg.optimizer)


def _states(cfg: TrainConfig, tensors: TensorSizes) -> StateSetup:
    """How ``cfg`` keeps its model states (:class:`rigwise.model.model_states.StateSetup`)."""
    return StateSetup(cfg.master_weights, cfg.optimizer_in_backward, cfg.chunked_loss, tensors)


def _no_loader(model: Model, cfg: TrainConfig) -> None:
    if cfg.data_loader != "none":
        raise InputError(f"the data-loader limit models JPEG image pipelines; {model.name} is "
                         "not a built-in image model (use --data-loader none)")


def _fed_by_loader(est: TrainEstimate, cfg: TrainConfig) -> TrainEstimate:
    """An image model's estimate with the CPU data loader as a ceiling
    (:func:`rigwise.model.loader.loader_limit`): the step waits for the images when the
    loader is slower than the GPUs."""
    limit = loader_limit(cfg.data_loader, cfg.cpu_cores)
    est = replace(est, gpu_samples_per_s=est.samples_per_s, loader_limit_samples_per_s=limit)
    if limit is None or limit >= est.samples_per_s:
        return est
    slow = est.samples_per_s / limit
    note = (f"data loader {cfg.data_loader} on {cfg.cpu_cores} CPU cores: {limit:,.0f} "
            f"images/s, below the GPUs' {est.samples_per_s:,.0f}")
    return replace(est, samples_per_s=limit, step_time_s=est.step_time_s * slow,
                   mfu=est.mfu / slow, bottleneck="data loader (CPU)" if est.fits
                   else est.bottleneck, assumptions=(*est.assumptions, note))


def _train_planned(model: Model, gpu: Gpu, cfg: TrainConfig, dev: Device) -> TrainEstimate:
    """Several GPUs, full training of a transformer or a CNN: the fastest parallel plan that
    fits (data, tensor, pipeline parallelism, ZeRO/FSDP; for CNNs DDP or ZeRO-1/2;
    :func:`rigwise.model.parallel.best_plan`) as a :class:`TrainEstimate`."""
    from rigwise.model.parallel import best_plan

    if cfg.optimizer_impl != "fused":
        raise UnsupportedError("--optimizer-impl other than fused is modelled for one GPU "
                               "(and LoRA/QLoRA data parallelism) only")
    plan = best_plan(model, gpu, cfg.gpus, cfg)
    pm, t = plan.memory, plan.time
    mem = MemoryBreakdown(pm.weights_bytes, pm.gradients_bytes, pm.optimizer_bytes,
                          pm.activations_bytes, 0.0, pm.overhead_bytes, pm.capacity_bytes)
    shares = TimeShares(t.compute_s, t.memory_s + t.optimizer_s + t.offload_s, t.launch_s,
                        sum(t.comm_exposed_s.values()), t.bubble_s)
    spec = plan.spec
    return TrainEstimate(
        model=model.id, gpu=gpu.id, gpus=cfg.gpus, config=cfg, seq_len=plan.seq_len or None,
        fits=plan.fits, memory=mem, step_time_s=plan.step_time_s,
        samples_per_s=plan.samples_per_s,
        tokens_per_s=plan.tokens_per_s if model.is_language_model else None, mfu=plan.mfu,
        model_flop_per_step=plan.mfu * plan.step_time_s * dev.matmul_flop_per_s * cfg.gpus,
        bottleneck=plan.limit if plan.fits else "memory capacity", shares=shares,
        parallelism=f"{spec.describe()} (best of the searched plans)",
        checkpointing=spec.checkpointing,
        assumptions=(*plan.assumptions, *plan.reasons),
        basis=basis_of(gpu),
        interval=lookup("multi-gpu", gpu.architecture),
        memory_interval=lookup("memory", gpu.architecture))


def _train_spec(shape: TransformerShape, cfg: TrainConfig, act_bytes: float, w_bytes: float,
                seq: int) -> PassSpec:
    peft = cfg.task in ("lora", "qlora")
    return PassSpec(batch=cfg.batch_size, seq=seq, context=seq, act_bytes=act_bytes,
                    w_bytes=w_bytes, causal=shape.family == "decoder",
                    fused_attention=cfg.fused_attention,
                    lora_rank=cfg.lora_rank if peft else 0,
                    dequant_bytes=NF4_BYTES if cfg.task == "qlora" else 0.0, frozen=peft,
                    training=True, loss_chunks=LOSS_CHUNKS if cfg.chunked_loss else 0,
                    task_head=cfg.task != "train",
                    autocast=cfg.autocast and act_bytes < 4, lora_targets=lora_targets(cfg),
                    lora_dropout=cfg.lora_dropout > 0, litgpt=cfg.framework == "litgpt",
                    lora_head=cfg.lora_head and peft,
                    bnb_saves_input=cfg.bnb_saves_input)


def train_forward_ops(model: Model, gpu: Gpu, cfg: TrainConfig) -> tuple[Device, list[Op]]:
    """The device model and the forward ops of one training step on one GPU, exactly as
    :func:`estimate_train` times them (for rooflines and reports).

    Raises:
        UnsupportedError: a precision the device does not support.
        InputError: a sequence length beyond the model's maximum.
    """
    prec = train_precision(cfg.precision, gpu)
    dev = make_device(gpu, prec.matmul, efficiency_of(gpu))
    if cfg.mean_seq_len is not None:  # timed at the mean padded length
        cfg = replace(cfg, seq_len=cfg.mean_seq_len)
    return dev, _forward(model, cfg, dev, prec.act_bytes, prec.gemm_weight_bytes)


def _forward(model: Model, cfg: TrainConfig, dev: Device, act_bytes: float,
             w_bytes: float) -> list[Op]:
    """Forward ops of one micro-batch on one GPU for any model kind: the single place that
    dispatches on the shape (CNN, traced module, transformer)."""
    shape = model.shape
    if isinstance(shape, CnnShape | TracedShape):
        transposes = nchw_transposes(cfg.memory_format, dev.tensor_cores,
                                     dev.eff.nchw_transpose_passes)
        if isinstance(shape, CnnShape):
            return cnn_forward(shape, cfg.batch_size, act_bytes, w_bytes, transposes)
        return traced_forward(shape, cfg.batch_size, act_bytes, w_bytes, transposes)
    seq = _seq_len(model, shape, cfg.seq_len)
    return transformer_forward(shape, _train_spec(shape, cfg, act_bytes, w_bytes, seq))


LOSS_CHUNKS = 8
"""Token chunks of a chunked cross-entropy: torchtune ``CEWithChunkedOutputLoss``'s default
``num_output_chunks=8`` (torchtune/modules/loss/ce_chunked_output_loss.py)."""

NF4_BYTES = 0.516
"""Bytes read per NF4 weight when dequantising (4.127 bits, QLoRA)."""


def _largest_matrix(s: TransformerShape) -> float:
    return max(s.hidden * s.ffn_hidden * (2 if s.ffn_kind == "swiglu" else 1),
               s.hidden * (s.n_heads + 2 * s.n_kv_heads) * s.d_head)


def _seq_len(model: Model, shape: TransformerShape, seq_len: int | None) -> int:
    if shape.family in ("vit", "dit"):
        return shape.image_tokens
    seq = seq_len or model.default_seq_len or min(shape.max_seq_len, 2048)
    require_positive("sequence length", seq)
    if seq > shape.max_seq_len:
        raise InputError(f"sequence length {seq} exceeds {model.name}'s maximum "
                         f"{shape.max_seq_len}")
    return seq


def _train_sharding(model: Model, gpu: Gpu, cfg: TrainConfig, params: float, linear: float,
                    lora: float, fwd: list[Op], ckpt: bool, layer_input: float,
                    n_layers: int) -> tuple[int, str]:
    if cfg.gpus == 1:
        return 1, "single GPU"
    whole = train_memory(task=cfg.task, precision=cfg.precision, optimizer=cfg.optimizer,
                         params=params, linear_params=linear, lora_params=lora, forward=fwd,
                         checkpointing=ckpt, layer_input_bytes=layer_input, n_layers=n_layers,
                         capacity_bytes=gpu.memory_bytes)
    if whole.fits:
        return 1, f"data parallel x{cfg.gpus} (DDP)"
    return cfg.gpus, f"fully sharded data parallel x{cfg.gpus} (ZeRO-3/FSDP)"


def _compose_train(model: Model, gpu: Gpu, cfg: TrainConfig, dev: Device, fwd: list[Op],
                   mem: MemoryBreakdown, trainable: float, seq: int | None, ckpt: bool,
                   shard: int, parallelism: str, *, tokens: bool) -> TrainEstimate:
    eff = dev.eff
    opt_bytes = step_bytes_per_param(cfg.optimizer, master_weights=cfg.master_weights,
                                     in_backward=cfg.optimizer_in_backward,
                                     table=OPTIMIZER_STEP_BYTES_PER_PARAM,
                                     states=OPTIMIZER_BYTES_PER_PARAM)
    paged_s, paged_note = paged_step(gpu, mem.paged_bytes, mem.paged_host_bytes)
    opt = _optimizer_step(model, cfg, dev, trainable, shard, opt_bytes)
    fwd_times = op_times(dev, fwd)
    bwd_shares, bwd_flop = backward_shares(dev, fwd, eff.launch_s)
    parts = [sum_shares(fwd_times, eff.launch_s), bwd_shares]
    if ckpt:  # the layers' forward runs again before their backward
        parts.append(sum_shares(fwd_times, eff.launch_s, layer_only=True))
    k = cfg.grad_accum  # micro-batches per optimizer step
    micro, o = add_shares(*parts), opt.shares
    backward_s = bwd_shares.compute_s + bwd_shares.memory_s
    comm = _grad_comm_s(gpu, cfg, trainable, shard, backward_s=backward_s)
    shares = TimeShares(micro.compute_s * k + o.compute_s, micro.memory_s * k + o.memory_s,
                        micro.launch_s * k + o.launch_s, comm, host_s=paged_s)
    step = shares.total_s
    model_flop = (sum(op.flop * op.count for op in fwd) + bwd_flop) * k
    samples = cfg.batch_size * k * cfg.gpus / step
    mfu = model_flop / (step * dev.matmul_flop_per_s)
    basis = basis_of(gpu)
    gemm_eff = eff.gemm_tensor if dev.tensor_cores else eff.gemm_simt
    assumptions = [
        f"GEMMs in {cfg.precision} at up to {gemm_eff:.0%} of the datasheet dense peak ("
        + ("published GEMM benchmarks of this GPU family" if basis == "calibrated"
           else "default; not measured on this GPU family") + ")",
        f"optimizer {cfg.optimizer}" + (", activation checkpointing" if ckpt else "")
        + ("" if cfg.master_weights else ", pure 16-bit weights (no fp32 master copy)")
        + (", stepped in backward" if cfg.optimizer_in_backward else ""),
        *([paged_note] if paged_note else []),
    ]
    if cfg.optimizer_impl != "fused":
        assumptions.append(describe(opt, cfg.optimizer_impl))
    if cfg.task in ("lora", "qlora"):
        where = ("every linear layer" if lora_targets(cfg) == "all"
                 else "query and value projections") + (" and the head" if cfg.lora_head
                                                         else "")
        assumptions.append(f"LoRA rank {cfg.lora_rank} on {where} (--lora-targets)")
    if cfg.framework == "litgpt":
        assumptions.append("LitGPT layers: fused QKV projection (its output kept while SDPA "
                           "holds v), 16-bit log-softmax" + (", NF4 head dequantised from "
                                                             "float16" if cfg.task == "qlora"
                                                             else ""))
    if mem.held_bytes:
        assumptions.append(f"bitsandbytes before 0.43.2: the previous micro-batch's 4-bit-layer "
                           f"inputs are still held ({mem.held_bytes / 2**30:.1f} GiB)")
    elif cfg.task == "qlora" and cfg.bnb_saves_input:
        assumptions.append("bitsandbytes before 0.43.2: each 4-bit layer keeps its input")
    if isinstance(model.shape, TransformerShape):
        assumptions.insert(1, "fused attention (FlashAttention / memory-efficient)"
                           if cfg.fused_attention else
                           "unfused attention: scores and probabilities written to memory")
    elif any(op.kind == "conv" for op in fwd):
        assumptions.append(
            "activations in NCHW: cuDNN transposes around each tensor-core convolution"
            if cfg.memory_format == "nchw" else
            "activations channels_last (NHWC); PyTorch's default NCHW adds layout transposes "
            "on tensor cores (--memory-format nchw)")
    return TrainEstimate(
        model=model.id, gpu=gpu.id, gpus=cfg.gpus, config=cfg, seq_len=seq, fits=mem.fits,
        memory=mem, step_time_s=step, samples_per_s=samples,
        tokens_per_s=samples * seq if (tokens and seq) else None, mfu=mfu,
        model_flop_per_step=model_flop * cfg.gpus, bottleneck=bottleneck(shares, mem.fits),
        shares=shares, parallelism=parallelism, checkpointing=ckpt,
        assumptions=tuple(assumptions),
        basis=basis,
        interval=lookup("train" if cfg.gpus == 1 else "multi-gpu", gpu.architecture),
        memory_interval=lookup("memory", gpu.architecture),
        optimizer_host_s=opt.host_s if cfg.optimizer_impl != "fused" else None)


def _optimizer_step(model: Model, cfg: TrainConfig, dev: Device, trainable: float,
                    shard: int, fused_bytes: float) -> OptimizerStep:
    """The optimizer step of ``cfg.optimizer_impl`` (:mod:`rigwise.model.optstep`); the
    parameter tensors are counted only where the implementation loops over them.
    ``fused_bytes``: bytes per parameter of the fused step for this model-state setup
    (:func:`rigwise.model.model_states.step_bytes_per_param`)."""
    tensors = 0
    if cfg.optimizer_impl != "fused":
        shape = model.shape
        lora = (lora_matrix_count(shape, lora_targets(cfg)) + int(cfg.lora_head)
                if cfg.task in ("lora", "qlora") and isinstance(shape, TransformerShape)
                else 0)
        tensors = trainable_tensors(model, task_head=cfg.task != "train", lora_matrices=lora)
    return optimizer_step(dev, impl=cfg.optimizer_impl, optimizer=cfg.optimizer,
                          params=trainable, tensors=tensors, shard=shard,
                          fused_bytes=fused_bytes)


def _grad_comm_s(gpu: Gpu, cfg: TrainConfig, trainable: float, shard: int,
                 backward_s: float) -> float:
    """Exposed communication seconds per step (ring all-reduce, or FSDP's gathers)."""
    n = cfg.gpus
    if n == 1:
        return 0.0
    bw, latency, _ = link_bytes_per_s(gpu)
    grad_bytes = trainable * (2.0 if cfg.precision in ("fp16", "bf16", "fp8") else 4.0)
    volume = 2.0 * (n - 1) / n * grad_bytes  # ring all-reduce
    if shard > 1:
        volume *= 1.5  # all-gather forward and backward + reduce-scatter (ZeRO-3)
    total = volume / bw + 2 * (n - 1) * latency
    return max(0.0, total - overheads().ddp_overlap * backward_s)


def _train_cnn(model: Model, gpu: Gpu, cfg: TrainConfig, dev: Device,
               shape: CnnShape) -> TrainEstimate:
    prec = train_precision(cfg.precision, gpu)
    fwd = _forward(model, cfg, dev, prec.act_bytes, prec.gemm_weight_bytes)
    params = float(shape.params)
    mem = train_memory(task="train", precision=prec.name, optimizer=cfg.optimizer,
                       params=params, linear_params=params, lora_params=0.0, forward=fwd,
                       checkpointing=False, layer_input_bytes=0.0, n_layers=1,
                       capacity_bytes=gpu.memory_bytes,
                       states=_states(cfg, cnn_tensors(shape)) if _uses_states(cfg) else None)
    parallelism = "single GPU" if cfg.gpus == 1 else f"data parallel x{cfg.gpus} (DDP)"
    return _compose_train(model, gpu, replace(cfg, checkpointing=False), dev, fwd, mem, params,
                          None, False, 1, parallelism, tokens=False)


def _train_traced(model: Model, gpu: Gpu, cfg: TrainConfig, dev: Device,
                  shape: TracedShape) -> TrainEstimate:
    """A training step of a traced module: its own kernels, forward and backward."""
    prec = train_precision(cfg.precision, gpu)
    fwd = _forward(model, cfg, dev, prec.act_bytes, prec.gemm_weight_bytes)
    frozen = float(shape.params - shape.trainable)
    mem = train_memory(task="train", precision=prec.name, optimizer=cfg.optimizer,
                       params=float(shape.trainable), linear_params=float(shape.trainable),
                       lora_params=0.0, forward=fwd, checkpointing=False,
                       layer_input_bytes=0.0, n_layers=1, capacity_bytes=gpu.memory_bytes)
    # frozen parameters are weights only: no gradient, no optimizer state
    mem = replace(mem, weights_bytes=mem.weights_bytes + weights_bytes_train(
        "train", prec.name, frozen, frozen, 0.0))
    parallelism = "single GPU" if cfg.gpus == 1 else f"data parallel x{cfg.gpus} (DDP)"
    seq = shape.tokens_per_sample or None
    return _compose_train(model, gpu, replace(cfg, checkpointing=False), dev, fwd, mem,
                          float(shape.trainable), seq, False, 1, parallelism,
                          tokens=shape.tokens_per_sample > 0)
