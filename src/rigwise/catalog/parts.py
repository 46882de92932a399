"""Parts of a whole machine besides the GPUs: PSUs, motherboards, cases, CPU coolers, RAM kits,
NVMe drives, GPU power connectors, and the sourced constants of the planner (``rules.toml``).

Files live in ``catalog/data/parts/``; each value is ``{ value = ..., source = "KEY" }`` with
``KEY`` in the file's ``[sources]`` table (title, url, as_of), and each part carries a dated
price observation. Loaded lazily by :func:`parts`; nothing is read at import time.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rigwise.catalog.schema import Source, Sourced
from rigwise.errors import CatalogError
from rigwise.names import NameIndex

PARTS_DIR = Path(__file__).parent / "data" / "parts"

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Frozen):
    """One dated price of one unit, in USD."""

    usd: PositiveFloat
    date: dt.date
    source: str


class _Part(_Frozen):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    aliases: tuple[str, ...] = ()
    price: Price | None = None


class Psu(_Part):
    """A power supply. ``connectors_16pin`` counts native 12VHPWR / 12V-2x6 cables."""

    wattage_w: Sourced[PositiveFloat]
    efficiency: Sourced[str]
    atx_version: Sourced[str] | None = None
    connectors_16pin: Sourced[Annotated[int, Field(ge=0)]] | None = None
    connectors_8pin: Sourced[Annotated[int, Field(ge=0)]] | None = None


class Slot(_Frozen):
    """One x16-sized slot: PCIe generation, electrical lanes, and what feeds it (CPU/chipset).

    ``lanes`` is the electrical width with every GPU slot of the board populated (what a
    multi-GPU build gets, e.g. 8 for each slot of an x8/x8 pair); ``lanes_alone`` is the width
    when the slot it shares lanes with is empty (16 for the first slot of an x8/x8 pair).
    """

    gen: Annotated[int, Field(ge=1, le=7)]
    lanes: Annotated[int, Field(ge=1, le=16)]
    via: Literal["cpu", "chipset"]
    lanes_alone: Annotated[int, Field(ge=1, le=16)] | None = None

    @property
    def max_lanes(self) -> int:
        """The widest this slot runs (alone, if it shares lanes)."""
        return max(self.lanes, self.lanes_alone or 0)


class Motherboard(_Part):
    """A motherboard: socket, memory and the slots a GPU can sit in.

    Form factor, memory slots and capacity are ``None`` where no source we read states them.
    """

    socket: Sourced[str]
    gpu_slots: Sourced[tuple[Slot, ...]]
    form_factor: Sourced[str] | None = None
    memory_slots: Sourced[PositiveInt] | None = None
    max_memory_gib: Sourced[PositiveFloat] | None = None


class Case(_Part):
    """A case. ``type`` as the retailer lists it (``ATX Mid Tower``, ``ATX Full Tower``)."""

    type: Sourced[str]
    volume_l: Sourced[PositiveFloat] | None = None


class Cooler(_Part):
    """A CPU cooler: ``air`` tower or ``aio`` liquid cooler.

    ``sockets`` lists the sockets its source names (workstation coolers); ``None`` for the
    desktop coolers, whose listings the planner uses for AM4/AM5/LGA1700.
    """

    cooling: Sourced[Literal["air", "aio"]]
    radiator_mm: Sourced[PositiveInt] | None = None
    sockets: Sourced[tuple[str, ...]] | None = None


class RamKit(_Part):
    """A RAM kit: total capacity in GiB, module count, DDR generation, MT/s.

    ``registered`` is true for RDIMM kits (workstation/server CPUs); ``None`` for unbuffered
    desktop kits whose listings do not say.
    """

    capacity_gib: Sourced[PositiveFloat]
    modules: Sourced[PositiveInt]
    ddr: Sourced[Annotated[int, Field(ge=3, le=6)]]
    speed_mt_s: Sourced[PositiveInt]
    registered: Sourced[bool] | None = None


class Storage(_Part):
    """A drive: capacity in decimal GB and its interface."""

    capacity_gb: Sourced[PositiveFloat]
    interface: Sourced[str]


class GpuPower(_Frozen):
    """The auxiliary power connectors of one catalog GPU."""

    gpu: str
    connector: Literal["16-pin", "8-pin"]
    count: PositiveInt
    source: str


class PowerLimitPoint(_Frozen):
    """Fraction of board power -> fraction of throughput kept, with its source."""

    power_fraction: Annotated[float, Field(gt=0, le=1)]
    speed_fraction: Annotated[float, Field(gt=0, le=1)]
    source: str
    note: str | None = None


PartKind = Literal["psu", "motherboard", "case", "cooler", "ram", "storage"]
_MODELS: dict[str, type[_Part]] = {"psu": Psu, "motherboard": Motherboard, "case": Case,
                                   "cooler": Cooler, "ram": RamKit, "storage": Storage}


class PartsFile(_Frozen):
    """One ``parts/<kind>s.toml`` file: sources and parts of one kind."""

    kind: PartKind
    sources: dict[str, Source]
    part: tuple[dict[str, object], ...]


class RulesFile(_Frozen):
    """``parts/rules.toml``: the sourced constants, grouped by topic."""

    kind: Literal["rules"]
    sources: dict[str, Source]
    psu: dict[str, Sourced[float]]
    cpu: dict[str, Sourced[float]]
    ram: dict[str, Sourced[float]]
    cooling: dict[str, Sourced[float]]
    cost: dict[str, Sourced[float]]
    power_limit: tuple[PowerLimitPoint, ...]

    @model_validator(mode="after")
    def _sources_exist(self) -> RulesFile:
        for group in (self.psu, self.cpu, self.ram, self.cooling, self.cost):
            for key, item in group.items():
                if item.source not in self.sources:
                    raise ValueError(f"{key} cites unknown source {item.source!r}")
        for p in self.power_limit:
            if p.source not in self.sources:
                raise ValueError(f"power_limit cites unknown source {p.source!r}")
        return self


class GpuPowerFile(_Frozen):
    """``parts/gpu_power.toml``."""

    kind: Literal["gpu_power"]
    sources: dict[str, Source]
    gpu: tuple[GpuPower, ...]


class Rules:
    """The planner's constants as plain floats, with their sources kept."""

    def __init__(self, f: RulesFile) -> None:
        self.file = f
        self.sources = f.sources
        self.power_limit = tuple(sorted(f.power_limit, key=lambda p: p.power_fraction))

    def value(self, group: str, key: str) -> float:
        """One constant, e.g. ``value("psu", "headroom")``. KeyError if absent."""
        table: dict[str, Sourced[float]] = getattr(self.file, group)
        return float(table[key].value)

    def cite(self, group: str, key: str) -> str:
        """The source title of one constant, for the reasons shown to users."""
        table: dict[str, Sourced[float]] = getattr(self.file, group)
        return self.sources[table[key].source].title


class Parts:
    """The loaded parts catalog: parts by kind, name lookup, connectors, rules."""

    def __init__(self, parts: dict[str, dict[str, _Part]], sources: dict[str, dict[str, Source]],
                 power: dict[str, GpuPower], power_sources: dict[str, Source],
                 rules: Rules) -> None:
        self.by_kind = parts
        self.sources = sources
        self.gpu_power = power
        self.gpu_power_sources = power_sources
        self.rules = rules
        self._names = {k: NameIndex(k, {p.id: (p.name, *p.aliases) for p in v.values()})
                       for k, v in parts.items()}

    def of(self, kind: str) -> list[_Part]:
        """All parts of one kind, in file order."""
        return list(self.by_kind.get(kind, {}).values())

    def get(self, kind: str, name: str) -> _Part:
        """The part of ``kind`` that ``name`` designates (id, name or alias).

        Raises:
            UnknownNameError: no such part, or an ambiguous name; lists the closest names.
        """
        index = self._names.get(kind) or NameIndex(kind, {})
        return self.by_kind[kind][index.resolve(name)]

    def source_of(self, kind: str, key: str) -> Source:
        """The source ``key`` of a parts file of ``kind``."""
        return self.sources[kind][key]


def _read(path: Path) -> dict[str, object]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _load_parts(path: Path) -> tuple[str, dict[str, _Part], dict[str, Source]]:
    f = PartsFile.model_validate(_read(path))
    model = _MODELS[f.kind]
    out: dict[str, _Part] = {}
    for raw in f.part:
        p = model.model_validate(raw)
        for field, item in p:
            if isinstance(item, Sourced) and item.source not in f.sources:
                raise ValueError(f"{p.id}.{field} cites unknown source {item.source!r}")
        if p.price and p.price.source not in f.sources:
            raise ValueError(f"{p.id}.price cites unknown source {p.price.source!r}")
        if p.id in out:
            raise ValueError(f"duplicate part id {p.id!r}")
        out[p.id] = p
    return f.kind, out, dict(f.sources)


@functools.cache
def parts() -> Parts:
    """The built-in parts catalog, loaded and validated on first call.

    Raises:
        CatalogError: a built-in parts file is invalid (a bug in rigwise's data).
    """
    by_kind: dict[str, dict[str, _Part]] = {}
    sources: dict[str, dict[str, Source]] = {}
    try:
        rules = Rules(RulesFile.model_validate(_read(PARTS_DIR / "rules.toml")))
        power = GpuPowerFile.model_validate(_read(PARTS_DIR / "gpu_power.toml"))
        for path in sorted(PARTS_DIR.glob("*.toml")):
            if path.stem in ("rules", "gpu_power"):
                continue
            kind, items, srcs = _load_parts(path)
            by_kind.setdefault(kind, {}).update(items)
            sources.setdefault(kind, {}).update(srcs)
    except (tomllib.TOMLDecodeError, ValidationError, ValueError, OSError) as exc:
        raise CatalogError(f"invalid parts file: {exc}") from exc
    for g in power.gpu:
        if g.source not in power.sources:
            raise CatalogError(f"gpu_power {g.gpu} cites unknown source {g.source!r}")
    return Parts(by_kind, sources, {g.gpu: g for g in power.gpu}, dict(power.sources), rules)
