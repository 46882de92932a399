"""The types of a training estimate: its configuration (:class:`TrainConfig`) and result
(:class:`TrainEstimate`), and the task defaults they imply; :mod:`rigwise.model.estimate`
computes them."""

from __future__ import annotations

from dataclasses import dataclass, field

from rigwise.errors import InputError
from rigwise.model.loader import LOADER_HIGH, LOADERS, cores_to_feed
from rigwise.model.memory import MemoryBreakdown
from rigwise.model.step import TimeShares
from rigwise.validation.intervals import Interval

TRAIN_TASKS = ("train", "finetune", "lora", "qlora")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """A training setup. ``batch_size`` is per GPU; ``seq_len`` None takes the model's
    default. ``checkpointing`` None lets the task decide (on for QLoRA, as its paper does).
    ``chunked_loss``: the loss upcasts the logits to fp32 one of ``LOSS_CHUNKS`` token chunks
    at a time (torchtune's ``CEWithChunkedOutputLoss``). ``nf4_double_quant``: QLoRA base
    weights with double-quantised block constants (4.127 bits) or fp32 ones (4.5 bits).
    ``memory_format``: CNN activations in ``channels_last`` (NHWC, what tuned recipes use) or
    PyTorch's default ``nchw``, which costs layout transposes on tensor cores
    (:func:`rigwise.model.ops.nchw_transposes`). ``data_loader`` and ``cpu_cores``: image
    models train no faster than the CPU loader supplies images (:mod:`rigwise.model.loader`;
    ``none`` sets no limit). ``fused_attention``: FlashAttention / memory-efficient SDPA, or
    attention as two batched GEMMs with the score tensors in memory (eager Hugging Face BERT
    before SDPA, DeepLearningExamples BERT). Encoder models pre-train (``train``) with a
    masked-LM head on 15 % of the tokens and fine-tune with a small task head. ``autocast``:
    fp16/bf16 through ``torch.autocast`` over an fp32 model (Hugging Face Trainer ``fp16=True``),
    whose norms and residual stream stay fp32 (:func:`rigwise.model.ops.transformer_layer`);
    the default is a 16-bit model with fp32 master weights (Megatron-LM, FSDP, torchtune).
    ``lora_targets``: adapters on every linear layer (``all``) or on the query and value
    projections only (``qv``); None takes each task's common default (:func:`lora_targets`);
    ``lora_dropout`` > 0 (LitGPT's 0.05) keeps the dropped-out adapter input and its mask for
    backward. ``optimizer_impl``: how the optimizer step runs, one fused kernel (``fused``),
    multi-tensor ops (``foreach``) or a Python loop over the parameter tensors (``for-loop``,
    ``transformers``, ``bertadam``) whose CPU cost per eager op the GPU waits on
    (:mod:`rigwise.model.optstep`).
    ``master_weights`` False: pure 16-bit training (bf16/fp16 weights, gradients and
    PyTorch optimizer states, no fp32 copy; torchtune ``dtype: bf16``); ``optimizer_in_backward``:
    each parameter is stepped as its gradient is ready and the gradient freed (torchtune
    ``optimizer_in_bwd``); optimizer ``paged_adamw8bit``: bitsandbytes ``PagedAdamW8bit``
    (:mod:`rigwise.model.model_states`). ``grad_accum``: micro-batches of ``batch_size``
    whose gradients are summed before each optimizer step (gradient accumulation): a step
    is ``grad_accum`` forward/backward passes and one optimizer step, and the gradient
    all-reduce of data parallelism runs once per step (DDP ``no_sync``).
    ``framework``: whose layer code runs, ``generic`` (separate q, k, v projections as in
    Hugging Face Transformers and torchtune) or ``litgpt`` (fused QKV projection, LoRA on part
    of it through ``index_copy``, 16-bit log-softmax, and for QLoRA Lightning's bitsandbytes
    plugin, which also quantises the head; :mod:`rigwise.model.ops`, :mod:`rigwise.model.memory`).
    ``bnb_saves_input``: bitsandbytes before 0.43.2, whose 4-bit matmul keeps each frozen
    layer's input for backward (QLoRA). ``lora_head``: a LoRA adapter on the output head too
    (LitGPT's ``lora_head``), ``r·(h + V)`` more trainable parameters.
    ``mean_seq_len``: variable-length data padded only to each batch's longest sequence (length
    bucketing, dynamic padding): the mean padded length of a sequence in tokens. Step time and
    token rate follow it; peak memory follows ``seq_len``, the longest batch."""

    task: str = "train"
    precision: str = "bf16"
    batch_size: int = 8
    seq_len: int | None = None
    optimizer: str = "adamw"
    checkpointing: bool | None = None
    lora_rank: int = 16
    gpus: int = 1
    chunked_loss: bool = False
    nf4_double_quant: bool = True
    memory_format: str = "channels_last"
    data_loader: str = "none"
    cpu_cores: int | None = None
    fused_attention: bool = True
    autocast: bool = False
    lora_targets: str | None = None
    lora_dropout: float = 0.0
    optimizer_impl: str = "fused"
    grad_accum: int = 1
    master_weights: bool = True
    optimizer_in_backward: bool = False
    framework: str = "generic"
    bnb_saves_input: bool = False
    lora_head: bool = False
    mean_seq_len: int | None = None


FRAMEWORKS = ("generic", "litgpt")
"""Training code whose memory the model follows (:attr:`TrainConfig.framework`)."""

BNB_INPUT_FIX = (0, 43, 2)
"""The bitsandbytes release from which ``MatMul4Bit`` no longer keeps its input (PR #1270,
CHANGELOG 0.43.2, July 2024)."""


def bnb_saves_input(version: str) -> bool:
    """Whether bitsandbytes ``version`` (e.g. ``0.42.0``) keeps a frozen 4-bit layer's input
    for backward (before 0.43.2).

    Raises:
        InputError: a version that is not dotted numbers.
    """
    parts = version.strip().lstrip("v").split(".")
    try:
        nums = tuple(int(x) for x in parts[:3])
    except ValueError:
        raise InputError(f"bitsandbytes version {version!r} is not like 0.42.0") from None
    return nums + (0,) * (3 - len(nums)) < BNB_INPUT_FIX


@dataclass(frozen=True, slots=True)
class TrainEstimate:
    """Result of :func:`estimate_train`. Rates are for all GPUs together."""

    model: str
    gpu: str
    gpus: int
    config: TrainConfig
    seq_len: int | None
    fits: bool
    memory: MemoryBreakdown
    step_time_s: float
    samples_per_s: float
    tokens_per_s: float | None
    mfu: float
    model_flop_per_step: float
    bottleneck: str
    shares: TimeShares
    parallelism: str
    checkpointing: bool
    assumptions: tuple[str, ...] = field(default=())
    basis: str = "blind"
    interval: Interval | None = None
    memory_interval: Interval | None = None
    gpu_samples_per_s: float | None = None
    loader_limit_samples_per_s: float | None = None
    optimizer_host_s: float | None = None

    @property
    def cores_to_feed(self) -> dict[str, float] | None:
        """CPU cores each CPU data loader needs to keep up with the GPUs (image models only;
        :func:`rigwise.model.loader.cores_to_feed`), else None."""
        if self.gpu_samples_per_s is None:
            return None
        return {name: cores_to_feed(self.gpu_samples_per_s, name)
                for name in LOADERS if name != "none"}

    def samples_per_s_range(self) -> tuple[float, float] | None:
        """(low, high) samples/s from the validation residuals, or None without them. When the
        CPU data loader is the limit, the GPUs' range is capped by the loader's: its highest
        sourced per-core rate is 1.2x the one used (:data:`LOADER_HIGH`)."""
        if self.interval is None:
            return None
        limit = self.loader_limit_samples_per_s
        if limit is None or self.gpu_samples_per_s is None or limit >= self.gpu_samples_per_s:
            return self.interval.bounds(self.samples_per_s)
        lo, hi = self.interval.bounds(self.gpu_samples_per_s)
        return min(lo, limit), min(hi, limit * LOADER_HIGH)

    def per_gpu_bytes_range(self) -> tuple[float, float] | None:
        """(low, high) memory per GPU in bytes from the validation residuals, or None."""
        if self.memory_interval is None:
            return None
        return self.memory_interval.bounds(self.memory.per_gpu_bytes)


def lora_targets(cfg: TrainConfig) -> str:
    """The linear layers a LoRA/QLoRA setup adapts: the configured ones, else ``qv`` for LoRA
    (query and value: Hu et al. 2021 §7.1, PEFT's default ``target_modules`` for Llama, LitGPT's
    ``finetune_lora`` and torchtune's Llama 3.1 LoRA configs) and ``all`` for QLoRA (Dettmers et
    al. 2023 §4: adapters on every linear layer are needed to match 16-bit fine-tuning;
    torchtune's QLoRA configs)."""
    if cfg.lora_targets is not None:
        return cfg.lora_targets
    return "all" if cfg.task == "qlora" else "qv"
