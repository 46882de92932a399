"""Systems as data: node and cluster templates (``catalog/data/systems/*.toml``).

A system says how GPUs talk to each other, in two tiers (perf-models.md §7.7):

* the **scale-up domain** (``[intra]``): the GPUs that share a fast fabric — an NVSwitch
  baseboard, an NVLink rack (GB200 NVL72), an Infinity Fabric mesh, PCIe through a switch or
  the CPU, a TPU ICI torus. ``gpus_per_node`` is the size of that domain;
* the **scale-out network** (``[network]``): NICs per node, their rate (InfiniBand, RoCE,
  Ethernet, TPU DCN), the topology and how many nodes it reaches.

Files name their sources once (``[sources.KEY]``) and give every value as
``{ value = ..., source = "KEY" }``, as the GPU catalog does. Users describe their own machine
in the same format and pass it with ``--system path.toml``.

Bandwidths are per direction, per GPU (or per link, for meshes and bridges), as sold; the
``busbw_efficiency`` of each tier turns them into the bus bandwidth that nccl-tests reports
(nccl-tests doc/PERFORMANCE.md). Everything is converted to SI units once, here.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from rigwise import units
from rigwise.catalog.load import DATA_DIR
from rigwise.catalog.models import Gpu
from rigwise.catalog.schema import Source, Sourced, _Frozen
from rigwise.errors import CatalogError, ConfigFileError
from rigwise.names import NameIndex

SYSTEMS_DIR = DATA_DIR / "systems"

Fabric = Literal["nvswitch", "nvlink-bridge", "pcie-switch", "pcie-host",
                 "infinity-fabric-mesh", "nvlink-mesh", "ici-torus"]
"""How the GPUs of one scale-up domain connect.

``nvswitch``: every GPU reaches every other at its full NVLink rate (HGX/DGX, NVL72).
``nvlink-bridge``: pairs of PCIe cards joined by a bridge; other pairs talk over PCIe.
``pcie-switch`` / ``pcie-host``: PCIe through a switch or the CPU's root complex; without
P2P (GeForce 40 series) transfers bounce through host memory.
``infinity-fabric-mesh``: AMD Instinct boards, every GPU linked directly to every other.
``nvlink-mesh``: NVLink without a switch, ``links`` direct links (or bundles) per GPU: the
4-GPU HGX boards (a full mesh) and the DGX-1 hybrid cube-mesh (see :meth:`Tier.busbw`).
``ici-torus``: Google TPU inter-chip interconnect, a 3D torus.
"""

MESH_FABRICS = ("infinity-fabric-mesh", "nvlink-mesh")
"""Switchless fabrics whose bandwidth per GPU grows with the links a group can use."""

NetworkKind = Literal["infiniband", "roce", "ethernet", "dcn"]

Pos = Annotated[float, Field(gt=0)]
Frac = Annotated[float, Field(gt=0, le=1)]
PosInt = Annotated[int, Field(gt=0)]


class IntraFile(_Frozen):
    """The ``[intra]`` table: the scale-up fabric of one node (or rack, or TPU slice)."""

    fabric: Sourced[Fabric]
    gb_per_s_per_direction: Sourced[Pos]
    links: Sourced[PosInt] | None = None
    p2p: Sourced[bool]
    latency_us: Sourced[Pos]
    busbw_efficiency: Sourced[Frac]
    no_p2p_factor: Sourced[Frac] | None = None
    torus_dim: Sourced[PosInt] | None = None
    pcie_gen: Sourced[Annotated[int, Field(ge=1, le=7)]] | None = None
    pcie_lanes: Sourced[Annotated[int, Field(ge=1, le=32)]] | None = None


class NetworkFile(_Frozen):
    """The ``[network]`` table: how nodes connect (absent: a single node only)."""

    kind: Sourced[NetworkKind]
    nics_per_node: Sourced[PosInt]
    nic_gb_per_s_per_direction: Sourced[Pos]
    latency_us: Sourced[Pos]
    busbw_efficiency: Sourced[Frac]
    topology: Sourced[str]
    max_nodes: Sourced[PosInt] | None = None


class HostFile(_Frozen):
    """The ``[host]`` table: the GPUs' link to the CPU and the CPU's optimizer speed."""

    pcie_gen: Sourced[Annotated[int, Field(ge=1, le=7)]]
    pcie_lanes: Sourced[Annotated[int, Field(ge=1, le=32)]]
    cpu_adam_params_per_s: Sourced[Pos] | None = None


class SystemFile(_Frozen):
    """One node or cluster template: ``catalog/data/systems/<id>.toml``."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    kind: Literal["node", "cluster"]
    description: str
    aliases: tuple[str, ...] = ()
    sources: dict[str, Source]
    gpu: Sourced[str] | None = None
    gpus_per_node: Sourced[PosInt]
    gpus_per_host: Sourced[PosInt] | None = None
    intra: IntraFile
    host: HostFile | None = None
    network: NetworkFile | None = None

    @model_validator(mode="after")
    def _check(self) -> SystemFile:
        tables: list[tuple[str, BaseModel | None]] = [
            ("", self), ("intra.", self.intra), ("host.", self.host), ("network.", self.network)]
        for prefix, table in tables:
            if table is None:
                continue
            for name, item in table:
                if isinstance(item, Sourced) and item.source not in self.sources:
                    raise ValueError(f"{prefix}{name} cites unknown source {item.source!r}")
        if self.kind == "cluster" and self.network is None:
            raise ValueError("a cluster template needs a [network] table")
        mesh = self.intra.fabric.value in MESH_FABRICS
        if mesh and self.intra.links is None:
            raise ValueError(f"an {self.intra.fabric.value} needs intra.links (links per GPU)")
        if not self.intra.p2p.value and self.intra.no_p2p_factor is None:
            raise ValueError("intra.p2p = false needs intra.no_p2p_factor")
        return self


@dataclass(frozen=True, slots=True)
class Tier:
    """One communication tier in SI units.

    ``bytes_per_s``: per GPU and direction as sold (per link for meshes and bridges; per GPU's
    share of the node's NICs for a network tier). ``efficiency``: achievable bus bandwidth as
    a fraction of it. ``latency_s``: the alpha of one step of a collective.
    """

    name: str
    fabric: str
    bytes_per_s: float
    efficiency: float
    latency_s: float
    p2p: bool = True
    no_p2p_factor: float = 1.0
    links: int | None = None
    torus_dim: int | None = None

    def busbw(self, group: int) -> float:
        """Achievable bus bandwidth (bytes/s) per GPU for a collective over ``group`` GPUs.

        A full mesh gives a group of ``k`` GPUs ``k − 1`` direct links each (RCCL and NCCL
        run rings over all of them), at most ``links``. The DGX-1 hybrid cube-mesh follows
        the same rule: its 8 GPUs form two (P100, 4 links) or three (V100, 6 links)
        edge-disjoint Hamiltonian rings of single NVLinks, which NCCL runs in both
        directions, so all ``links`` carry traffic (NVIDIA DGX-1 whitepapers; NVIDIA/nccl
        issue 299: 4 rings on a DGX-1); a 4-GPU quad is fully connected (3 links, or 3 of
        the V100's 4 in-quad links), a pair shares one link. A 3D torus gives a group that
        spans ``d`` dimensions ``2·d`` of its 6 ports; other fabrics give every group the
        GPU's full rate.
        """
        bw = self.bytes_per_s * self.efficiency
        if self.fabric in MESH_FABRICS and self.links:
            bw *= min(max(group - 1, 1), self.links)
        elif self.fabric == "ici-torus" and self.torus_dim:
            dims = min(3, max(1, math.ceil(math.log(max(group, 2)) / math.log(self.torus_dim))))
            bw *= dims / 3.0
        if not self.p2p:
            bw *= self.no_p2p_factor
        return bw


@dataclass(frozen=True, slots=True)
class System:
    """A node or cluster template in SI units; see the module docstring.

    ``inter`` is None for a template that has no network (one node at most).
    ``max_gpus`` is the most GPUs the template reaches (None: unbounded).
    """

    id: str
    name: str
    kind: str
    gpu_id: str | None
    aliases: tuple[str, ...]
    gpus_per_node: int
    intra: Tier
    inter: Tier | None
    max_nodes: int | None
    host_bytes_per_s: float
    cpu_adam_params_per_s: float
    sources: dict[str, Source] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()

    @property
    def max_gpus(self) -> int | None:
        """The most GPUs this template holds, or None when the network sets no limit."""
        if self.inter is None:
            return self.gpus_per_node
        return None if self.max_nodes is None else self.max_nodes * self.gpus_per_node


CPU_ADAM_PARAMS_PER_S = 4.5e9
"""Default CPU optimizer speed, parameters per second and node: DeepSpeed CPU-Adam updates
1 billion parameters in about 0.22 s on a 2-socket Xeon host (Ren et al. 2021,
"ZeRO-Offload", Table 2). Overridden by a template's ``host.cpu_adam_params_per_s``."""


def _pcie_bytes_per_s(gen: int, lanes: int) -> float:
    from rigwise.model.step import pcie_lane_bytes_per_s
    return pcie_lane_bytes_per_s(gen) * lanes


def build_system(f: SystemFile) -> System:
    """The SI-unit :class:`System` of a validated template."""
    i = f.intra
    intra = Tier(
        name=f"{f.name} {i.fabric.value}", fabric=i.fabric.value,
        bytes_per_s=units.gb_per_s_to_bytes_per_s(i.gb_per_s_per_direction.value),
        efficiency=i.busbw_efficiency.value, latency_s=i.latency_us.value * 1e-6,
        p2p=i.p2p.value, no_p2p_factor=i.no_p2p_factor.value if i.no_p2p_factor else 1.0,
        links=i.links.value if i.links else None,
        torus_dim=i.torus_dim.value if i.torus_dim else None)
    inter = None
    max_nodes: int | None = 1
    if f.network is not None:
        n = f.network
        node_bytes = n.nics_per_node.value * units.gb_per_s_to_bytes_per_s(
            n.nic_gb_per_s_per_direction.value)
        inter = Tier(name=f"{n.kind.value} ({n.topology.value})", fabric=n.kind.value,
                     bytes_per_s=node_bytes / f.gpus_per_node.value,
                     efficiency=n.busbw_efficiency.value, latency_s=n.latency_us.value * 1e-6)
        max_nodes = n.max_nodes.value if n.max_nodes else None
    host = f.host
    host_bw = _pcie_bytes_per_s(host.pcie_gen.value, host.pcie_lanes.value) if host else \
        _pcie_bytes_per_s(4, 16)
    adam = host.cpu_adam_params_per_s.value if (host and host.cpu_adam_params_per_s) \
        else CPU_ADAM_PARAMS_PER_S
    prov: dict[str, str] = {}
    for prefix, table in (("", f), ("intra.", f.intra), ("host.", f.host),
                          ("network.", f.network)):
        if table is not None:
            prov.update({prefix + k: v.source for k, v in table if isinstance(v, Sourced)})
    return System(id=f.id, name=f.name, kind=f.kind, gpu_id=f.gpu.value if f.gpu else None,
                  aliases=f.aliases,
                  gpus_per_node=f.gpus_per_node.value, intra=intra, inter=inter,
                  max_nodes=max_nodes, host_bytes_per_s=host_bw, cpu_adam_params_per_s=adam,
                  sources=dict(f.sources), provenance=prov)


def parse_system_file(path: Path) -> SystemFile:
    """Read and validate one template file.

    Raises:
        ConfigFileError: the file is missing, not TOML, or fails validation (one line).
    """
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigFileError(f"no such system file: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigFileError(f"cannot read system file {path}: {exc}") from None
    try:
        return SystemFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigFileError(f"invalid system file {path.name}: {where}: {first['msg']}"
                              f" ({exc.error_count()} problem(s))") from None


@functools.cache
def builtin_systems() -> dict[str, System]:
    """Every built-in template by id, loaded on first call.

    Raises:
        CatalogError: a built-in template is invalid (a bug in rigwise's data).
    """
    out: dict[str, System] = {}
    for path in sorted(SYSTEMS_DIR.glob("*.toml")):
        try:
            f = parse_system_file(path)
        except ConfigFileError as exc:
            raise CatalogError(str(exc)) from exc
        if f.id != path.stem:
            raise CatalogError(f"system id {f.id!r} differs from file name {path.stem!r}")
        out[f.id] = build_system(f)
    return out


@functools.cache
def _index() -> NameIndex:
    return NameIndex("system", {s.id: (s.name, *s.aliases) for s in builtin_systems().values()})


def get_system(name: str) -> System:
    """A built-in template by id or name, or a user's template by path (``*.toml``).

    Raises:
        UnknownNameError: no built-in template matches (the closest are listed).
        ConfigFileError: a path that cannot be read or validated.
    """
    if name.endswith(".toml") or "/" in name:
        return build_system(parse_system_file(Path(name)))
    return builtin_systems()[_index().resolve(name)]


def default_system(gpu: Gpu, n_gpus: int) -> System:
    """The system assumed when none is given: a template built for this GPU where one exists
    (DGX/HGX for SXM parts, the MI300X platform, a TPU v5p slice), else a node built from the
    GPU's own catalog fields with an assumed network (listed in ``assumptions``)."""
    for s in builtin_systems().values():
        if s.gpu_id == gpu.id and s.kind == "node" and (s.max_gpus is None
                                                         or s.max_gpus >= n_gpus):
            return s
    return synthesized_system(gpu)


def synthesized_system(gpu: Gpu) -> System:
    """A node made from the GPU's catalog fields (fabric, PCIe, P2P) with an assumed network:
    one 400 Gb/s InfiniBand NDR port per GPU for datacenter parts, one 100 GbE port per node
    otherwise. Link constants come from the efficiency data file's ``[link]`` table."""
    from rigwise.model.efficiency import overheads
    o = overheads()
    fabric = gpu.scaleup_fabric
    datacenter = gpu.segment in ("datacenter", "tpu")
    per_node = 8 if datacenter or gpu.segment == "workstation" else 4
    assumptions = [f"no system given: {per_node} x {gpu.name} per node built from the GPU's "
                   "catalog fields"]
    gen, lanes = gpu.pcie_gen or 4, gpu.pcie_lanes or 16
    host_bw = _pcie_bytes_per_s(gen, lanes)
    if fabric in ("nvlink", "infinity-fabric", "ici") and gpu.scaleup_bytes_per_s_per_direction:
        kind = {"nvlink": "nvswitch", "infinity-fabric": "infinity-fabric-mesh",
                "ici": "ici-torus"}[fabric]
        bw = gpu.scaleup_bytes_per_s_per_direction
        links = per_node - 1 if kind == "infinity-fabric-mesh" else None
        if links:
            bw /= links
        intra = Tier(f"{gpu.name} {fabric}", kind, bw, o.busbw_efficiency, o.latency_nvlink_s,
                     links=links, torus_dim=4 if kind == "ici-torus" else None)
    else:
        intra = Tier(f"PCIe {gen}.0 x{lanes}" + ("" if gpu.p2p else " without P2P"),
                     "pcie-host", host_bw, o.busbw_efficiency, o.latency_pcie_s, p2p=gpu.p2p,
                     no_p2p_factor=o.no_p2p_factor)
    if datacenter:
        nic = units.gbit_per_s_to_bytes_per_s(400.0)
        inter = Tier("InfiniBand NDR (assumed)", "infiniband", nic, 0.9, 10e-6)
        assumptions.append("assumed network: one 400 Gb/s InfiniBand port per GPU")
    else:
        nic = units.gbit_per_s_to_bytes_per_s(100.0) / per_node
        inter = Tier("100 GbE (assumed)", "ethernet", nic, 0.8, 20e-6)
        assumptions.append("assumed network: one 100 GbE port per node")
    return System(id=f"generic-{gpu.id}", name=f"{per_node}x {gpu.name} (generic)",
                  kind="node", gpu_id=gpu.id, aliases=(), gpus_per_node=per_node, intra=intra,
                  inter=inter, max_nodes=None, host_bytes_per_s=host_bw,
                  cpu_adam_params_per_s=CPU_ADAM_PARAMS_PER_S, assumptions=tuple(assumptions))


__all__ = ["MESH_FABRICS", "System", "SystemFile", "Tier", "build_system", "builtin_systems",
           "default_system", "get_system", "parse_system_file", "synthesized_system"]
