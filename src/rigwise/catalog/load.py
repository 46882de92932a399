"""Load and validate the built-in catalog (TOML files under ``catalog/data``).

Files are read once, lazily, on first use (:func:`catalog`); nothing is loaded at import time.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from pydantic import BaseModel, ValidationError

from rigwise import units
from rigwise.catalog.models import Cpu, Gpu
from rigwise.catalog.schema import (
    CpuFile,
    GpuFile,
    InterconnectFile,
    PriceFile,
    PriceObservation,
    Sourced,
)
from rigwise.errors import CatalogError
from rigwise.names import NameIndex

DATA_DIR = Path(__file__).parent / "data"

_FILE_MODELS: dict[str, type[BaseModel]] = {
    "gpus": GpuFile,
    "cpus": CpuFile,
    "prices": PriceFile,
    "interconnects": InterconnectFile,
}

_PRECISION_FIELDS = {
    "fp64": "fp64_tflops", "fp32": "fp32_tflops", "tf32": "tf32_tflops",
    "fp16": "fp16_tflops", "bf16": "bf16_tflops", "fp8": "fp8_tflops",
    "int8": "int8_tops", "int4": "int4_tops", "fp4": "fp4_tflops",
}


def parse_file(path: Path) -> BaseModel:
    """Parse one catalog file into its file model, chosen by its folder.

    Raises:
        tomllib.TOMLDecodeError: the TOML is malformed.
        pydantic.ValidationError: a value fails validation.
        ValueError: the folder is not a catalog kind.
    """
    model = _FILE_MODELS.get(path.parent.name)
    if model is None:
        raise ValueError(f"no catalog kind for folder {path.parent.name!r}")
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    return model.model_validate(raw)


def gpu_invariants(gpu: GpuFile) -> list[str]:
    """Cross-field checks of one GPU file; returns the problems found (empty if none)."""
    s = gpu.specs
    problems: list[str] = []
    if gpu.segment != "tpu" and (s.fp32_tflops is None or s.tdp_w is None):
        problems.append("fp32_tflops and tdp_w are required for every device but TPUs")
    tensor = [f for f in (s.fp16_tflops, s.bf16_tflops) if f is not None]
    if s.fp32_tflops is not None and any(f.value < s.fp32_tflops.value * 0.99 for f in tensor):
        problems.append("fp16/bf16 peak below the fp32 peak")
    if s.bf16_tflops is None and s.fp16_tflops is None:
        problems.append("neither fp16_tflops nor bf16_tflops given")
    if s.fp8_tflops and s.bf16_tflops and s.fp8_tflops.value < s.bf16_tflops.value * 0.99:
        problems.append("fp8 peak below bf16 peak")
    if s.fp4_tflops and s.fp8_tflops and s.fp4_tflops.value < s.fp8_tflops.value * 0.99:
        problems.append("fp4 peak below fp8 peak")
    if s.scaleup_fabric.value != "none" and s.scaleup_gb_per_s_per_direction is None:
        problems.append("scale-up fabric given without scaleup_gb_per_s_per_direction")
    if s.form_factor.value == "pcie" and (s.pcie_gen is None or s.pcie_lanes is None):
        problems.append("PCIe card without pcie_gen/pcie_lanes")
    if gpu.vendor == "nvidia" and gpu.compute_capability is None:
        problems.append("NVIDIA GPU without compute_capability")
    return problems


def check_file(path: Path) -> list[str]:
    """All problems of one catalog file: parse errors, validation errors, invariants."""
    try:
        parsed = parse_file(path)
    except tomllib.TOMLDecodeError as exc:
        return [f"TOML: {exc}"]
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    ident = getattr(parsed, "id", None) or getattr(parsed, "gpu", None)
    if ident is not None and ident != path.stem:
        problems.append(f"id {ident!r} differs from file name {path.stem!r}")
    if isinstance(parsed, GpuFile):
        problems += gpu_invariants(parsed)
    return problems


def _value(item: Sourced[float] | None, scale: float = 1.0) -> float | None:
    return None if item is None else float(item.value) * scale


def _provenance(specs: BaseModel) -> dict[str, str]:
    return {name: item.source for name, item in specs if isinstance(item, Sourced)}


def build_gpu(f: GpuFile, prices: tuple[PriceObservation, ...] = ()) -> Gpu:
    """The SI-unit :class:`Gpu` of a validated GPU file: one device, as CUDA or ROCm count it.

    A board with ``devices_per_board`` devices (Tesla K80, MI250X) has its memory, bandwidth,
    L2, compute units, peaks, TDP, slots, host lanes, fabric bandwidth and launch price divided
    among them; clocks, generation and fabric kind are the same for every device.
    """
    s = f.specs
    n = s.devices_per_board.value if s.devices_per_board else 1
    peaks: dict[str, float] = {}
    for precision, field in _PRECISION_FIELDS.items():
        item = getattr(s, field)
        if item is not None:
            peaks[precision] = units.tflops_to_flop_per_s(item.value) / n
    if "bf16" in peaks and "fp16" not in peaks:
        peaks["fp16"] = peaks["bf16"]

    def share(item: Sourced[float] | None, scale: float = 1.0) -> float | None:
        value = _value(item, scale)
        return None if value is None else value / n

    def share_int(item: Sourced[int] | None) -> int | None:
        return None if item is None else max(1, item.value // n)

    return Gpu(
        id=f.id, name=f.name, vendor=f.vendor, segment=f.segment,
        architecture=f.architecture, chip=f.chip, compute_capability=f.compute_capability,
        aliases=f.aliases, release_date=s.release_date.value,
        memory_bytes=units.gib_to_bytes(s.memory_gib.value) / n,
        memory_type=s.memory_type.value,
        memory_bandwidth_bytes_per_s=units.gb_per_s_to_bytes_per_s(
            s.memory_bandwidth_gb_per_s.value) / n,
        l2_cache_bytes=share(s.l2_cache_mib, units.MIB),
        compute_units=share_int(s.compute_units),
        boost_clock_hz=_value(s.boost_clock_mhz, units.MEGA),
        peak_flop_per_s=peaks,
        fp16_acc16_flop_per_s=share(s.fp16_acc16_tflops, units.TERA),
        sparsity_factor=s.sparsity_factor.value,
        tdp_w=share(s.tdp_w),
        form_factor=s.form_factor.value,
        slots=share_int(s.slots),
        cooling=s.cooling.value if s.cooling else None,
        pcie_gen=s.pcie_gen.value if s.pcie_gen else None,
        pcie_lanes=share_int(s.pcie_lanes),
        scaleup_fabric=s.scaleup_fabric.value,
        scaleup_bytes_per_s_per_direction=share(s.scaleup_gb_per_s_per_direction, units.GIGA),
        p2p=s.p2p.value,
        launch_price_usd=share(s.launch_price_usd),
        sources=dict(f.sources),
        provenance=_provenance(s),
        prices=prices,
        devices_per_board=n,
    )


def build_cpu(f: CpuFile) -> Cpu:
    """The SI-unit :class:`Cpu` of a validated CPU file."""
    s = f.specs
    return Cpu(
        id=f.id, name=f.name, vendor=f.vendor, segment=f.segment, aliases=f.aliases,
        release_date=s.release_date.value, cores=s.cores.value, threads=s.threads.value,
        pcie_gen=s.pcie_gen.value, pcie_lanes=s.pcie_lanes.value,
        memory_channels=s.memory_channels.value if s.memory_channels else None,
        tdp_w=s.tdp_w.value, launch_price_usd=_value(s.launch_price_usd),
        sources=dict(f.sources), provenance=_provenance(s),
        street_price_usd=_value(s.street_price_usd),
        street_price_date=(f.sources[s.street_price_usd.source].as_of
                           if s.street_price_usd else None),
    )


def _load_kind(kind: str) -> list[BaseModel]:
    out = []
    for path in sorted((DATA_DIR / kind).glob("*.toml")):
        try:
            out.append(parse_file(path))
        except (tomllib.TOMLDecodeError, ValidationError, ValueError) as exc:
            raise CatalogError(f"invalid catalog file {path.name}: {exc}") from exc
    return out


class Catalog:
    """The loaded hardware catalog: GPUs (with their prices), CPUs and link families."""

    def __init__(self, gpus: list[Gpu], cpus: list[Cpu], links: list[InterconnectFile]):
        self.gpus: dict[str, Gpu] = {g.id: g for g in gpus}
        self.cpus: dict[str, Cpu] = {c.id: c for c in cpus}
        self.interconnects: dict[str, InterconnectFile] = {i.family: i for i in links}
        self._gpu_names = NameIndex("GPU", {g.id: (g.name, *g.aliases) for g in gpus})
        self._cpu_names = NameIndex("CPU", {c.id: (c.name, *c.aliases) for c in cpus})

    def gpu(self, name: str) -> Gpu:
        """The GPU that ``name`` designates (id or common name).

        Raises:
            UnknownNameError: unknown or ambiguous name; lists the closest matches.
        """
        return self.gpus[self._gpu_names.resolve(name)]

    def cpu(self, name: str) -> Cpu:
        """The CPU that ``name`` designates. Raises UnknownNameError."""
        return self.cpus[self._cpu_names.resolve(name)]


@functools.cache
def catalog() -> Catalog:
    """The built-in catalog, loaded and validated on first call.

    Raises:
        CatalogError: a built-in file is invalid (a bug in rigwise's data).
    """
    prices: dict[str, list[PriceObservation]] = {}
    for pf in _load_kind("prices"):
        assert isinstance(pf, PriceFile)
        prices.setdefault(pf.gpu, []).extend(pf.observation)
    gpus = []
    for gf in _load_kind("gpus"):
        assert isinstance(gf, GpuFile)
        gpus.append(build_gpu(gf, tuple(prices.get(gf.id, ()))))
    cpus = [build_cpu(cf) for cf in _load_kind("cpus") if isinstance(cf, CpuFile)]
    links = [lf for lf in _load_kind("interconnects") if isinstance(lf, InterconnectFile)]
    return Catalog(gpus, cpus, links)
