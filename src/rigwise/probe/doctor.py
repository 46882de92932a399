"""Verdicts on a machine's inventory, each with the fix.

Rules and their sources:

* system RAM at least the memory of the largest GPU (Dettmers, "A Full Hardware Guide to
  Deep Learning", 2018, RAM section; more GPUs need no more RAM);
* CPU threads per GPU: 2 if data is preprocessed once, 4 (about 2 cores) if preprocessed
  while training (same guide, CPU section);
* a framework built for CUDA X.Y needs a driver at least NVIDIA's minimum for minor version
  compatibility in major X, and the toolkit's own driver for every feature (CUDA Toolkit
  Release Notes, Table 3; CUDA Compatibility guide) — see ``catalog/data/bench/cuda_drivers.toml``;
* a PCIe link below its maximum is a fault only *under load*: idle GPUs train their links
  down to save power (NVIDIA/open-gpu-kernel-modules#731, bench-tools.md §1.2);
* an enforced power limit below the default caps clocks under load; a 70-80% cap keeps about
  90-95% of throughput (Puget Systems, 4x RTX 3090 at 280 W of 350 W);
* thermal or hardware slowdown reasons in NVML's clock-event mask mean lost speed now;
* GPUs without peer-to-peer access copy through host memory (Dettmers 2023: RTX 40 has no P2P).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rigwise import units
from rigwise.compat import CUDA12_MIN_CC, min_compute_capability
from rigwise.probe.inventory import GpuInfo, Inventory
from rigwise.probe.nvml import POWER_REASONS, THERMAL_REASONS
from rigwise.probe.stack import driver_need, version_tuple

Level = Literal["ok", "info", "warn", "fail"]
LEVELS: tuple[Level, ...] = ("ok", "info", "warn", "fail")
RAM_TOLERANCE = 0.95  # the OS sees a little less than is installed
POWER_CAP_TOLERANCE = 0.95
BUSY_UTILIZATION = 0.10
THREADS_PER_GPU_MIN = 2
THREADS_PER_GPU_PREPROCESS = 4


@dataclass(frozen=True, slots=True)
class Finding:
    """One verdict: its level, the check that made it, what is wrong and how to fix it."""

    level: Level
    check: str
    message: str
    fix: str | None = None
    gpu: int | None = None


def worst(findings: list[Finding]) -> Level:
    """The most severe level among ``findings`` (``"ok"`` for none)."""
    return max((f.level for f in findings), key=LEVELS.index, default="ok")


def _gib(n_bytes: float) -> str:
    return f"{units.bytes_to_gib(n_bytes):.0f} GiB"


def check_nvidia(inv: Inventory) -> list[Finding]:
    """Is there an NVIDIA GPU with a working driver?"""
    if inv.nvml_status != "ok":
        if inv.pci_nvidia_devices:
            return [Finding("fail", "driver",
                            f"NVIDIA GPU(s) on the PCI bus ({', '.join(inv.pci_nvidia_devices)}) "
                            f"but NVML is unusable: {inv.nvml_status}",
                            "install the NVIDIA driver, reboot, and check that `nvidia-smi` "
                            "lists the GPUs")]
        return [Finding("info", "nvidia",
                        f"no NVIDIA GPU or driver on this machine ({inv.nvml_status}); "
                        "CPU, memory and software are reported, benchmarks run on the CPU")]
    if not inv.gpus:
        return [Finding("warn", "nvidia", "the NVIDIA driver is loaded but shows no GPU",
                        "check CUDA_VISIBLE_DEVICES, MIG and container device mounts")]
    return [Finding("ok", "nvidia", f"{len(inv.gpus)} NVIDIA GPU(s), driver "
                    f"{inv.driver_version}, CUDA {inv.cuda_driver_version} supported")]


def check_catalog(gpus: tuple[GpuInfo, ...]) -> list[Finding]:
    """Does the catalog know each GPU (needed to compare measurements with specs)?"""
    return [Finding("warn", "catalog", f"GPU the catalog does not know: {g.name!r}",
                    "measurements are still stored; compare them with a close catalog entry "
                    "(`rigwise gpus list`) or add a data file for this GPU", gpu=g.index)
            for g in gpus if g.catalog_id is None]


def check_ram(inv: Inventory) -> list[Finding]:
    """System RAM at least the largest GPU's memory (Dettmers 2018)."""
    largest = max((g.memory_bytes or 0.0 for g in inv.gpus), default=0.0)
    ram = inv.cpu.memory_bytes
    if largest == 0.0:
        return []
    if ram < RAM_TOLERANCE * largest:
        return [Finding("warn", "ram", f"system RAM {_gib(ram)} is less than the largest GPU's "
                        f"memory {_gib(largest)}: loading checkpoints and pinned buffers will "
                        "swap", f"install at least {_gib(largest)} of RAM (rule: RAM >= "
                        "largest GPU memory; more GPUs need no more)")]
    return [Finding("ok", "ram", f"RAM {_gib(ram)} >= largest GPU memory {_gib(largest)}")]


def check_cores(inv: Inventory) -> list[Finding]:
    """CPU threads per GPU: 2 minimum, 4 when preprocessing while training (Dettmers 2018)."""
    n = len(inv.gpus)
    if n == 0:
        return []
    threads = inv.cpu.usable_cores
    if threads < THREADS_PER_GPU_MIN * n:
        return [Finding("warn", "cpu", f"{threads} CPU threads for {n} GPU(s): fewer than "
                        f"{THREADS_PER_GPU_MIN} per GPU; the data loader will starve the GPUs",
                        f"use a CPU with at least {THREADS_PER_GPU_MIN * n} threads, or "
                        "preprocess the data set once before training")]
    if threads < THREADS_PER_GPU_PREPROCESS * n:
        return [Finding("info", "cpu", f"{threads} CPU threads for {n} GPU(s): enough if data "
                        f"is preprocessed once; preprocessing while training wants "
                        f"{THREADS_PER_GPU_PREPROCESS} per GPU")]
    return [Finding("ok", "cpu", f"{threads} CPU threads for {n} GPU(s)")]


def check_driver(inv: Inventory) -> list[Finding]:
    """Is the driver new enough for the CUDA each framework was built for?"""
    out: list[Finding] = []
    for fw in inv.stack.frameworks:
        if fw.cuda is None:
            if inv.gpus and fw.name == "torch":
                out.append(Finding("warn", "framework", f"{fw.name} {fw.version} is a CPU "
                                   "build: it cannot use the GPUs",
                                   "install a CUDA build of PyTorch (pytorch.org/get-started)"))
            continue
        if inv.driver_version is None:
            continue
        need = driver_need(fw.cuda)
        have = version_tuple(inv.driver_version)
        what = f"driver {inv.driver_version} for {fw.name} {fw.version} (CUDA {fw.cuda})"
        target = need.ga_min or need.minor_compat_min
        fix = (f"install NVIDIA driver >= {target} (NVIDIA's CUDA/driver table: "
               f"{need.source}), or a {fw.name} build for an older CUDA")
        if need.minor_compat_min and have < version_tuple(need.minor_compat_min):
            out.append(Finding("fail", "driver", f"{what} is too old: CUDA {fw.cuda} needs "
                               f">= {need.minor_compat_min}", fix))
        elif need.ga_min and have < version_tuple(need.ga_min):
            out.append(Finding("warn", "driver", f"{what} runs under minor version "
                               f"compatibility only (toolkit driver >= {need.ga_min}): "
                               "PTX JIT of newer kernels fails", fix))
        else:
            out.append(Finding("ok", "driver", f"{what} is new enough"))
    return out


def check_kernels(inv: Inventory) -> list[Finding]:
    """Does each CUDA framework carry kernels for each GPU's compute capability?
    (:func:`rigwise.compat.min_compute_capability`: CUDA 12 dropped Kepler, CUDA 13 and
    PyTorch 2.8's CUDA 12.8 wheels Maxwell, Pascal and Volta.)"""
    out: list[Finding] = []
    for fw in inv.stack.frameworks:
        if fw.cuda is None:
            continue
        need = min_compute_capability(fw.cuda, fw.version if fw.name == "torch" else None)
        for g in inv.gpus:
            if g.compute_capability is None or float(g.compute_capability) >= need:
                continue
            if float(g.compute_capability) < CUDA12_MIN_CC:
                fix = (f"install a {fw.name} build for CUDA 11, the last CUDA with kernels "
                       f"for CC {g.compute_capability}")
            elif fw.name == "torch":
                fix = ("install PyTorch's CUDA 12.6 wheel (pip install torch --index-url "
                       "https://download.pytorch.org/whl/cu126)")
            else:
                fix = f"install a {fw.name} build for CUDA 12.6 or older"
            out.append(Finding(
                "fail", "kernels", f"{fw.name} {fw.version} (CUDA {fw.cuda}) has no kernels "
                f"for GPU {g.index} ({g.name}, CC {g.compute_capability}; it needs CC "
                f"{need:g}+): CUDA calls fail with 'no kernel image is available'", fix,
                gpu=g.index))
    return out


def _below_max(g: GpuInfo) -> tuple[bool, str]:
    gen, width = g.pcie_gen, g.pcie_width
    if g.sysfs_link is not None:
        gen = gen if gen is not None else g.sysfs_link.gen
        width = width if width is not None else g.sysfs_link.width
    max_gen = g.pcie_max_gen or (g.sysfs_link.max_gen if g.sysfs_link else None)
    max_width = g.pcie_max_width or (g.sysfs_link.max_width if g.sysfs_link else None)
    low = bool((gen and max_gen and gen < max_gen) or (width and max_width and width < max_width))
    return low, f"Gen{gen} x{width} (max Gen{max_gen} x{max_width})"


def check_pcie(g: GpuInfo) -> list[Finding]:
    """Link trained below its maximum under load; slot slower than the GPU."""
    out = []
    low, link = _below_max(g)
    busy = "gpu_idle" not in g.throttle_reasons and (g.utilization or 0.0) >= BUSY_UTILIZATION
    if low and busy:
        out.append(Finding("warn", "pcie", f"GPU {g.index} PCIe link {link} under load is "
                           "below its maximum", "reseat the card, avoid risers, check the "
                           "slot's lanes and the BIOS PCIe generation setting", gpu=g.index))
    elif low:
        out.append(Finding("info", "pcie", f"GPU {g.index} PCIe link {link} at idle: normal "
                           "power saving; `rigwise bench memory` reads it under load",
                           gpu=g.index))
    if g.pcie_gpu_max_gen and g.pcie_max_gen and g.pcie_gpu_max_gen > g.pcie_max_gen:
        out.append(Finding("info", "pcie", f"GPU {g.index} supports PCIe Gen{g.pcie_gpu_max_gen}"
                           f" but the slot or platform allows Gen{g.pcie_max_gen}", gpu=g.index))
    return out


def check_power_thermal(g: GpuInfo) -> list[Finding]:
    """Power cap below default, thermal and hardware slowdown, memory errors."""
    out = []
    lim, default = g.power_limit_w, g.power_default_limit_w
    if lim and default and lim < POWER_CAP_TOLERANCE * default:
        out.append(Finding("warn", "power", f"GPU {g.index} power limit {lim:.0f} W is below "
                           f"its default {default:.0f} W: clocks drop under load (a 70-80% cap "
                           "keeps about 90-95% of throughput)",
                           f"if unintended: sudo nvidia-smi -i {g.index} -pl {default:.0f}",
                           gpu=g.index))
    reasons = set(g.throttle_reasons)
    if reasons & THERMAL_REASONS:
        out.append(Finding("fail", "thermal", f"GPU {g.index} is thermally throttled now "
                           f"({g.temperature_c} °C)", "improve cooling: airflow, space between "
                           "cards, blower-style coolers for stacked GPUs, clean fans",
                           gpu=g.index))
    if "hw_slowdown" in reasons or "hw_power_brake_slowdown" in reasons:
        out.append(Finding("fail", "hw-slowdown", f"GPU {g.index} hardware slowdown "
                           f"({', '.join(sorted(reasons))})", "check power cables and the PSU "
                           "rating; a hardware slowdown also follows overheating", gpu=g.index))
    elif reasons & POWER_REASONS and lim and default and lim < POWER_CAP_TOLERANCE * default:
        out.append(Finding("info", "power", f"GPU {g.index} is at its capped power limit now",
                           gpu=g.index))
    if (g.ecc_uncorrected_volatile or 0) > 0 or (g.retired_pages_double_bit or 0) > 0:
        out.append(Finding("fail", "ecc", f"GPU {g.index} memory errors: "
                           f"{g.ecc_uncorrected_volatile or 0} uncorrected ECC, "
                           f"{g.retired_pages_double_bit or 0} retired pages",
                           "reset the GPU (pending retirements apply at reset); if errors come "
                           "back, RMA the board", gpu=g.index))
    return out


def check_p2p(inv: Inventory) -> list[Finding]:
    """GPU pairs without peer-to-peer access."""
    missing = [(p.a, p.b) for p in inv.topology if p.p2p_read is False]
    if not missing:
        return [Finding("ok", "p2p", "all GPU pairs have P2P")] if inv.topology else []
    pairs = ", ".join(f"{a}-{b}" for a, b in missing)
    return [Finding("warn", "p2p", f"no P2P between GPUs {pairs}: copies and all-reduce go "
                    "through host memory at about half the bandwidth",
                    "expected on GeForce cards; on datacenter cards check that ACS/IOMMU is "
                    "off for the GPUs' PCIe switches and that they share a root complex")]


def diagnose(inv: Inventory) -> list[Finding]:
    """All verdicts on ``inv``, in the order the checks run."""
    out = check_nvidia(inv) + check_catalog(inv.gpus) + check_ram(inv) + check_cores(inv)
    out += check_driver(inv) + check_kernels(inv)
    for g in inv.gpus:
        out += check_pcie(g) + check_power_thermal(g)
        if g.mig_enabled:
            out.append(Finding("info", "mig", f"GPU {g.index} is in MIG mode: benchmarks see "
                               "one slice, not the whole GPU", gpu=g.index))
    out += check_p2p(inv)
    return out
