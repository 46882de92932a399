"""Estimates of inference: memory, prefill and decode, composed from ops, roofline and memory.

* Prefill is one forward pass over the prompt (logits for the last token only); decode is one
  forward pass per generated token for the whole batch, reading all weights and the KV cache,
  timed at the middle of the output (perf-models.md §7.6).
* Engines differ in memory-bandwidth efficiency, per-kernel launch cost and whether a prefill
  dequantizes quantized weights before its GEMMs (``catalog/data/efficiency``).
* Several GPUs: tensor parallelism, weights and KV cache split ``n`` ways with two
  all-reduces of the activations per layer (ring, Patarasuk & Yuan 2009).
* Serving many requests (``InferConfig.serve``, :class:`ServingEstimate`): continuous
  batching (Orca, Yu et al. 2022) with a paged KV cache (vLLM, Kwon et al. 2023) keeps as
  many sequences in flight as the KV cache holds at their full length, up to the engine's
  batch limit; each request costs its prefill plus its share of the batched decode steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from rigwise.catalog.models import Gpu
from rigwise.errors import InputError, UnsupportedError
from rigwise.model.efficiency import (
    EngineEfficiency,
    basis_of,
    device_memory_factor,
    efficiency_of,
    engine_efficiency,
    engines,
    overheads,
)
from rigwise.model.memory import MemoryBreakdown, infer_memory, kv_cache_bytes
from rigwise.model.ops import Op, PassSpec, transformer_forward
from rigwise.model.precision import WeightFormat, weight_format
from rigwise.model.roofline import Device, make_device
from rigwise.model.step import (
    TimeShares,
    bottleneck,
    issue_bound_shares,
    link_bytes_per_s,
    require_positive,
    time_ops,
)
from rigwise.validation.intervals import Interval, lookup
from rigwise.workload.params import count_params
from rigwise.workload.schema import Model, TransformerShape


@dataclass(frozen=True, slots=True)
class InferConfig:
    """An inference setup: weight format, batch, prompt and output lengths, engine.

    ``kv_bytes``: bytes per KV-cache element (2 for fp16/bf16, 1 for an fp8 cache).
    ``serve``: also estimate serving throughput under continuous batching
    (:class:`ServingEstimate`), with at most ``concurrency`` sequences in flight (None: as
    many as the KV cache and the engine allow, the maximum-load case of ``trtllm-bench
    throughput`` and ``vllm bench throughput``)."""

    weights: str = "bf16"
    batch_size: int = 1
    prompt_tokens: int = 512
    output_tokens: int = 256
    engine: str = "generic"
    kv_bytes: float = 2.0
    gpus: int = 1
    serve: bool = False
    concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class ServingEstimate:
    """Steady state of serving a stream of equal requests (``prompt_tokens`` in,
    ``output_tokens`` out) with ``concurrency`` sequences in flight per model replica.

    ``limited_by`` says what set the concurrency (the KV cache, the engine's batch limit or
    the request). ``kv_sequences``: sequences whose KV cache fits at full length;
    ``kv_cache_bytes``: per GPU at ``concurrency``. ``prefill_batch``: prompts per batched
    prefill; ``prefill_s_per_request`` its time per prompt; ``decode_step_s``: one decode step
    of the whole batch at the mean context (the time per output token each request sees).
    ``request_latency_s``: prefill plus all decode steps of one request, without queueing.
    Rates are for all GPUs of the replica together."""

    concurrency: int
    limited_by: str
    kv_sequences: int
    kv_cache_bytes: float
    prefill_batch: int
    prefill_s_per_request: float
    decode_step_s: float
    output_tokens_per_s: float
    requests_per_s: float
    request_latency_s: float


@dataclass(frozen=True, slots=True)
class InferEstimate:
    """Result of :func:`estimate_infer`. Token rates are for the whole batch. With
    ``serving``, ``fits`` also requires at least one sequence in flight."""

    model: str
    gpu: str
    gpus: int
    config: InferConfig
    fits: bool
    memory: MemoryBreakdown
    prefill_time_s: float
    prefill_tokens_per_s: float
    decode_time_per_token_s: float
    decode_tokens_per_s: float
    bottleneck: str
    parallelism: str
    assumptions: tuple[str, ...] = field(default=())
    basis: str = "blind"
    prefill_interval: Interval | None = None
    decode_interval: Interval | None = None
    serving: ServingEstimate | None = None
    serving_interval: Interval | None = None

    def serving_tokens_per_s_range(self) -> tuple[float, float] | None:
        """(low, high) serving output tokens/s from the validation residuals, or None."""
        if self.serving is None or self.serving_interval is None:
            return None
        return self.serving_interval.bounds(self.serving.output_tokens_per_s)

    def prefill_tokens_per_s_range(self) -> tuple[float, float] | None:
        """(low, high) prefill tokens/s from the validation residuals, or None."""
        if self.prefill_interval is None:
            return None
        return self.prefill_interval.bounds(self.prefill_tokens_per_s)

    def decode_tokens_per_s_range(self) -> tuple[float, float] | None:
        """(low, high) decode tokens/s from the validation residuals, or None."""
        if self.decode_interval is None:
            return None
        return self.decode_interval.bounds(self.decode_tokens_per_s)


KV_CACHE_BYTES = {"fp16": 2.0, "bf16": 2.0, "fp8": 1.0}
"""Bytes per KV-cache element of each cache precision (fp8: E4M3 with per-tensor scales, as
TensorRT-LLM's and vLLM's ``kv_cache_dtype=fp8``)."""


def kv_cache_bytes_of(name: str) -> float:
    """Bytes per element of a KV-cache precision name.

    Raises:
        InputError: an unknown name.
    """
    try:
        return KV_CACHE_BYTES[name.lower()]
    except KeyError:
        raise InputError(f"unknown KV-cache precision {name!r}; choose one of "
                         f"{', '.join(KV_CACHE_BYTES)}") from None


def parse_concurrency(text: str | None) -> int | None:
    """``max`` (or None) -> None, else the positive number of sequences in flight.

    Raises:
        InputError: neither ``max`` nor a positive integer.
    """
    if text is None or text.strip().lower() == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"concurrency must be 'max' or a positive number, got {text!r}") from None
    require_positive("concurrency", value)
    return value


def infer_pass_ops(model: Model, gpu: Gpu, cfg: InferConfig) -> tuple[Device, dict[str, list[Op]]]:
    """The device model and the ops of one prefill and one decode step (at the middle of
    the output), exactly as :func:`estimate_infer` times them.

    Raises:
        InputError: a model that is not a decoder, or an unknown engine.
        UnsupportedError: a weight format the device cannot run.
    """
    shape = _decoder_shape(model, cfg)
    fmt = weight_format(cfg.weights, gpu)
    return _infer_passes(shape, gpu, cfg, fmt)


def _decoder_shape(model: Model, cfg: InferConfig) -> TransformerShape:
    """The decoder shape inference needs, after checking the model and the engine."""
    shape = model.shape
    if not isinstance(shape, TransformerShape) or shape.family != "decoder":
        raise InputError(f"inference estimates (prefill/decode) need a decoder language model;"
                         f" {model.name} is not one")
    if cfg.engine not in engines():
        raise InputError(f"unknown engine {cfg.engine!r}; choose one of {', '.join(engines())}")
    return shape


def _infer_passes(shape: TransformerShape, gpu: Gpu, cfg: InferConfig,
                  fmt: WeightFormat) -> tuple[Device, dict[str, list[Op]]]:
    eff = efficiency_of(gpu)
    eng = engine_efficiency(cfg.engine, gpu.vendor)
    dev = make_device(gpu, fmt.compute, eff,
                      memory_efficiency=eng.memory if eng.of_nominal
                      else eng.memory * device_memory_factor(eff))
    mid = cfg.prompt_tokens + cfg.output_tokens // 2
    return dev, {phase: transformer_forward(shape, _infer_spec(cfg, fmt, seq, ctx))
                 for phase, seq, ctx in (("prefill", cfg.prompt_tokens, cfg.prompt_tokens),
                                         ("decode", 1, mid))}


def _infer_spec(cfg: InferConfig, fmt: WeightFormat, seq: int, context: int) -> PassSpec:
    """The pass of a prefill (``seq`` > 1) or decode step. Engines that dequantize quantized
    weights to fp16 before a prefill GEMM (llama.cpp's cuBLAS path, bitsandbytes) add a
    dequantization kernel per weight and run the GEMM on fp16 weights; decode reads the
    quantized weights inside fused GEMV kernels."""
    w_bytes = fmt.bits_per_weight / 8.0
    dequant = (seq > 1 and fmt.bits_per_weight < 16 and fmt.compute in ("fp16", "bf16")
               and engine_efficiency(cfg.engine).prefill_dequant)
    return PassSpec(batch=cfg.batch_size, seq=seq, context=context, act_bytes=2.0,
                    w_bytes=2.0 if dequant else w_bytes, kv_bytes=cfg.kv_bytes, causal=True,
                    training=False, dequant_bytes=w_bytes if dequant else 0.0)


def estimate_infer(model: Model, gpu: Gpu, cfg: InferConfig) -> InferEstimate:
    """Memory, prefill and decode speed of serving ``model`` on ``cfg.gpus`` x ``gpu``.

    With several GPUs the weights and KV cache are split by tensor parallelism, with two
    all-reduces of the activations per layer. With ``cfg.serve`` the estimate also carries
    the steady-state serving throughput of many such requests (``serving``).

    Raises:
        InputError: non-positive sizes, a model without tokens, an unknown engine.
        UnsupportedError: a weight format the device cannot compute, or an engine that does
            not run on its vendor's GPUs (TensorRT-LLM on AMD).
    """
    for name, value in (("batch size", cfg.batch_size), ("prompt tokens", cfg.prompt_tokens),
                        ("output tokens", cfg.output_tokens), ("GPU count", cfg.gpus),
                        ("concurrency", 1 if cfg.concurrency is None else cfg.concurrency)):
        require_positive(name, value)
    if cfg.kv_bytes <= 0:
        raise InputError(f"KV-cache bytes per element must be positive, got {cfg.kv_bytes}")
    shape = _decoder_shape(model, cfg)
    fmt = weight_format(cfg.weights, gpu)
    if engine_efficiency(cfg.engine).nvidia_only and gpu.vendor != "nvidia":
        raise UnsupportedError(f"{cfg.engine} runs on NVIDIA GPUs only, not on {gpu.name}")
    ctx = cfg.prompt_tokens + cfg.output_tokens
    if ctx > shape.max_seq_len:
        raise InputError(f"prompt + output = {ctx} tokens exceeds {model.name}'s context "
                         f"{shape.max_seq_len}")
    eng = engine_efficiency(cfg.engine, gpu.vendor)
    dev, passes = _infer_passes(shape, gpu, cfg, fmt)
    n = cfg.gpus
    pc = count_params(shape)
    w_bytes = fmt.bits_per_weight / 8.0
    weights = pc.total * w_bytes / n
    kv = kv_cache_bytes(n_layers=shape.n_layers, n_kv_heads=shape.n_kv_heads,
                        head_dim=shape.d_head, tokens=cfg.batch_size * ctx,
                        bytes_per_element=cfg.kv_bytes) / n
    peak_act = _prefill_activation_bytes(shape, cfg) / n
    mem = infer_memory(weights=weights, kv_cache=kv, peak_activation=peak_act,
                       capacity_bytes=gpu.memory_bytes)
    prefill = _timed(dev, passes["prefill"], shape, gpu, n, eng,
                     cfg.batch_size * cfg.prompt_tokens)
    decode = _timed(dev, passes["decode"], shape, gpu, n, eng, cfg.batch_size)
    link = link_bytes_per_s(gpu)[2]
    parallelism = "single GPU" if n == 1 else f"tensor parallel x{n} over {link}"
    serving = _serving(shape, gpu, cfg, fmt, dev, weights) if cfg.serve else None
    return InferEstimate(
        model=model.id, gpu=gpu.id, gpus=n, config=cfg,
        fits=mem.fits and (serving is None or serving.concurrency > 0), memory=mem,
        prefill_time_s=prefill.total_s,
        prefill_tokens_per_s=cfg.batch_size * cfg.prompt_tokens / prefill.total_s,
        decode_time_per_token_s=decode.total_s,
        decode_tokens_per_s=cfg.batch_size / decode.total_s,
        bottleneck=bottleneck(decode, mem.fits), parallelism=parallelism,
        assumptions=(f"engine {cfg.engine}: "
                     f"{dev.memory_bytes_per_s / gpu.memory_bandwidth_bytes_per_s:.0%} of memory"
                     f" bandwidth, {eng.launch_s * 1e6:.3g} us per kernel",
                     f"weights {fmt.name} ({fmt.bits_per_weight:g} bits), matmul in "
                     f"{fmt.compute}", "decode timed at the middle of the output"),
        basis=basis_of(gpu),
        prefill_interval=lookup("prefill", gpu.architecture),
        decode_interval=lookup("decode", gpu.architecture),
        serving=serving,
        serving_interval=lookup("serving", gpu.architecture) if cfg.serve else None)


def _timed(dev: Device, ops: list[Op], shape: TransformerShape, gpu: Gpu, n: int,
           eng: EngineEfficiency, tokens: int) -> TimeShares:
    """Time of a pass on ``n`` GPUs. Each kernel adds the engine's ``launch_s`` (a replayed
    CUDA graph's gap between kernels), or, for an engine whose host issues every kernel
    (``host_issued``), costs the longer of its GPU time and ``launch_s``
    (:func:`issue_bound_shares`). With tensor parallelism each GPU does 1/n of the work and
    the layer outputs of ``tokens`` tokens are all-reduced twice per layer (ring all-reduce,
    ``2(n-1)/n`` of the bytes over the link plus ``2(n-1)`` latencies; Patarasuk & Yuan
    2009)."""
    if eng.host_issued:
        shares = issue_bound_shares(dev, ops, eng.launch_s, split=n)
    else:
        shares = time_ops(dev, ops, eng.launch_s)
        if n > 1:
            shares = TimeShares(shares.compute_s / n, shares.memory_s / n, shares.launch_s)
    if n == 1:
        return shares
    bw, latency, _ = link_bytes_per_s(gpu)
    size = tokens * shape.hidden * 2.0
    comm = shape.n_layers * 2 * (2 * (n - 1) / n * size / bw + 2 * (n - 1) * latency)
    return replace(shares, communication_s=comm)


LARGE_GPU_BYTES = 70 * 2**30
"""Device memory from which an engine's ``max_batch_large`` applies (vLLM's rule)."""


def _batch_limit(gpu: Gpu, engine: str) -> int:
    """The engine's cap on sequences in flight on ``gpu`` (0: none). vLLM raises its default
    ``max_num_seqs`` on GPUs with at least 70 GiB except A100s (arg_utils.get_batch_defaults)."""
    eng = engine_efficiency(engine)
    if (eng.max_batch_large and gpu.memory_bytes >= LARGE_GPU_BYTES
            and "a100" not in gpu.id):
        return eng.max_batch_large
    return eng.max_batch


def _serving(shape: TransformerShape, gpu: Gpu, cfg: InferConfig, fmt: WeightFormat,
             dev: Device, weights: float) -> ServingEstimate:
    """Continuous batching at steady state, in the engine's default configuration.

    Concurrency ``C`` = the fewest of: sequences whose KV cache fits at full length
    (``P + O`` tokens, reserved up front as TensorRT-LLM's GUARANTEED_NO_EVICT scheduler
    does) in the engine's KV share of memory; the engine's batch limit; the requested
    concurrency. Prompts are prefilled ``prefill_tokens // P`` at a time; decode steps run the
    whole batch at the mean context ``P + O/2``. Finishing ``C`` requests takes
    ``C·t_prefill + O·t_step``, so output tokens/s = ``C·O / (C·t_prefill + O·t_step)``
    (prefill and decode work add; Orca, Yu et al. OSDI 2022, iteration-level scheduling; vLLM,
    Kwon et al. SOSP 2023, paged KV cache; Agrawal et al. 2024, Sarathi-Serve, on prefill
    and decode sharing iterations)."""
    eng = engine_efficiency(cfg.engine, gpu.vendor)
    n = cfg.gpus
    p, o = cfg.prompt_tokens, cfg.output_tokens
    per_seq = kv_cache_bytes(n_layers=shape.n_layers, n_kv_heads=shape.n_kv_heads,
                             head_dim=shape.d_head, tokens=p + o,
                             bytes_per_element=cfg.kv_bytes) / n
    prefill_batch = max(1, eng.prefill_tokens // p)
    workspace = _prefill_activation_bytes(shape, replace(cfg, batch_size=prefill_batch)) / n
    context = overheads().cuda_context_bytes
    if eng.kv_of_total:
        budget = eng.kv_memory * gpu.memory_bytes - weights - workspace - context
    else:
        budget = eng.kv_memory * (gpu.memory_bytes - weights - workspace - context)
    fit = max(0, math.floor(budget / per_seq))
    limits = [(fit, "KV cache memory" if budget > 0 else "no memory left for the KV cache")]
    if (cap := _batch_limit(gpu, cfg.engine)) > 0:
        limits.append((cap, f"{cfg.engine} batch limit"))
    if cfg.concurrency is not None:
        limits.append((cfg.concurrency, "requested"))
    conc, why = min(limits, key=lambda x: x[0])
    if conc == 0:
        return ServingEstimate(0, why, fit, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0)
    prefill_batch = min(prefill_batch, conc)
    mid = p + o // 2
    prefill_ops = transformer_forward(
        shape, _infer_spec(replace(cfg, batch_size=prefill_batch), fmt, p, p))
    decode_ops = transformer_forward(
        shape, _infer_spec(replace(cfg, batch_size=conc), fmt, 1, mid))
    t_p = _timed(dev, prefill_ops, shape, gpu, n, eng,
                 prefill_batch * p).total_s / prefill_batch
    t_d = _timed(dev, decode_ops, shape, gpu, n, eng, conc).total_s
    cycle = conc * t_p + o * t_d  # time to finish ``conc`` requests
    return ServingEstimate(
        concurrency=conc, limited_by=why, kv_sequences=fit, kv_cache_bytes=conc * per_seq,
        prefill_batch=prefill_batch, prefill_s_per_request=t_p, decode_step_s=t_d,
        output_tokens_per_s=conc * o / cycle, requests_per_s=conc / cycle,
        request_latency_s=t_p * prefill_batch + o * t_d)


def _prefill_activation_bytes(s: TransformerShape, cfg: InferConfig) -> float:
    """Transient bytes of a prefill: one layer's widest tensors and the last logits."""
    t = cfg.batch_size * cfg.prompt_tokens
    ffn = s.ffn_hidden * (3 if s.ffn_kind == "swiglu" else 1)
    return t * (4 * s.hidden + ffn) * 2.0 + cfg.batch_size * s.vocab * 4.0
