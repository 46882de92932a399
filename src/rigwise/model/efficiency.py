"""Kernel efficiencies relative to datasheet peaks, read from ``catalog/data/efficiency``.

The values and their sources live in the data file; this module only loads them.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass

from rigwise.catalog.load import DATA_DIR


@dataclass(frozen=True, slots=True)
class Efficiency:
    """Fractions of peak reached by each kind of kernel, and per-kernel costs.

    ``gemm_tensor``/``gemm_simt``: large GEMMs on tensor cores / on FP32 units.
    ``conv_relative``: convolutions relative to GEMMs. ``memory``: of the memory bandwidth.
    ``launch_s``: seconds of launch overhead per kernel. ``tile_m/tile_n``: GEMM tile;
    ``gemm_k_overhead``: reduction steps lost per tile. ``l2_speedup``: bandwidth multiple for
    tensors that stay in L2.
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


@dataclass(frozen=True, slots=True)
class EngineEfficiency:
    """An inference engine's bandwidth efficiency and launch cost per kernel."""

    name: str
    memory: float
    launch_s: float


@functools.cache
def _raw() -> dict[str, object]:
    with (DATA_DIR / "efficiency" / "default.toml").open("rb") as fh:
        return tomllib.load(fh)


def _values(table: object) -> dict[str, float]:
    assert isinstance(table, dict)
    return {k: v["value"] for k, v in table.items()}


@functools.cache
def default_efficiency() -> Efficiency:
    """The default efficiencies (the data file's ``[default]`` table)."""
    v = _values(_raw()["default"])
    floats = {k: float(x) for k, x in v.items() if not k.startswith("tile")}
    return Efficiency(tile_m=int(v["tile_m"]), tile_n=int(v["tile_n"]), **floats)


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
def engine_efficiency(name: str) -> EngineEfficiency:
    """Efficiency of one inference engine. Raises KeyError for an unknown engine."""
    table = _raw()["engine"]
    assert isinstance(table, dict)
    v = _values(table[name])
    return EngineEfficiency(name=name, memory=float(v["memory"]), launch_s=float(v["launch_s"]))
