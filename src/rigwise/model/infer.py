"""Estimates of inference: memory, prefill and decode, composed from ops, roofline and memory.

* Prefill is one forward pass over the prompt (logits for the last token only); decode is one
  forward pass per generated token for the whole batch, reading all weights and the KV cache,
  timed at the middle of the output (perf-models.md §7.6).
* Engines differ in memory-bandwidth efficiency, per-kernel launch cost and whether a prefill
  dequantizes quantized weights before its GEMMs (``catalog/data/efficiency``).
* Several GPUs: tensor parallelism, weights and KV cache split ``n`` ways with two
  all-reduces of the activations per layer (ring, Patarasuk & Yuan 2009).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rigwise.catalog.models import Gpu
from rigwise.errors import InputError
from rigwise.model.efficiency import (
    basis_of,
    device_memory_factor,
    efficiency_of,
    engine_efficiency,
    engines,
)
from rigwise.model.memory import MemoryBreakdown, infer_memory, kv_cache_bytes
from rigwise.model.ops import Op, PassSpec, transformer_forward
from rigwise.model.precision import WeightFormat, weight_format
from rigwise.model.roofline import Device, make_device
from rigwise.model.step import (
    TimeShares,
    bottleneck,
    link_bytes_per_s,
    require_positive,
    time_ops,
)
from rigwise.validation.intervals import Interval, lookup
from rigwise.workload.params import count_params
from rigwise.workload.schema import Model, TransformerShape


@dataclass(frozen=True, slots=True)
class InferConfig:
    """An inference setup: weight format, batch, prompt and output lengths, engine."""

    weights: str = "bf16"
    batch_size: int = 1
    prompt_tokens: int = 512
    output_tokens: int = 256
    engine: str = "generic"
    kv_bytes: float = 2.0
    gpus: int = 1


@dataclass(frozen=True, slots=True)
class InferEstimate:
    """Result of :func:`estimate_infer`. Token rates are for the whole batch."""

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
    dev = make_device(gpu, fmt.compute, eff,
                      memory_efficiency=engine_efficiency(cfg.engine).memory
                      * device_memory_factor(eff))
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
    all-reduces of the activations per layer.

    Raises:
        InputError: non-positive sizes, a model without tokens, an unknown engine.
        UnsupportedError: a weight format the device cannot compute.
    """
    for name, value in (("batch size", cfg.batch_size), ("prompt tokens", cfg.prompt_tokens),
                        ("output tokens", cfg.output_tokens), ("GPU count", cfg.gpus)):
        require_positive(name, value)
    shape = _decoder_shape(model, cfg)
    fmt = weight_format(cfg.weights, gpu)
    ctx = cfg.prompt_tokens + cfg.output_tokens
    if ctx > shape.max_seq_len:
        raise InputError(f"prompt + output = {ctx} tokens exceeds {model.name}'s context "
                         f"{shape.max_seq_len}")
    eng = engine_efficiency(cfg.engine)
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
    prefill = time_ops(dev, passes["prefill"], eng.launch_s)
    decode = time_ops(dev, passes["decode"], eng.launch_s)
    bw, latency, link = link_bytes_per_s(gpu)
    if n > 1:
        def tp_comm(tokens: int) -> float:
            size = tokens * shape.hidden * 2.0
            return shape.n_layers * 2 * (2 * (n - 1) / n * size / bw + 2 * (n - 1) * latency)
        prefill = _split(prefill, n, tp_comm(cfg.batch_size * cfg.prompt_tokens))
        decode = _split(decode, n, tp_comm(cfg.batch_size))
    parallelism = "single GPU" if n == 1 else f"tensor parallel x{n} over {link}"
    return InferEstimate(
        model=model.id, gpu=gpu.id, gpus=n, config=cfg, fits=mem.fits, memory=mem,
        prefill_time_s=prefill.total_s,
        prefill_tokens_per_s=cfg.batch_size * cfg.prompt_tokens / prefill.total_s,
        decode_time_per_token_s=decode.total_s,
        decode_tokens_per_s=cfg.batch_size / decode.total_s,
        bottleneck=bottleneck(decode, mem.fits), parallelism=parallelism,
        assumptions=(f"engine {cfg.engine}: {eng.memory:.0%} of memory bandwidth",
                     f"weights {fmt.name} ({fmt.bits_per_weight:g} bits), matmul in "
                     f"{fmt.compute}", "decode timed at the middle of the output"),
        basis=basis_of(gpu),
        prefill_interval=lookup("prefill", gpu.architecture),
        decode_interval=lookup("decode", gpu.architecture))


def _split(shares: TimeShares, n: int, comm_s: float) -> TimeShares:
    return TimeShares(shares.compute_s / n, shares.memory_s / n, shares.launch_s, comm_s)


def _prefill_activation_bytes(s: TransformerShape, cfg: InferConfig) -> float:
    """Transient bytes of a prefill: one layer's widest tensors and the last logits."""
    t = cfg.batch_size * cfg.prompt_tokens
    ffn = s.ffn_hidden * (3 if s.ffn_kind == "swiglu" else 1)
    return t * (4 * s.hidden + ffn) * 2.0 + cfg.batch_size * s.vocab * 4.0
