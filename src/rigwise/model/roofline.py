"""Time of one operation on one device: a roofline with size-dependent efficiency.

``time = max(flop / (peak · η_compute), bytes / (bandwidth · η_memory))`` (Williams, Waterman &
Patterson, "Roofline", CACM 2009), where

* ``η_compute`` for a GEMM is the large-GEMM efficiency times the **wave quantisation** factor
  ``tiles / (ceil(tiles / SMs) · SMs)`` with ``tiles = ceil(M/128)·ceil(N/128)`` and a
  reduction-depth factor ``K / (K + k0)`` (NVIDIA DL Performance guide, "Matrix
  Multiplication Background": tile and wave quantisation);
* convolutions reach a fixed fraction of the GEMM efficiency (Dettmers 2020: CNNs gain 1.45x
  where transformers gain 1.70x, A100 over V100);
* fused attention reaches FlashAttention-2's fraction of peak (Dao 2023) on Ampere and newer
  with 16-bit inputs, the memory-efficient kernel's elsewhere;
* 3x3 stride-1 convolutions on FP32 units run Winograd's F(2x2, 3x3) (cuDNN's
  ``WINOGRAD`` algorithms): 16 multiplies instead of 36 per output tile, 2.25x fewer
  (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016, §4);
  tensor-core convolutions use implicit GEMM;
* memory-bound kernels whose traffic fits in the L2 cache run at ``l2_speedup`` times the
  DRAM bandwidth (Dettmers 2023 on Ada's 72 MB L2).

Efficiencies are data (:mod:`rigwise.model.efficiency`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

from rigwise.catalog.models import Gpu
from rigwise.model.efficiency import Efficiency
from rigwise.model.ops import Op

_SPLIT_K_MIN = 256
_FLASH_ARCHS = ("Ampere", "Ada", "Hopper", "Blackwell", "CDNA3", "CDNA 3")


@dataclass(frozen=True, slots=True)
class Device:
    """A GPU as the time model sees it: peaks in FLOP/s, bandwidth in bytes/s."""

    gpu: Gpu
    eff: Efficiency
    matmul_flop_per_s: float
    tensor_cores: bool
    flash: bool
    memory_bytes_per_s: float
    l2_bytes: float
    units: int


def make_device(gpu: Gpu, matmul_precision: str, eff: Efficiency, *,
                memory_efficiency: float | None = None) -> Device:
    """The device model of ``gpu`` computing GEMMs in ``matmul_precision``.

    Raises:
        KeyError: the device has no peak for ``matmul_precision`` (callers check first).
    """
    tensor = matmul_precision != "fp32" and gpu.segment != "soc"
    if matmul_precision == "fp8" and eff.gemm_fp8 is not None:
        eff = replace(eff, gemm_tensor=eff.gemm_fp8)
    flash = matmul_precision in ("fp16", "bf16", "fp8") and any(
        a.lower() in gpu.architecture.lower() for a in _FLASH_ARCHS)
    eta_mem = eff.memory if memory_efficiency is None else memory_efficiency
    return Device(
        gpu=gpu, eff=eff,
        matmul_flop_per_s=gpu.peak(matmul_precision),
        tensor_cores=tensor, flash=flash,
        memory_bytes_per_s=gpu.memory_bandwidth_bytes_per_s * eta_mem,
        l2_bytes=gpu.l2_cache_bytes or 0.0,
        units=gpu.compute_units or 1,
    )


def gemm_efficiency(dev: Device, m: int, n: int, k: int) -> float:
    """Fraction of the matmul peak a GEMM of this size reaches (0..1).

    When the output has fewer tiles than the device has SMs, libraries split the reduction
    dimension over SMs (split-K, CUTLASS/cuBLAS) in chunks of at least ``_SPLIT_K_MIN``.
    """
    eff = dev.eff
    base = eff.gemm_tensor if dev.tensor_cores else eff.gemm_simt
    return _gemm_efficiency(m, n, k, dev.units, eff.tile_m, eff.tile_n, eff.gemm_k_overhead,
                            base)


@functools.lru_cache(maxsize=65536)
def _gemm_efficiency(m: int, n: int, k: int, units: int, tile_m: int, tile_n: int,
                     k0: float, base: float) -> float:
    # pure in its arguments, so cached: searches over batch sizes repeat the same shapes
    tiles = math.ceil(m / tile_m) * math.ceil(n / tile_n)
    split = 1
    if tiles < units:
        split = max(1, min(units // tiles, k // _SPLIT_K_MIN))
    tiles *= split
    waves = math.ceil(tiles / units)
    wave_eff = tiles / (waves * units)
    k_split = k / split
    return base * wave_eff * k_split / (k_split + k0)


def op_time(dev: Device, op: Op) -> tuple[float, bool]:
    """Seconds for one instance of ``op`` and whether it is compute-bound.

    Launch overhead is not included (see :func:`launch_time`).
    """
    return op_seconds(dev, op.kind, op.flop, op.bytes, op.m, op.n, op.k, op.winograd)


def op_seconds(dev: Device, kind: str, flop: float, nbytes: float, m: int = 0, n: int = 0,
               k: int = 0, winograd: bool = False) -> tuple[float, bool]:
    """:func:`op_time` from an op's fields (the backward pass times its GEMMs this way
    without building them)."""
    eff = dev.eff
    if kind == "gemm" or kind == "conv":
        eta = _gemm_efficiency(m, n, k, dev.units, eff.tile_m, eff.tile_n, eff.gemm_k_overhead,
                               eff.gemm_tensor if dev.tensor_cores else eff.gemm_simt)
        if kind == "conv":
            eta *= eff.conv_relative
            if winograd and not dev.tensor_cores:
                flop /= eff.winograd_reduction
        compute = flop / (dev.matmul_flop_per_s * eta)
    elif kind == "attention":
        eta = eff.flash_attention if dev.flash else eff.mem_efficient_attention
        if not dev.tensor_cores:
            eta = eff.gemm_simt * 0.5
        compute = flop / (dev.matmul_flop_per_s * eta)
    else:
        compute = 0.0
    bandwidth = dev.memory_bytes_per_s
    if kind == "memory" and nbytes < dev.l2_bytes:
        bandwidth *= eff.l2_speedup
    mem = nbytes / bandwidth
    return (compute, True) if compute >= mem else (mem, False)
