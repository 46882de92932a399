"""Rank the catalog's GPUs for a workload under constraints: the main job of rigwise.

The procedure is the one of Dettmers' GPU guide (2020, "four steps"): decide the use case,
work out the memory it needs, pick the best performance per dollar that meets it, then check
the caveats (power, slots). For every GPU we search the batch size (and, for transformers,
activation checkpointing) that gives the highest throughput that fits; when no single card
fits, 2, 4 and 8 cards of the same model are tried (sharded training, tensor-parallel
inference). Options are ranked by throughput per dollar (``sort="value"``) or by throughput.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from rigwise.catalog.models import Gpu
from rigwise.compat import current_stack_caveat
from rigwise.errors import InputError, UnsupportedError
from rigwise.model.estimate import TrainConfig, TrainEstimate, estimate_train
from rigwise.model.infer import InferConfig, InferEstimate, estimate_infer
from rigwise.units import GIB, SECONDS_PER_HOUR, format_bytes, format_usd
from rigwise.workload.schema import Model

Market = str  # "new" | "used" | "cloud"
TASKS = ("train", "finetune", "lora", "qlora", "infer", "serve")
IMAGENET_TRAIN_IMAGES = 1_281_167
"""ImageNet-1k training set size (Russakovsky et al. 2015), the default epoch of image models."""


@dataclass(frozen=True, slots=True)
class Constraints:
    """Limits on the options. Money in USD, power in W, memory in bytes.

    ``budget_usd`` bounds the purchase price of all cards (new/used) or, in the cloud, the
    cost of the target run when one is given, else the price of the GPUs per hour.
    """

    budget_usd: float | None = None
    max_power_w: float | None = None
    max_total_power_w: float | None = None
    min_memory_bytes: float | None = None
    gpus: int | None = None
    market: Market = "new"
    form_factor: str | None = None
    vendors: tuple[str, ...] = ()
    max_gpus: int = 8


@dataclass(frozen=True, slots=True)
class Workload:
    """The job: task, precision or weights, and optional fixed batch and target. ``serve``
    ranks by output tokens/s of many requests under continuous batching (at most
    ``concurrency`` in flight, else as many as fit), ``infer`` by single-stream decode."""

    task: str
    precision: str | None = None
    weights: str = "bf16"
    batch_size: int | None = None
    seq_len: int | None = None
    prompt_tokens: int = 512
    output_tokens: int = 256
    engine: str = "generic"
    target_tokens: float | None = None
    target_samples: float | None = None
    target_epochs: float | None = None
    dataset_samples: float | None = None
    data_loader: str = "none"
    cpu_cores: int | None = None
    kv_bytes: float = 2.0
    concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class Option:
    """One ranked option: ``gpus`` cards of ``gpu`` and what they achieve.

    ``throughput`` is samples/s for training, decode tokens/s for inference (all cards).
    ``value`` is throughput per dollar of purchase (new/used) or per dollar-hour (cloud).
    """

    gpu: Gpu
    gpus: int
    estimate: TrainEstimate | InferEstimate
    throughput: float
    unit: str
    tokens_per_s: float | None
    price_usd: float | None
    price_usd_per_h: float | None
    price_note: str
    value: float | None
    power_w: float | None
    time_to_target_s: float | None
    cost_to_target_usd: float | None
    why: str
    setting: str

    @property
    def fits(self) -> bool:
        """Whether the configuration fits in memory."""
        return self.estimate.fits

    @property
    def need_bytes(self) -> float:
        """Memory one GPU needs: the estimate's total, or for serving its weights and
        workspace with the KV cache of all sequences in flight."""
        e = self.estimate
        mem = e.memory
        if isinstance(e, InferEstimate) and e.serving is not None and e.serving.concurrency:
            return mem.per_gpu_bytes - mem.kv_cache_bytes + e.serving.kv_cache_bytes
        return mem.per_gpu_bytes


@dataclass(frozen=True, slots=True)
class Advice:
    """Ranked options (fitting first) and the GPUs left out, each with its reason."""

    model: Model
    workload: Workload
    constraints: Constraints
    options: tuple[Option, ...]
    excluded: tuple[tuple[str, str], ...] = field(default=())


def advise(model: Model, workload: Workload, gpus: Iterable[Gpu], constraints: Constraints,
           *, sort: str = "value", top: int | None = None) -> Advice:
    """Rank ``gpus`` for ``workload`` on ``model`` under ``constraints``.

    Raises:
        InputError: an unknown task or sort key, or non-positive sizes.
    """
    if workload.task not in TASKS:
        raise InputError(f"unknown task {workload.task!r}; choose one of {', '.join(TASKS)}")
    if sort not in ("value", "speed"):
        raise InputError("sort must be 'value' or 'speed'")
    for name, v in (("budget", constraints.budget_usd), ("max power", constraints.max_power_w),
                    ("batch size", workload.batch_size), ("GPU count", constraints.gpus)):
        if v is not None and v <= 0:
            raise InputError(f"{name} must be positive, got {v:g}")
    options: list[Option] = []
    excluded: list[tuple[str, str]] = []
    for gpu in gpus:
        reason = _prefilter(gpu, constraints)
        if reason:
            excluded.append((gpu.id, reason))
            continue
        try:
            opt = _best_option(model, workload, gpu, constraints)
        except UnsupportedError as exc:
            excluded.append((gpu.id, str(exc)))
            continue
        reason = _budget_reason(opt, constraints)
        if reason:
            excluded.append((gpu.id, reason))
            continue
        options.append(opt)

    def key(o: Option) -> tuple[float, float, float]:
        primary = (o.value or 0.0) if sort == "value" else o.throughput
        return (0.0 if o.fits else 1.0, -primary, -o.throughput)

    options.sort(key=key)
    if top is not None:
        options = options[:top]
    return Advice(model, workload, constraints, tuple(options), tuple(excluded))


def _prefilter(gpu: Gpu, c: Constraints) -> str | None:
    if c.vendors and gpu.vendor not in c.vendors:
        return f"vendor {gpu.vendor}"
    if c.form_factor and gpu.form_factor != c.form_factor:
        return f"form factor {gpu.form_factor}"
    if c.min_memory_bytes and gpu.memory_bytes < c.min_memory_bytes:
        return f"{format_bytes(gpu.memory_bytes)} < minimum memory"
    if c.max_power_w and gpu.tdp_w and gpu.tdp_w > c.max_power_w:
        return f"TDP {gpu.tdp_w:.0f} W > {c.max_power_w:.0f} W"
    if c.market == "cloud" and gpu.cloud_price_usd_per_h() is None:
        return "no cloud price known"
    if c.market in ("new", "used") and gpu.purchase_price_usd(c.market) is None:
        return f"no {c.market} price known"
    return None


def _budget_reason(o: Option, c: Constraints) -> str | None:
    if c.max_total_power_w and o.power_w and o.power_w > c.max_total_power_w:
        return f"{o.gpus} x TDP = {o.power_w:.0f} W > {c.max_total_power_w:.0f} W"
    if c.budget_usd is None:
        return None
    if c.market == "cloud":
        cost = o.cost_to_target_usd if o.cost_to_target_usd is not None else o.price_usd_per_h
        if cost is not None and cost > c.budget_usd:
            what = "run cost" if o.cost_to_target_usd is not None else "price per hour"
            return f"{what} {format_usd(cost)} > budget {format_usd(c.budget_usd)}"
        return None
    if o.price_usd is not None and o.price_usd > c.budget_usd:
        return f"{o.gpus} x {format_usd(o.price_usd / o.gpus)} = {format_usd(o.price_usd)} " \
               f"> budget {format_usd(c.budget_usd)}"
    return None


def _gpu_counts(gpu: Gpu, c: Constraints) -> list[int]:
    if c.gpus:
        return [c.gpus]
    limit = c.max_gpus if gpu.segment in ("datacenter", "workstation") else min(c.max_gpus, 4)
    if gpu.segment in ("soc", "edge", "tpu"):
        limit = 1
    return [n for n in (1, 2, 4, 8) if n <= limit]


def _best_option(model: Model, w: Workload, gpu: Gpu, c: Constraints) -> Option:
    """The best setting of ``gpu`` for the workload: fewest cards that fit, then the fastest.

    Raises:
        UnsupportedError: the device supports none of the precisions the task needs.
    """
    best: TrainEstimate | InferEstimate | None = None
    for n in _gpu_counts(gpu, c):
        candidates = list(_candidates(model, w, gpu, n))
        fitting = [e for e in candidates if e.fits]
        if fitting:
            best = max(fitting, key=_throughput)
            break
        if best is None and candidates:
            best = min(candidates, key=lambda e: e.memory.per_gpu_bytes)
    if best is None:
        raise UnsupportedError(f"{gpu.name} cannot run {w.task} of {model.name}")
    return _option(model, w, gpu, c, best)


def _throughput(e: TrainEstimate | InferEstimate) -> float:
    return e.samples_per_s if isinstance(e, TrainEstimate) else e.decode_tokens_per_s


def _train_precision(gpu: Gpu, requested: str | None, task: str) -> str:
    if requested:
        return requested
    if task == "qlora" or gpu.supports("bf16"):
        return "bf16" if gpu.supports("bf16") else "fp16"
    fp32 = gpu.peak_flop_per_s.get("fp32", 0.0)
    if gpu.peak_flop_per_s.get("fp16", 0.0) > 1.5 * fp32:
        return "fp16"
    return "fp32"


def _candidates(model: Model, w: Workload, gpu: Gpu,
                n: int) -> Iterable[TrainEstimate | InferEstimate]:
    if w.task in ("infer", "serve"):
        weights = w.weights
        if weights == "bf16" and not gpu.supports("bf16"):
            weights = "f16"
        for b in [w.batch_size] if w.batch_size else [1]:
            yield estimate_infer(model, gpu, InferConfig(
                weights=weights, batch_size=b, prompt_tokens=w.prompt_tokens,
                output_tokens=w.output_tokens, engine=w.engine, gpus=n, kv_bytes=w.kv_bytes,
                serve=w.task == "serve", concurrency=w.concurrency))
        return
    precision = _train_precision(gpu, w.precision, w.task)
    batches = [w.batch_size] if w.batch_size else _default_batches(model)
    ckpts: list[bool | None] = [False, True] if model.is_transformer else [False]
    for b in batches:
        for ck in ckpts:
            cfg = TrainConfig(task=w.task, precision=precision, batch_size=b, seq_len=w.seq_len,
                              checkpointing=ck, gpus=n, data_loader=w.data_loader,
                              cpu_cores=w.cpu_cores)
            yield estimate_train(model, gpu, cfg)


def _default_batches(model: Model) -> list[int]:
    top = 8 if model.is_language_model and (model.default_seq_len or 0) >= 2048 else 64
    if not model.is_transformer:
        top = 256
    return [2**i for i in range(int(math.log2(top)), -1, -1)]


def _option(model: Model, w: Workload, gpu: Gpu, c: Constraints,
            e: TrainEstimate | InferEstimate) -> Option:
    n = e.gpus
    if isinstance(e, TrainEstimate):
        thr, unit, tok = e.samples_per_s, "samples/s", e.tokens_per_s
        if e.tokens_per_s:
            thr, unit = e.tokens_per_s, "tok/s"
        setting = f"{e.config.precision} b{e.config.batch_size}" + (
            " ckpt" if e.checkpointing else "")
    elif e.serving is not None:
        thr = tok = e.serving.output_tokens_per_s
        unit = "tok/s"
        setting = f"{e.config.weights} {e.serving.concurrency} in flight"
    else:
        thr, unit, tok = e.decode_tokens_per_s, "tok/s", e.decode_tokens_per_s
        setting = f"{e.config.weights} b{e.config.batch_size}"
    if n > 1:
        setting += " " + _parallel_label(e.parallelism)
    price = per_h = None
    note = ""
    if c.market == "cloud":
        cloud = gpu.cloud_price_usd_per_h()
        if cloud:
            per_h, note = cloud[0] * n, cloud[1]
    else:
        bought = gpu.purchase_price_usd(c.market)
        if bought:
            price, note = bought[0] * n, bought[1]
    target_s = _time_to_target(model, w, e)
    cost = target_s / SECONDS_PER_HOUR * per_h if (target_s and per_h) else None
    denominator = per_h if c.market == "cloud" else price
    value = thr / denominator if (denominator and e.fits) else None
    power = gpu.tdp_w * n if gpu.tdp_w else None
    return Option(gpu=gpu, gpus=n, estimate=e, throughput=thr, unit=unit, tokens_per_s=tok,
                  price_usd=price, price_usd_per_h=per_h, price_note=note, value=value,
                  power_w=power, time_to_target_s=target_s, cost_to_target_usd=cost,
                  why=_why(gpu, e), setting=setting)


def _parallel_label(parallelism: str) -> str:
    """Short form of an estimate's parallelism: the plan's non-trivial degrees
    (``DP2 TP1 PP1 ZeRO-2 mb1`` -> ``DP2 ZeRO-2``), or FSDP/DDP/TP for the v1 paths."""
    if parallelism.startswith("DP"):
        words = parallelism.split(" (")[0].split()
        keep = [w for w in words if not w.endswith(("P1", "mb1")) and not w.startswith("mb")]
        return " ".join(keep)
    return "FSDP" if "FSDP" in parallelism else ("DDP" if "DDP" in parallelism else "TP")


def _time_to_target(model: Model, w: Workload, e: TrainEstimate | InferEstimate) -> float | None:
    if not e.fits:
        return None
    if isinstance(e, InferEstimate):
        rate = e.serving.output_tokens_per_s if e.serving else e.decode_tokens_per_s
        return w.target_tokens / rate if w.target_tokens else None
    if w.target_tokens and e.tokens_per_s:
        return w.target_tokens / e.tokens_per_s
    samples = w.target_samples
    if w.target_epochs:
        size = w.dataset_samples or (IMAGENET_TRAIN_IMAGES if not model.is_language_model
                                     else None)
        if size is None:
            raise InputError("--epochs needs --dataset-samples for language models")
        samples = w.target_epochs * size
    return samples / e.samples_per_s if samples else None


_STACK_CAVEAT = {"amd": "ROCm", "intel": "Gaudi software", "google": "XLA only",
                 "apple": "Metal/MPS"}
"""Non-CUDA software stacks: Dettmers (2023) warns that libraries (bitsandbytes, FlashAttention
kernels) reach them late; the estimate assumes they work at NVIDIA-like efficiency."""


def software_caveat(gpu: Gpu) -> str:
    """What of the CUDA/PyTorch stack a GPU can no longer run ('' when current;
    :mod:`rigwise.compat`), or which non-CUDA stack it needs (:data:`_STACK_CAVEAT`)."""
    if gpu.vendor in _STACK_CAVEAT:
        return f"{_STACK_CAVEAT[gpu.vendor]}: check library support"
    if gpu.vendor == "nvidia" and gpu.compute_capability:
        return current_stack_caveat(gpu.compute_capability)
    return ""


def _why(gpu: Gpu, e: TrainEstimate | InferEstimate) -> str:
    need = e.memory.per_gpu_bytes
    if not e.fits:
        cards = "1 card" if e.gpus == 1 else f"{e.gpus} cards"
        if isinstance(e, InferEstimate) and e.memory.fits:
            return f"too small: no room for the KV cache of one request on {cards}"
        return f"too small: needs {need / GIB:.1f} GiB/GPU on {cards}"
    caveat = f"; {software_caveat(gpu)}" if software_caveat(gpu) else ""
    if isinstance(e, TrainEstimate):
        feed = e.cores_to_feed
        cpu = "" if feed is None else \
            f"; needs {math.ceil(feed['pillow'])} CPU cores (Pillow)"
        return f"{e.bottleneck}-bound, MFU {e.mfu:.0%}{cpu}{caveat}"
    if e.serving is not None:
        s = e.serving
        return f"limit: {s.limited_by}{caveat}"
    return f"decode {e.bottleneck}-bound{caveat}"


def with_gpus(c: Constraints, n: int) -> Constraints:
    """``c`` with a fixed GPU count."""
    return replace(c, gpus=n)
