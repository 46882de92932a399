"""Check a user's parts list (TOML or YAML) against the hardware guide's rules.

A parts list names a GPU and its count and any of: ``cpu``, ``motherboard``, ``psu`` (or
``psu_w``), ``ram`` (or ``ram_gib``), ``case``, ``gpu_cooling`` (``air``/``water``) and
``data`` (``on-the-fly``/``preprocessed``)::

    gpu = "RTX 4090"
    gpus = 4
    cpu = "Ryzen 9 7950X"
    psu = "Corsair HX1500i (2023)"
    ram_gib = 32

Each finding says what is wrong or wasteful and what it costs in speed or money, with the
number from the rules of :mod:`rigwise.advise.build`. Impossible combinations are findings of
severity ``error``; unknown part names and malformed files raise (exit 2 in the CLI).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rigwise.advise.build import (
    DESKTOP_SOCKETS,
    cores_needed,
    cpu_platform,
    lanes_needed,
)
from rigwise.advise.power import PsuSizing, gpu_connectors, limit_to_fit, size_psu
from rigwise.catalog.load import catalog
from rigwise.catalog.models import Cpu, Gpu
from rigwise.catalog.parts import Case, Motherboard, Psu, RamKit, parts
from rigwise.errors import ConfigFileError
from rigwise.units import GIB, format_bytes, format_usd

Severity = Literal["error", "warning", "waste"]


class PartsList(BaseModel):
    """A parts list as written in the user's file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu: str
    gpus: int = Field(default=1, ge=1, le=16)
    cpu: str | None = None
    motherboard: str | None = None
    psu: str | None = None
    psu_w: float | None = Field(default=None, gt=0)
    ram: str | None = None
    ram_gib: float | None = Field(default=None, gt=0)
    case: str | None = None
    gpu_cooling: Literal["air", "water"] = "air"
    data: Literal["on-the-fly", "preprocessed"] = "on-the-fly"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: severity, a short code, the explanation and its cost."""

    severity: Severity
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class BuildCheck:
    """All findings of one parts list and the PSU arithmetic behind them."""

    spec: PartsList
    gpu: Gpu
    cpu: Cpu | None
    psu_sizing: PsuSizing | None
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """No errors (warnings and waste may remain)."""
        return not any(f.severity == "error" for f in self.findings)


def load_parts_list(path: Path) -> PartsList:
    """Read a parts list from a ``.toml``, ``.yaml`` or ``.yml`` file.

    Raises:
        ConfigFileError: missing file, unknown suffix, malformed TOML/YAML, bad fields.
    """
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"cannot read parts list {path}: {exc.strerror}") from None
    try:
        if suffix == ".toml":
            raw: object = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text)
        else:
            raise ConfigFileError(f"parts list {path} must end in .toml, .yaml or .yml")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"malformed TOML in {path}: {exc}") from None
    except Exception as exc:
        if isinstance(exc, ConfigFileError):
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigFileError(f"malformed YAML in {path}: {first}") from None
    if not isinstance(raw, dict):
        raise ConfigFileError(f"parts list {path} must be a table of fields, e.g. gpu = \"...\"")
    try:
        return PartsList.model_validate(raw)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(p) for p in e["loc"]) or "file"
        raise ConfigFileError(f"parts list {path}: {where}: {e['msg']}") from None


def check_parts(spec: PartsList) -> BuildCheck:
    """Check a parts list.

    Raises:
        UnknownNameError: a GPU, CPU or part name not in the catalogs (with closest names).
    """
    cat, p = catalog(), parts()
    gpu = cat.gpu(spec.gpu)
    cpu = cat.cpu(spec.cpu) if spec.cpu else None
    board = p.get("motherboard", spec.motherboard) if spec.motherboard else None
    psu = p.get("psu", spec.psu) if spec.psu else None
    ram = p.get("ram", spec.ram) if spec.ram else None
    case = p.get("case", spec.case) if spec.case else None
    assert board is None or isinstance(board, Motherboard)
    assert psu is None or isinstance(psu, Psu)
    assert ram is None or isinstance(ram, RamKit)
    assert case is None or isinstance(case, Case)
    n = spec.gpus
    out: list[Finding] = []
    out += _platform(gpu, n, cpu, board, spec)
    sizing = None
    psu_w = psu.wattage_w.value if psu else spec.psu_w
    if cpu is not None or psu_w is not None:
        sizing = size_psu([gpu.tdp_w or 0.0] * n, cpu.tdp_w if cpu else 0.0,
                          spiking_w=(gpu.tdp_w or 0.0) * n
                          if gpu_connectors(gpu).kind == "16-pin" else 0.0)
        if psu_w is not None:
            out += _power(gpu, n, cpu, psu, psu_w, sizing)
    out += _memory(gpu, ram, spec, board)
    out += _cooling(gpu, n, spec, case)
    return BuildCheck(spec, gpu, cpu, sizing, tuple(out))


def _platform(gpu: Gpu, n: int, cpu: Cpu | None, board: Motherboard | None,
              spec: PartsList) -> list[Finding]:
    out: list[Finding] = []
    r = parts().rules
    if board is not None:
        slots = board.gpu_slots.value
        cards = -(-n // gpu.devices_per_board)  # a K80 board holds two GPUs in one slot
        if cards > len(slots):
            what = f"{n} GPUs" if cards == n else f"{n} GPUs on {cards} boards"
            out.append(Finding("error", "slots", f"{board.name} has {len(slots)} slot(s) for "
                               f"GPUs; {what} do not fit"))
        narrow = [s for s in slots[:cards] if s.lanes < 8]
        if cards > 1 and narrow:
            first = len(slots[:cards]) - len(narrow) + 1
            out.append(Finding("warning", "slot-lanes", f"GPU {first} "
                               f"sits in a x{narrow[0].lanes} {narrow[0].via} slot; the guide "
                               "asks 8 lanes per GPU for multi-GPU training (x4 costs more "
                               "in gradient all-reduce; for 1-2 GPUs running separate jobs it "
                               "hardly matters)"))
    if cpu is None:
        return out
    plat = cpu_platform(cpu)
    if board is not None and plat.socket != board.socket.value:
        out.append(Finding("error", "socket", f"{cpu.name} (socket {plat.socket}) does not fit "
                           f"{board.name} (socket {board.socket.value})"))
    lanes = lanes_needed(n)
    if n > 1 and cpu.pcie_lanes < lanes:
        out.append(Finding("warning", "cpu-lanes", f"{cpu.name} has {cpu.pcie_lanes} PCIe lanes;"
                           f" {n} GPUs at x8 need {lanes} (Dettmers 2018): some GPUs run at x4 "
                           "or through the chipset"))
    if cpu.pcie_gen <= 2 and n > 1:
        slow = r.value("cpu", "pcie2_four_gpu_slowdown")
        out.append(Finding("warning", "pcie2", f"PCIe {cpu.pcie_gen}.0 with {n} GPUs: about "
                           f"{slow:.0%} slower with 4 GPUs "
                           f"({r.cite('cpu', 'pcie2_four_gpu_slowdown')})"))
    need = cores_needed(n, spec.data)
    if cpu.cores < need:
        out.append(Finding("warning", "cpu-cores", f"{cpu.cores} cores < {need} for a {spec.data}"
                           f" data pipeline on {n} GPU(s) (the guide: 1-2 cores per GPU); the "
                           "data loader may starve the GPUs"))
    out += _cpu_waste(cpu, n, need, lanes)
    return out


def _cpu_waste(cpu: Cpu, n: int, need: int, lanes: int) -> list[Finding]:
    own = cpu.purchase_price_usd()
    if cpu.cores < 4 * need or own is None:
        return []
    multi = n > 2
    priced = [(c, p[0]) for c in catalog().cpus.values()
              if (p := c.purchase_price_usd()) is not None]
    cheaper = [(c, usd) for c, usd in priced if c.cores >= need
               and c.pcie_lanes >= (lanes if n > 1 else 16) and c.vendor != "nvidia"
               and (not multi or cpu_platform(c).socket not in DESKTOP_SOCKETS)
               and usd < own[0]]
    if not cheaper:
        return []
    alt, usd = min(cheaper, key=lambda cu: cu[1])
    return [Finding("waste", "cpu-oversized", f"{cpu.name}: {cpu.cores} cores for {n} GPU(s) "
                    f"that need {need}; the guide's second most common mistake is a CPU too "
                    f"powerful. {alt.name} ({alt.cores} cores, {alt.pcie_lanes} lanes) meets "
                    f"the need for {format_usd(own[0] - usd)} less (dated street price where "
                    "known, else launch price)")]


def _power(gpu: Gpu, n: int, cpu: Cpu | None, psu: Psu | None, psu_w: float,
           s: PsuSizing) -> list[Finding]:
    out: list[Finding] = []
    r = parts().rules
    sustained = s.gpus_w + s.cpu_w
    if psu_w < sustained:
        out.append(Finding("error", "psu-overload", f"PSU {psu_w:.0f} W < {sustained:.0f} W that "
                           "the GPUs and CPU draw at full load: the machine will shut down "
                           "under training load"))
    elif psu_w < s.required_w:
        lim = limit_to_fit(gpu.tdp_w or 0.0, n, s.cpu_w, psu_w)
        fix = (f"power-limit the GPUs to {lim.per_gpu_w:.0f} W ({lim.fraction:.0%}), keeping "
               f"~{lim.speed_kept:.0%} of their speed, or " if lim else "")
        out.append(Finding("warning", "psu-small", f"PSU {psu_w:.0f} W < {s.required_w:,.0f} W = "
                           f"({s.gpus_w:.0f} + {s.cpu_w:.0f} + {s.other_w:.0f}) x {s.headroom:g} "
                           f"(Dettmers 2018): {fix}buy {s.recommended_w:,.0f} W"))
    conn = gpu_connectors(gpu)
    if conn.kind == "16-pin":
        per = r.value("psu", "connector_16pin_w")
        if (gpu.tdp_w or 0.0) > per * conn.count:
            out.append(Finding("error", "connector", f"{gpu.name} draws {gpu.tdp_w:.0f} W, more "
                               f"than {conn.count} x {per:.0f} W 16-pin connector(s) carry"))
        native = psu.connectors_16pin.value if psu and psu.connectors_16pin else None
        if psu is not None and (native is None or native < n):
            have = "an unknown number of" if native is None else str(native)
            plugs = -(-int(gpu.tdp_w or 0.0) // int(r.value("psu", "connector_8pin_w")))
            out.append(Finding("warning", "connector", f"{n} card(s) need a 16-pin plug each; "
                               f"{psu.name} has {have} native 16-pin cable(s): adapters take "
                               f"{plugs} x 8-pin per card; prefer native ATX 3.x cables and "
                               "seat the plug fully"))
        if psu is not None:
            cap = psu_w * r.value("psu", "atx3_excursion_factor") if psu.atx_version else psu_w
            if s.spike_w > cap:
                out.append(Finding("warning", "transients", f"100 us spikes up to "
                                   f"{s.spike_w:,.0f} W (3x the 16-pin cards' power, PCIe CEM "
                                   f"5.0) exceed what {psu.name} is rated to carry "
                                   f"({cap:,.0f} W"
                                   f"{'' if psu.atx_version else ', no ATX 3.x rating'})"))
    return out


def _memory(gpu: Gpu, ram: RamKit | None, spec: PartsList,
            board: Motherboard | None) -> list[Finding]:
    gib = ram.capacity_gib.value if ram else spec.ram_gib
    if gib is None:
        return []
    out: list[Finding] = []
    if gib * GIB < gpu.memory_bytes:
        out.append(Finding("warning", "ram-small", f"RAM {gib:.0f} GiB < the GPU's "
                           f"{format_bytes(gpu.memory_bytes)} (the guide: at least the largest "
                           "GPU's memory): loading checkpoints and datasets will swap"))
    cap = board.max_memory_gib.value if board and board.max_memory_gib else None
    if board is not None and cap is not None and gib > cap:
        out.append(Finding("error", "ram-board", f"{gib:.0f} GiB exceeds {board.name}'s maximum "
                           f"{cap:.0f} GiB"))
    return out


def _cooling(gpu: Gpu, n: int, spec: PartsList, case: Case | None) -> list[Finding]:
    r = parts().rules
    out: list[Finding] = []
    if gpu.cooling == "open-air" and n >= 3 and spec.gpu_cooling == "air":
        lo = r.value("cooling", "open_air_stacked_slowdown_low")
        hi = r.value("cooling", "open_air_stacked_slowdown_high")
        water = (r.value("cooling", "water_usd_per_gpu") * n
                 + r.value("cooling", "water_usd_upfront"))
        out.append(Finding("warning", "open-air-stacked", f"{n} open-air {gpu.name} cards side by "
                           f"side heat each other and throttle: {lo:.0%}-{hi:.0%} slower (the "
                           f"guide); use blower cards or water cooling "
                           f"(about {format_usd(water)})"))
    if gpu.cooling == "passive":
        out.append(Finding("error", "passive", f"{gpu.name} is passively cooled: it needs "
                           "server-chassis airflow, a desktop case cannot cool it"))
    if case is not None and n >= 3 and "Full Tower" not in case.type.value:
        out.append(Finding("warning", "case", f"{case.name} is an {case.type.value}: {n} "
                           "double-width cards need 2 expansion slots each; check it has them"))
    return out
