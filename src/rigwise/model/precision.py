"""Numeric formats: training precisions and inference weight formats.

Training (DESIGN.md): ``fp32`` (no TF32), ``tf32``, ``fp16`` and ``bf16`` (mixed precision with
fp32 master weights, as PyTorch AMP does), ``fp8`` (Transformer Engine: fp8 GEMMs, bf16
elsewhere).

Inference weight formats and their bits per weight:
  * dense: f32 32, f16/bf16 16, fp8 8, int8 8 (per-channel scales, negligible), int4 4.25
    (4-bit with one fp16 scale and zero per group of 128: AWQ/GPTQ, Lin et al. 2023),
    int4_g32 5.0 (gpt-fast's int4 with a bf16 scale and zero per group of 32, its
    ``quantize.py`` default ``--groupsize 32``: 4 + 32/32);
  * llama.cpp GGUF block formats, from the block structures in ggml's ``ggml-common.h``:
    q8_0 34 B/32 = 8.5, q6_k 210 B/256 = 6.5625, q5_k 176/256 = 5.5, q4_k 144/256 = 4.5,
    q3_k 110/256 = 3.4375, q2_k 84/256 = 2.625, q4_0 18 B/32 = 4.5, q4_1 20/32 = 5.0,
    q5_0 22/32 = 5.5, q5_1 24/32 = 6.0. The ``_m``/``_s`` mixes keep some tensors at higher
    precision; their effective bits are the ones llama.cpp's quantize tool reports for
    Llama-class models (q4_k_m 4.89, q5_k_m 5.70, q3_k_m 3.91, q4_k_s 4.58, q5_k_s 5.54).
"""

from __future__ import annotations

from dataclasses import dataclass

from rigwise.catalog.models import Gpu
from rigwise.errors import UnsupportedError


@dataclass(frozen=True, slots=True)
class TrainPrecision:
    """How a training precision maps to the device.

    ``matmul``: the device peak GEMMs use; ``act_bytes``: bytes per activation element;
    ``gemm_weight_bytes``: bytes per weight element as GEMMs read it.
    """

    name: str
    matmul: str
    act_bytes: float
    gemm_weight_bytes: float


TRAIN_PRECISIONS: dict[str, TrainPrecision] = {
    "fp32": TrainPrecision("fp32", "fp32", 4.0, 4.0),
    "tf32": TrainPrecision("tf32", "tf32", 4.0, 4.0),
    "fp16": TrainPrecision("fp16", "fp16", 2.0, 2.0),
    "bf16": TrainPrecision("bf16", "bf16", 2.0, 2.0),
    "fp8": TrainPrecision("fp8", "fp8", 2.0, 1.0),
}


@dataclass(frozen=True, slots=True)
class WeightFormat:
    """An inference weight format: bits per weight and the precision GEMMs compute in.

    ``compute`` is the device precision of the matrix math: weight-only formats
    (int4, GGUF) dequantise to fp16 and multiply there.
    """

    name: str
    bits_per_weight: float
    compute: str


WEIGHT_FORMATS: dict[str, WeightFormat] = {
    f.name: f for f in (
        WeightFormat("f32", 32.0, "fp32"), WeightFormat("f16", 16.0, "fp16"),
        WeightFormat("bf16", 16.0, "bf16"), WeightFormat("fp8", 8.0, "fp8"),
        WeightFormat("int8", 8.0, "int8"), WeightFormat("int4", 4.25, "fp16"),
        WeightFormat("int4_g32", 5.0, "fp16"),
        WeightFormat("q8_0", 8.5, "fp16"), WeightFormat("q6_k", 6.5625, "fp16"),
        WeightFormat("q5_k_m", 5.70, "fp16"), WeightFormat("q5_k_s", 5.54, "fp16"),
        WeightFormat("q5_0", 5.5, "fp16"), WeightFormat("q5_1", 6.0, "fp16"),
        WeightFormat("q4_k_m", 4.89, "fp16"), WeightFormat("q4_k_s", 4.58, "fp16"),
        WeightFormat("q4_0", 4.5, "fp16"), WeightFormat("q4_1", 5.0, "fp16"),
        WeightFormat("q3_k_m", 3.91, "fp16"), WeightFormat("q2_k", 2.625, "fp16"),
    )
}

NF4_BITS_PER_WEIGHT = 4.127
"""QLoRA NF4 with double quantisation: 4 + 8/64 + 32/(64*256) bits (Dettmers et al. 2023, §3)."""


def train_precision(name: str, gpu: Gpu) -> TrainPrecision:
    """The training precision ``name`` on ``gpu``.

    Raises:
        UnsupportedError: unknown precision, or one the device has no peak for.
    """
    p = TRAIN_PRECISIONS.get(name.lower())
    if p is None:
        raise UnsupportedError(
            f"unknown precision {name!r}; choose one of {', '.join(TRAIN_PRECISIONS)}")
    if not gpu.supports(p.matmul):
        have = [x for x in TRAIN_PRECISIONS if gpu.supports(TRAIN_PRECISIONS[x].matmul)]
        raise UnsupportedError(
            f"{gpu.name} does not support {p.name}; it supports {', '.join(have) or 'none'}")
    return p


def weight_format(name: str, gpu: Gpu) -> WeightFormat:
    """The weight format ``name`` on ``gpu``; fp8/int8 fall back to fp16 compute.

    Raises:
        UnsupportedError: unknown format, or a device without the compute precision.
    """
    f = WEIGHT_FORMATS.get(name.lower())
    if f is None:
        raise UnsupportedError(
            f"unknown weight format {name!r}; choose one of {', '.join(WEIGHT_FORMATS)}")
    if not gpu.supports(f.compute) and f.compute in ("fp8", "int8"):
        f = WeightFormat(f.name, f.bits_per_weight, "fp16")  # weight-only, dequantised
    if not gpu.supports(f.compute):
        raise UnsupportedError(f"{gpu.name} cannot compute in {f.compute} (weights {f.name})")
    return f
