"""What this machine is: CPU, memory, NUMA nodes, GPUs (NVML and sysfs) and their topology.

Works without root and without a GPU: CPU and memory come from ``psutil``, ``/proc`` and
``/sys/devices/system/node``; PCIe links from ``/sys/bus/pci/devices/<BDF>/`` (world-readable
since Linux 4.13); GPUs from NVML (:mod:`rigwise.probe.nvml`). Quantities are SI (bytes, Hz,
W, °C). The PCIe link of an idle GPU trains down (P8 -> Gen1), so the *current* link is only
meaningful under load (NVIDIA/open-gpu-kernel-modules#731).
"""

from __future__ import annotations

import os
import platform
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rigwise import units
from rigwise.probe import nvml as nvml_mod
from rigwise.probe.nvml import Nvml, open_nvml
from rigwise.probe.stack import Stack, software_stack

#: PCIe signalling rate (GT/s) to generation (PCI-SIG base specifications 1.0-6.0).
_GT_TO_GEN = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}
#: NVML topology levels (``nvmlGpuTopologyLevel_t``) as ``nvidia-smi topo -m`` names them.
_TOPOLOGY = {0: "same board", 10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}
NVIDIA_PCI_VENDOR = "0x10de"


@dataclass(frozen=True, slots=True)
class NumaNode:
    """One NUMA node: its id, CPUs (a Linux cpulist such as ``0-15,32-47``) and memory."""

    id: int
    cpus: str
    memory_bytes: float | None


@dataclass(frozen=True, slots=True)
class CpuInfo:
    """Host CPU and memory. ``usable_cores`` counts the CPUs this process may run on."""

    model: str
    sockets: int | None
    physical_cores: int | None
    logical_cores: int
    usable_cores: int
    memory_bytes: float
    numa_nodes: tuple[NumaNode, ...]


@dataclass(frozen=True, slots=True)
class PcieLink:
    """A PCIe link as sysfs shows it: generation and width, current and maximum."""

    gen: int | None
    width: int | None
    max_gen: int | None
    max_width: int | None


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """One NVIDIA GPU as NVML reports it, matched to the catalog. None where unreadable.

    ``pcie_max_gen`` is the most this GPU *in this slot* can train to; ``pcie_gpu_max_gen``
    the most the GPU itself supports (greater means the slot limits it).
    ``throttle_reasons``: clock-event reasons set now (:data:`rigwise.probe.nvml.THROTTLE_REASONS`).
    """

    index: int
    name: str
    uuid: str | None
    pci_bus_id: str | None
    catalog_id: str | None
    memory_bytes: float | None
    compute_capability: str | None
    sm_clock_hz: float | None
    sm_clock_max_hz: float | None
    mem_clock_hz: float | None
    mem_clock_max_hz: float | None
    utilization: float | None
    power_w: float | None
    power_limit_w: float | None
    power_default_limit_w: float | None
    temperature_c: float | None
    slowdown_temperature_c: float | None
    ecc_enabled: bool | None
    ecc_uncorrected_volatile: int | None
    retired_pages_double_bit: int | None
    throttle_reasons: tuple[str, ...]
    pcie_gen: int | None
    pcie_width: int | None
    pcie_max_gen: int | None
    pcie_max_width: int | None
    pcie_gpu_max_gen: int | None
    sysfs_link: PcieLink | None
    numa_node: int | None
    nvlink_active_links: int | None
    mig_enabled: bool | None


@dataclass(frozen=True, slots=True)
class GpuPair:
    """Topology of two GPUs: the path between them and whether peer reads work."""

    a: int
    b: int
    path: str | None
    p2p_read: bool | None


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything :func:`take_inventory` found. ``nvml_status`` is ``"ok"`` or why not."""

    hostname: str
    os: str
    python: str
    cpu: CpuInfo
    nvml_status: str
    driver_version: str | None
    cuda_driver_version: str | None
    gpus: tuple[GpuInfo, ...]
    topology: tuple[GpuPair, ...]
    pci_nvidia_devices: tuple[str, ...]
    stack: Stack


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cpu_model(proc: Path) -> str:
    text = _read(proc / "cpuinfo") or ""
    for key in ("model name", "Hardware", "cpu model"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if m:
            return m.group(1).strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _sockets(proc: Path) -> int | None:
    ids = set(re.findall(r"^physical id\s*:\s*(\d+)$", _read(proc / "cpuinfo") or "",
                         re.MULTILINE))
    return len(ids) or None


def _numa_nodes(sys_root: Path) -> tuple[NumaNode, ...]:
    nodes = []
    for d in sorted((sys_root / "devices/system/node").glob("node[0-9]*"),
                    key=lambda p: int(p.name[4:])):
        mem = None
        m = re.search(r"MemTotal:\s*(\d+)\s*kB", _read(d / "meminfo") or "")
        if m:
            mem = float(m.group(1)) * units.KIB
        nodes.append(NumaNode(int(d.name[4:]), _read(d / "cpulist") or "", mem))
    return tuple(nodes)


def cpu_info(*, sys_root: Path = Path("/sys"), proc: Path = Path("/proc")) -> CpuInfo:
    """CPU model, sockets, cores (physical, logical, usable), RAM and NUMA nodes."""
    import psutil

    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    return CpuInfo(
        model=_cpu_model(proc),
        sockets=_sockets(proc),
        physical_cores=psutil.cpu_count(logical=False),
        logical_cores=logical,
        usable_cores=usable,
        memory_bytes=float(psutil.virtual_memory().total),
        numa_nodes=_numa_nodes(sys_root),
    )


def _gen(speed: str | None) -> int | None:
    m = re.match(r"([\d.]+)\s*GT/s", speed or "")
    return _GT_TO_GEN.get(float(m.group(1))) if m else None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def sysfs_bdf(pci_bus_id: str) -> str:
    """NVML's bus id (``00000000:17:00.0``) as sysfs names it (``0000:17:00.0``)."""
    domain, rest = pci_bus_id.lower().split(":", 1)
    return f"{int(domain, 16):04x}:{rest}"


def pcie_link(bdf: str, *, sys_root: Path = Path("/sys")) -> PcieLink | None:
    """The PCIe link of one device from sysfs, or None if sysfs does not show it."""
    d = sys_root / "bus/pci/devices" / bdf
    if not d.exists():
        return None
    return PcieLink(gen=_gen(_read(d / "current_link_speed")),
                    width=_int(_read(d / "current_link_width")),
                    max_gen=_gen(_read(d / "max_link_speed")),
                    max_width=_int(_read(d / "max_link_width")))


def pci_nvidia_devices(*, sys_root: Path = Path("/sys")) -> tuple[str, ...]:
    """PCI addresses of NVIDIA display/3D controllers, found without any NVIDIA driver."""
    found = []
    for d in sorted((sys_root / "bus/pci/devices").glob("*")):
        cls = _read(d / "class") or ""
        if _read(d / "vendor") == NVIDIA_PCI_VENDOR and cls[:6] in ("0x0300", "0x0302"):
            found.append(d.name)
    return tuple(found)


def _catalog_id(name: str) -> str | None:
    from rigwise.catalog.load import catalog
    from rigwise.errors import UnknownNameError

    try:
        return catalog().gpu(name).id
    except UnknownNameError:
        return None


def _mhz(value: Any) -> float | None:
    return None if value is None else float(value) * units.MEGA


def _watts(milliwatts: Any) -> float | None:
    return None if milliwatts is None else float(milliwatts) / units.KILO


def _nvlinks(nv: Nvml, h: Any) -> int | None:
    states = [nv.get("nvmlDeviceGetNvLinkState", h, i) for i in range(nvml_mod.NVLINK_MAX_LINKS)]
    known = [s for s in states if s is not None]
    return sum(1 for s in known if s) if known else None


def _ecc(nv: Nvml, h: Any) -> bool | None:
    mode = nv.get("nvmlDeviceGetEccMode", h)
    if mode is None:
        return None
    current = mode[0] if isinstance(mode, list | tuple) else mode
    return bool(current)


def gpu_info(nv: Nvml, h: Any, index: int, *, sys_root: Path = Path("/sys")) -> GpuInfo:
    """Read one GPU through NVML (and its PCIe link through sysfs)."""
    name = nv.text("nvmlDeviceGetName", h) or f"GPU {index}"
    pci = nv.get("nvmlDeviceGetPciInfo", h)
    bus_id = None
    if pci is not None:
        raw = getattr(pci, "busId", None) or getattr(pci, "busIdLegacy", None)
        bus_id = raw.decode() if isinstance(raw, bytes) else raw
    mem = nv.get("nvmlDeviceGetMemoryInfo", h)
    cc = nv.get("nvmlDeviceGetCudaComputeCapability", h)
    util = nv.get("nvmlDeviceGetUtilizationRates", h)
    mask = nv.get("nvmlDeviceGetCurrentClocksEventReasons", h)
    if mask is None:
        mask = nv.get("nvmlDeviceGetCurrentClocksThrottleReasons", h)
    retired = nv.get("nvmlDeviceGetRetiredPages", h, nvml_mod.RETIRED_DOUBLE_BIT)
    mig = nv.get("nvmlDeviceGetMigMode", h)
    temp_slow = nv.get("nvmlDeviceGetTemperatureThreshold", h,
                       nvml_mod.TEMPERATURE_THRESHOLD_SLOWDOWN)
    temp = nv.get("nvmlDeviceGetTemperature", h, nvml_mod.TEMPERATURE_GPU)
    return GpuInfo(
        index=index, name=name, uuid=nv.text("nvmlDeviceGetUUID", h), pci_bus_id=bus_id,
        catalog_id=_catalog_id(name),
        memory_bytes=float(mem.total) if mem is not None else None,
        compute_capability=f"{cc[0]}.{cc[1]}" if cc else None,
        sm_clock_hz=_mhz(nv.get("nvmlDeviceGetClockInfo", h, nvml_mod.CLOCK_SM)),
        sm_clock_max_hz=_mhz(nv.get("nvmlDeviceGetMaxClockInfo", h, nvml_mod.CLOCK_SM)),
        mem_clock_hz=_mhz(nv.get("nvmlDeviceGetClockInfo", h, nvml_mod.CLOCK_MEM)),
        mem_clock_max_hz=_mhz(nv.get("nvmlDeviceGetMaxClockInfo", h, nvml_mod.CLOCK_MEM)),
        utilization=float(util.gpu) / 100.0 if util is not None else None,
        power_w=_watts(nv.get("nvmlDeviceGetPowerUsage", h)),
        power_limit_w=_watts(nv.get("nvmlDeviceGetEnforcedPowerLimit", h)),
        power_default_limit_w=_watts(nv.get("nvmlDeviceGetPowerManagementDefaultLimit", h)),
        temperature_c=None if temp is None else float(temp),
        slowdown_temperature_c=None if temp_slow is None else float(temp_slow),
        ecc_enabled=_ecc(nv, h),
        ecc_uncorrected_volatile=nv.get("nvmlDeviceGetTotalEccErrors", h,
                                        nvml_mod.MEMORY_ERROR_UNCORRECTED,
                                        nvml_mod.VOLATILE_ECC),
        retired_pages_double_bit=None if retired is None else len(retired),
        throttle_reasons=nvml_mod.reason_names(mask),
        pcie_gen=nv.get("nvmlDeviceGetCurrPcieLinkGeneration", h),
        pcie_width=nv.get("nvmlDeviceGetCurrPcieLinkWidth", h),
        pcie_max_gen=nv.get("nvmlDeviceGetMaxPcieLinkGeneration", h),
        pcie_max_width=nv.get("nvmlDeviceGetMaxPcieLinkWidth", h),
        pcie_gpu_max_gen=nv.get("nvmlDeviceGetGpuMaxPcieLinkGeneration", h),
        sysfs_link=pcie_link(sysfs_bdf(bus_id), sys_root=sys_root) if bus_id else None,
        numa_node=nv.get("nvmlDeviceGetNumaNodeId", h),
        nvlink_active_links=_nvlinks(nv, h),
        mig_enabled=None if mig is None else bool(mig[0] if isinstance(mig, list | tuple)
                                                  else mig),
    )


def topology(nv: Nvml, handles: list[Any]) -> tuple[GpuPair, ...]:
    """Path (``nvidia-smi topo -m`` names) and P2P read status of every pair of GPUs."""
    pairs = []
    for i, a in enumerate(handles):
        for j in range(i + 1, len(handles)):
            b = handles[j]
            level = nv.get("nvmlDeviceGetTopologyCommonAncestor", a, b)
            status = nv.get("nvmlDeviceGetP2PStatus", a, b, nvml_mod.P2P_CAPS_INDEX_READ)
            pairs.append(GpuPair(i, j, None if level is None else _TOPOLOGY.get(level, str(level)),
                                 None if status is None else status == nvml_mod.P2P_STATUS_OK))
    return tuple(pairs)


def _cuda_version(code: int | None) -> str | None:
    return None if not code else f"{code // 1000}.{code % 1000 // 10}"


def take_inventory(*, sys_root: Path = Path("/sys"), proc: Path = Path("/proc"),
                   nv: Nvml | None = None) -> Inventory:
    """Inventory of this machine. Never raises for missing hardware, driver or permissions."""
    own = nv is None
    nv = open_nvml() if nv is None else nv
    status = nv.status
    try:
        handles = nv.handles() if nv.ok else []
        gpus = tuple(gpu_info(nv, h, i, sys_root=sys_root) for i, h in enumerate(handles))
        topo = topology(nv, handles)
        driver = nv.text("nvmlSystemGetDriverVersion")
        cuda = _cuda_version(nv.get("nvmlSystemGetCudaDriverVersion_v2")
                             or nv.get("nvmlSystemGetCudaDriverVersion"))
    finally:
        if own:
            nv.close()
    return Inventory(
        hostname=socket.gethostname(), os=platform.platform(), python=platform.python_version(),
        cpu=cpu_info(sys_root=sys_root, proc=proc), nvml_status=status,
        driver_version=driver, cuda_driver_version=cuda, gpus=gpus, topology=topo,
        pci_nvidia_devices=pci_nvidia_devices(sys_root=sys_root), stack=software_stack(),
    )
