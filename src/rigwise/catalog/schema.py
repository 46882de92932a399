"""Data models of the hardware catalog, as written in its TOML files and as used in code.

A catalog file names its sources once, in a ``[sources.KEY]`` table (title, url, as_of), and
gives every value as ``{ value = ..., source = "KEY" }``, optionally with a ``note``. So every
number carries its source and the date the source was read or published.

The file models (``*File``) mirror the TOML; :func:`rigwise.catalog.load` turns them into the
flat, SI-unit models (:class:`Gpu`, :class:`Cpu`, ...) that the rest of rigwise uses, and keeps
the provenance of each field in ``provenance``.

Conventions of the data (hw-data.md §6):
  * throughput fields are peak **dense** figures; ``sparsity_factor`` (2.0 for 2:4 structured
    sparsity, 1.0 where there is none) multiplies them for the sparse peak;
  * ``fp16_tflops`` / ``bf16_tflops`` are tensor-core figures with FP32 accumulate (the figure
    mixed-precision training gets); GeForce cards that double with FP16 accumulate keep that
    figure apart in ``fp16_acc16_tflops``;
  * an absent precision field means the device has no support for it (or no published figure).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T")

Vendor = Literal["nvidia", "amd", "intel", "google", "apple"]
Segment = Literal["consumer", "workstation", "datacenter", "edge", "soc", "tpu"]
FormFactor = Literal["pcie", "sxm2", "sxm4", "sxm5", "sxm6", "oam", "superchip", "module", "soc",
                     "tpu"]
Fabric = Literal["none", "nvlink", "nvlink-bridge", "infinity-fabric", "ici", "roce", "nvlink-c2c"]
PriceKind = Literal["launch", "street_new", "used", "cloud_on_demand", "cloud_spot",
                    "cloud_reserved"]
Cooling = Literal["open-air", "blower", "passive", "liquid", "integrated"]

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Frozen):
    """A document that a value comes from.

    ``as_of`` is the date of the document, or the date it was read for a live page.
    """

    title: str = Field(min_length=3)
    url: str = Field(min_length=8)
    as_of: dt.date


class Sourced(_Frozen, Generic[T]):
    """One value and the key of its source in the file's ``[sources]`` table."""

    value: T
    source: str
    note: str | None = None


class GpuSpecsFile(_Frozen):
    """The ``[specs]`` table of a GPU file; units in the key names (GB = 1e9, GiB = 2**30).

    Figures are per board (the unit sold). ``devices_per_board`` counts the devices that CUDA or
    ROCm enumerate on it (two GK210 on a Tesla K80, two GCDs on an MI250X); the loader divides
    the board's memory, bandwidth, cache, units, peaks, power, host lanes, fabric bandwidth and
    price by it, so that one catalog GPU is one device as software and the cloud count it.
    """

    release_date: Sourced[dt.date]
    memory_gib: Sourced[PositiveFloat]
    memory_type: Sourced[str]
    memory_bandwidth_gb_per_s: Sourced[PositiveFloat]
    l2_cache_mib: Sourced[NonNegFloat] | None = None
    compute_units: Sourced[Annotated[int, Field(gt=0)]] | None = None
    boost_clock_mhz: Sourced[PositiveFloat] | None = None
    fp64_tflops: Sourced[PositiveFloat] | None = None
    fp32_tflops: Sourced[PositiveFloat] | None = None
    tf32_tflops: Sourced[PositiveFloat] | None = None
    fp16_tflops: Sourced[PositiveFloat] | None = None
    bf16_tflops: Sourced[PositiveFloat] | None = None
    fp16_acc16_tflops: Sourced[PositiveFloat] | None = None
    fp8_tflops: Sourced[PositiveFloat] | None = None
    int8_tops: Sourced[PositiveFloat] | None = None
    int4_tops: Sourced[PositiveFloat] | None = None
    fp4_tflops: Sourced[PositiveFloat] | None = None
    sparsity_factor: Sourced[Annotated[float, Field(ge=1.0)]]
    tdp_w: Sourced[PositiveFloat] | None = None
    form_factor: Sourced[FormFactor]
    slots: Sourced[Annotated[int, Field(ge=0)]] | None = None
    cooling: Sourced[Cooling] | None = None
    pcie_gen: Sourced[Annotated[int, Field(ge=1, le=7)]] | None = None
    pcie_lanes: Sourced[Annotated[int, Field(ge=1, le=32)]] | None = None
    scaleup_fabric: Sourced[Fabric]
    scaleup_gb_per_s_per_direction: Sourced[NonNegFloat] | None = None
    p2p: Sourced[bool]
    launch_price_usd: Sourced[PositiveFloat] | None = None
    devices_per_board: Sourced[Annotated[int, Field(ge=1, le=8)]] | None = None


class GpuFile(_Frozen):
    """One accelerator: ``catalog/data/gpus/<id>.toml``."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    vendor: Vendor
    segment: Segment
    architecture: str
    chip: str | None = None
    compute_capability: str | None = None
    aliases: tuple[str, ...] = ()
    sources: dict[str, Source]
    specs: GpuSpecsFile

    @model_validator(mode="after")
    def _sources_exist(self) -> GpuFile:
        for field, item in self.specs:
            if isinstance(item, Sourced) and item.source not in self.sources:
                raise ValueError(f"specs.{field} cites unknown source {item.source!r}")
        return self


class PriceObservation(_Frozen):
    """One dated price seen in public: a purchase price or a cloud rate.

    ``usd`` is the price of one unit (board) for purchases; ``usd_per_h`` is the price of one
    GPU-hour for cloud kinds (an 8-GPU instance's rate divided by 8, with ``gpus_per_instance``
    kept), where a GPU is one device as the cloud counts it (one GK210 of a K80, one GCD).
    """

    kind: PriceKind
    date: dt.date
    source: str
    usd: PositiveFloat | None = None
    usd_per_h: PositiveFloat | None = None
    provider: str | None = None
    instance: str | None = None
    gpus_per_instance: Annotated[int, Field(ge=1)] | None = None
    region: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _unit_matches_kind(self) -> PriceObservation:
        cloud = self.kind.startswith("cloud")
        if cloud and self.usd_per_h is None:
            raise ValueError(f"{self.kind} price needs usd_per_h")
        if not cloud and self.usd is None:
            raise ValueError(f"{self.kind} price needs usd")
        return self


class PriceFile(_Frozen):
    """Price observations of one accelerator: ``catalog/data/prices/<gpu id>.toml``."""

    gpu: str
    sources: dict[str, Source]
    observation: tuple[PriceObservation, ...]

    @model_validator(mode="after")
    def _sources_exist(self) -> PriceFile:
        for obs in self.observation:
            if obs.source not in self.sources:
                raise ValueError(f"price of {obs.date} cites unknown source {obs.source!r}")
        return self


class CpuSpecsFile(_Frozen):
    """The ``[specs]`` table of a CPU file."""

    release_date: Sourced[dt.date]
    cores: Sourced[Annotated[int, Field(gt=0)]]
    threads: Sourced[Annotated[int, Field(gt=0)]]
    base_clock_ghz: Sourced[PositiveFloat] | None = None
    boost_clock_ghz: Sourced[PositiveFloat] | None = None
    pcie_gen: Sourced[Annotated[int, Field(ge=1, le=7)]]
    pcie_lanes: Sourced[Annotated[int, Field(gt=0)]]
    memory_channels: Sourced[Annotated[int, Field(gt=0)]] | None = None
    memory_type: Sourced[str] | None = None
    max_memory_gib: Sourced[PositiveFloat] | None = None
    tdp_w: Sourced[PositiveFloat]
    launch_price_usd: Sourced[PositiveFloat] | None = None
    street_price_usd: Sourced[PositiveFloat] | None = None
    """A dated street price of one unit, new; its date is the ``as_of`` of its source."""


class CpuFile(_Frozen):
    """One CPU: ``catalog/data/cpus/<id>.toml``."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    vendor: Literal["amd", "intel", "nvidia", "ampere"]
    segment: Literal["desktop", "hedt", "workstation", "server"]
    socket: str | None = None
    aliases: tuple[str, ...] = ()
    sources: dict[str, Source]
    specs: CpuSpecsFile

    @model_validator(mode="after")
    def _sources_exist(self) -> CpuFile:
        for field, item in self.specs:
            if isinstance(item, Sourced) and item.source not in self.sources:
                raise ValueError(f"specs.{field} cites unknown source {item.source!r}")
        return self


class LinkGeneration(_Frozen):
    """One generation or rate of a link family (PCIe 4.0, NVLink 3, InfiniBand HDR, 400GbE).

    ``gb_per_s_per_direction`` is per lane for PCIe, per GPU (all links) for NVLink and
    Infinity Fabric, and per port for InfiniBand and Ethernet.
    """

    name: str
    year: Annotated[int, Field(ge=1990, le=2035)]
    gb_per_s_per_direction: PositiveFloat
    per: Literal["lane", "gpu", "port", "link"]
    signaling_gt_per_s: PositiveFloat | None = None
    encoding: str | None = None
    links: Annotated[int, Field(ge=1)] | None = None
    example: str | None = None
    source: str
    note: str | None = None


class InterconnectFile(_Frozen):
    """A link family: ``catalog/data/interconnects/<family>.toml``."""

    family: Literal["pcie", "nvlink", "infinity-fabric", "infiniband", "ethernet", "ici"]
    description: str
    sources: dict[str, Source]
    generation: tuple[LinkGeneration, ...]

    @model_validator(mode="after")
    def _sources_exist(self) -> InterconnectFile:
        for gen in self.generation:
            if gen.source not in self.sources:
                raise ValueError(f"{gen.name} cites unknown source {gen.source!r}")
        return self
