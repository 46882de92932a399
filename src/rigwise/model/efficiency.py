"""Kernel efficiencies relative to datasheet peaks, read from ``catalog/data/efficiency``.

The values and their sources live in the data file; this module only loads them.
"""

from __future__ import annotations

import functools
import importlib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from rigwise.catalog.load import DATA_DIR
from rigwise.catalog.models import Gpu


@dataclass(frozen=True, slots=True)
class Efficiency:
    """Fractions of peak reached by each kind of kernel, and per-kernel costs.

    ``gemm_tensor``/``gemm_simt``: large GEMMs on tensor cores / on FP32 units.
    ``conv_relative``: convolutions relative to GEMMs. ``memory``: of the memory bandwidth.
    ``launch_s``: seconds of launch overhead per kernel. ``tile_m/tile_n``: GEMM tile;
    ``gemm_k_overhead``: reduction steps lost per tile. ``l2_speedup``: bandwidth multiple for
    tensors that stay in L2. ``winograd_reduction``: fewer multiplies of a 3x3 stride-1
    convolution computed with Winograd's minimal filtering on FP32 units.
    ``nchw_transpose_passes``: passes over a convolution's input and output per training step
    that layout transposes add when NCHW activations meet tensor cores. ``gemm_fp8``: large
    FP8 GEMMs on tensor cores where measured (scaled FP8 GEMMs reach a smaller share of their
    peak than bf16 ones); None takes ``gemm_tensor``.
    """

    gemm_tensor: float
    gemm_simt: float
    conv_relative: float
    memory: float
    flash_attention: float
    mem_efficient_attention: float
    launch_s: float
    tile_m: int
    tile_n: int
    gemm_k_overhead: float
    l2_speedup: float
    winograd_reduction: float
    nchw_transpose_passes: float
    gemm_fp8: float | None = None


@dataclass(frozen=True, slots=True)
class EngineEfficiency:
    """An inference engine's bandwidth efficiency and launch cost per kernel, and whether its
    prefill dequantizes quantized weights to fp16 before the GEMM (``prefill_dequant``).

    Serving defaults (continuous batching): ``kv_memory`` is the share of memory the KV cache
    takes, of the memory left free after weights and workspace, or of the whole device memory
    when ``kv_of_total`` (vLLM's ``gpu_memory_utilization``); ``max_batch`` caps the sequences
    in flight (``max_batch_large`` on GPUs with at least 70 GiB, where the engine raises it);
    ``prefill_tokens`` is the token budget of one batched prefill (``max_num_tokens``);
    ``nvidia_only``: the engine runs on NVIDIA GPUs only. ``of_nominal``: ``memory`` was
    fitted for this engine on this vendor's devices (``[engine.<name>.<vendor>]``), so it is
    already a fraction of the nominal bandwidth and the device family's factor
    (:func:`device_memory_factor`) is not applied again. ``host_issued``: the host launches
    every kernel (no graph replay), so ``launch_s`` is an issue time a longer kernel hides
    (:func:`rigwise.model.step.issue_bound_shares`) rather than a gap added per kernel."""

    name: str
    memory: float
    launch_s: float
    prefill_dequant: bool = False
    of_nominal: bool = False
    host_issued: bool = False
    kv_memory: float = 0.9
    kv_of_total: bool = False
    max_batch: int = 0
    max_batch_large: int = 0
    prefill_tokens: int = 8192
    nvidia_only: bool = False


@functools.cache
def _raw() -> dict[str, object]:
    with (DATA_DIR / "efficiency" / "default.toml").open("rb") as fh:
        return tomllib.load(fh)


def _values(table: object) -> dict[str, float]:
    assert isinstance(table, dict)
    return {k: v["value"] for k, v in table.items()}


def _build(v: dict[str, float]) -> Efficiency:
    floats = {k: float(x) for k, x in v.items() if not k.startswith("tile")}
    return Efficiency(tile_m=int(v["tile_m"]), tile_n=int(v["tile_n"]), **floats)


@functools.cache
def default_efficiency() -> Efficiency:
    """The default efficiencies (the data file's ``[default]`` table)."""
    return _build(_values(_raw()["default"]))


def arch_key(architecture: str) -> str:
    """The key of an architecture in the data file: lower case, letters and digits only
    (``"Ada Lovelace"`` -> ``adalovelace``, ``"CDNA 3"`` -> ``cdna3``)."""
    return "".join(ch for ch in architecture.lower() if ch.isalnum())


def _table(name: str) -> dict[str, object]:
    table = _raw().get(name, {})
    assert isinstance(table, dict)
    return table


@functools.cache
def _published(vendor: str, architecture: str, segment: str = "",
               chip: str = "") -> tuple[dict[str, float], bool]:
    """Default, then ``[vendor.V]``, ``[arch.A]``, ``[arch.A.<segment>]`` (e.g.
    ``[arch.adalovelace.consumer]``: GeForce cards boost past their rated clocks) and
    ``[chip.C]`` values (``[chip.ga100]``: A100/A30 lack GA10x's dual-issue FP32); and
    whether the most specific table found says its values were measured there."""
    v = _values(_raw()["default"])
    arch_t = _table("arch").get(arch_key(architecture))
    seg_t = arch_t.get(segment) if isinstance(arch_t, dict) and segment else None
    chip_t = _table("chip").get(arch_key(chip)) if chip else None
    measured = False
    for t in (_table("vendor").get(vendor), arch_t, seg_t, chip_t):
        if isinstance(t, dict):
            v.update(_values({k: x for k, x in t.items()
                              if isinstance(x, dict) and "value" in x}))
            if t is not _table("vendor").get(vendor):
                measured = bool(t.get("measured", measured))
    return v, measured


@functools.cache
def _calibration_reader() -> Callable[[str], dict[str, float] | None] | None:
    try:
        module = importlib.import_module("rigwise.bench.calibrate")
    except ImportError:
        return None
    reader: Callable[[str], dict[str, float] | None] = module.calibrated_efficiency
    return reader


@functools.cache
def _calibrated(architecture: str) -> dict[str, float] | None:
    """Efficiencies fitted by ``rigwise calibrate`` on this machine, if any (read once per
    process; :func:`forget_calibration` makes the next estimate read them again)."""
    reader = _calibration_reader()
    found = reader(architecture) if reader else None
    return {k: float(x) for k, x in found.items() if k in Efficiency.__slots__} if found else None


def forget_calibration() -> None:
    """Drop the cached calibration overlay (after ``rigwise calibrate`` wrote a new one)."""
    _calibrated.cache_clear()
    _calibrated_build.cache_clear()


@functools.cache
def _calibrated_build(vendor: str, architecture: str, segment: str,
                      chip: str) -> Efficiency | None:
    local = _calibrated(architecture)
    return (_build({**_published(vendor, architecture, segment, chip)[0], **local})
            if local else None)


def efficiency_for(vendor: str, architecture: str, segment: str = "",
                   chip: str = "") -> Efficiency:
    """Efficiencies for a GPU of ``vendor`` and ``architecture``: the published defaults,
    overridden per vendor and per architecture (``catalog/data/efficiency``), then by the
    user's own calibration (``rigwise calibrate``) where there is one."""
    return (_calibrated_build(vendor, architecture, segment, chip)
            or _cached_build(vendor, architecture, segment, chip))


@functools.cache
def _cached_build(vendor: str, architecture: str, segment: str, chip: str) -> Efficiency:
    return _build(_published(vendor, architecture, segment, chip)[0])


def device_memory_factor(eff: Efficiency) -> float:
    """A device family's achievable memory bandwidth relative to the default's (1.0 for GPUs
    with no table of their own). Engine efficiencies (decode) are stated for discrete GPUs;
    this scales them to a family whose copy kernels reach less of the nominal bandwidth
    (Apple's unified memory: ``[vendor.apple]`` in the data file)."""
    return eff.memory / default_efficiency().memory


def efficiency_of(gpu: Gpu) -> Efficiency:
    """:func:`efficiency_for` a catalog GPU (its vendor, architecture, segment and chip)."""
    return efficiency_for(gpu.vendor, gpu.architecture, gpu.segment, gpu.chip or "")


def basis_of(gpu: Gpu) -> str:
    """:func:`calibration_basis` of a catalog GPU."""
    return calibration_basis(gpu.architecture, gpu.vendor, gpu.segment, gpu.chip or "")


def calibration_basis(architecture: str, vendor: str = "", segment: str = "",
                      chip: str = "") -> str:
    """``calibrated`` when efficiencies for ``architecture`` (and ``segment``) come from
    measurements on that architecture (ours or the user's), else ``blind``."""
    if _calibrated(architecture):
        return "calibrated"
    return "calibrated" if _published(vendor, architecture, segment, chip)[1] else "blind"


@dataclass(frozen=True, slots=True)
class Overheads:
    """Framework memory and link constants (see the data file's ``[memory]``/``[link]``)."""

    cuda_context_bytes: float
    fragmentation: float
    busbw_efficiency: float
    latency_nvlink_s: float
    latency_pcie_s: float
    no_p2p_factor: float
    ddp_overlap: float
    host_copy_efficiency: float


@functools.cache
def overheads() -> Overheads:
    """Memory and link constants of the v1 model."""
    v = {**_values(_raw()["memory"]), **_values(_raw()["link"])}
    return Overheads(**{k: float(x) for k, x in v.items()})


def engines() -> tuple[str, ...]:
    """Names of the inference engines with efficiency data."""
    table = _raw()["engine"]
    assert isinstance(table, dict)
    return tuple(table)


@functools.cache
def engine_efficiency(name: str, vendor: str = "") -> EngineEfficiency:
    """Efficiency of one inference engine on ``vendor``'s GPUs: the engine's values, then
    those of ``[engine.<name>.<vendor>]`` where the engine runs another backend there
    (llama.cpp: Metal on Apple, HIP on AMD). Raises KeyError for an unknown engine."""
    table = _raw()["engine"]
    assert isinstance(table, dict)
    entry = table[name]
    assert isinstance(entry, dict)
    v = _values({k: x for k, x in entry.items() if isinstance(x, dict) and "value" in x})
    backend = entry.get(vendor) if vendor else None
    if isinstance(backend, dict):
        v |= _values(backend)
    serving = _values(_raw()["serving"]) | v
    return EngineEfficiency(name=name, memory=float(v["memory"]), launch_s=float(v["launch_s"]),
                            prefill_dequant=bool(v.get("prefill_dequant", 0)),
                            of_nominal=isinstance(backend, dict) and "memory" in backend,
                            host_issued=bool(v.get("host_issued", 0)),
                            kv_memory=float(serving["kv_memory"]),
                            kv_of_total=bool(serving.get("kv_of_total", 0)),
                            max_batch=int(serving["max_batch"]),
                            max_batch_large=int(serving.get("max_batch_large", 0)),
                            prefill_tokens=int(serving["prefill_tokens"]),
                            nvidia_only=bool(v.get("nvidia_only", 0)))


@functools.cache
def loader_rates() -> Mapping[str, float]:
    """Images per second per CPU core of each CPU data loader (the data file's ``[loader]``
    table: JPEG decode + RandomResizedCrop + flip)."""
    return MappingProxyType({k: float(v) for k, v in _values(_raw()["loader"]).items()})


@functools.cache
def optimizer_impl_values(impl: str, optimizer: str) -> Mapping[str, float] | None:
    """The data file's ``[optimizer_impl.<impl>.<optimizer>]`` values (eager ops per parameter
    tensor or multi-tensor ops per step, bytes per parameter, launch sizes), or None where
    the file has no such implementation of that optimizer."""
    table = _table("optimizer_impl").get(impl)
    entry = table.get(optimizer) if isinstance(table, dict) else None
    if not isinstance(entry, dict):
        return None
    return MappingProxyType({k: float(v) for k, v in _values(entry).items()})


@functools.cache
def eager_op_s() -> float:
    """CPU seconds per eager PyTorch op issued from a Python loop (the data file's
    ``[host] eager_op_s``)."""
    return float(_values(_raw()["host"])["eager_op_s"])
