"""Inventory with a fake NVML (healthy and faulty GPUs) and on a machine without NVIDIA."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rigwise.probe.inventory import (
    cpu_info,
    pci_nvidia_devices,
    pcie_link,
    sysfs_bdf,
    take_inventory,
)
from rigwise.probe.nvml import open_nvml, reason_names, sample
from tests.probe.fake_nvml import HEALTHY_H100, FakeGpu, faulty_gpu, install


def _sysfs(tmp: Path) -> Path:
    """A sysfs tree with one NVIDIA GPU at 0000:17:00.0 (Gen4 x16 slot, link at Gen1 x16)
    and two NUMA nodes."""
    dev = tmp / "sys/bus/pci/devices/0000:17:00.0"
    dev.mkdir(parents=True)
    for name, text in {"vendor": "0x10de", "class": "0x030200", "current_link_speed":
                       "2.5 GT/s PCIe", "current_link_width": "16",
                       "max_link_speed": "16.0 GT/s PCIe", "max_link_width": "16"}.items():
        (dev / name).write_text(text + "\n")
    other = tmp / "sys/bus/pci/devices/0000:00:1f.0"
    other.mkdir(parents=True)
    (other / "vendor").write_text("0x8086\n")
    (other / "class").write_text("0x060100\n")
    for node, cpus, kb in ((0, "0-15", 65_000_000), (1, "16-31", 66_000_000)):
        d = tmp / f"sys/devices/system/node/node{node}"
        d.mkdir(parents=True)
        (d / "cpulist").write_text(cpus + "\n")
        (d / "meminfo").write_text(f"Node {node} MemTotal:       {kb} kB\n")
    return tmp / "sys"


def test_no_nvidia_driver_still_reports_cpu_and_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [], init_error=12)
    inv = take_inventory()
    assert inv.nvml_status == "NVML library not found (no NVIDIA driver)"
    assert inv.gpus == () and inv.driver_version is None
    assert inv.cpu.logical_cores >= 1 and inv.cpu.memory_bytes > 2**28
    assert inv.cpu.model


def test_without_nvidia_ml_py_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    nv = open_nvml()
    assert not nv.ok and nv.status == "nvidia-ml-py not installed"
    assert nv.get("nvmlDeviceGetCount") is None


def test_healthy_gpu_matched_to_catalog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    install(monkeypatch, [HEALTHY_H100, FakeGpu(uuid="GPU-1", bus_id="00000000:18:00.0")])
    inv = take_inventory(sys_root=_sysfs(tmp_path))
    assert inv.nvml_status == "ok"
    assert inv.driver_version == "550.54.14" and inv.cuda_driver_version == "12.4"
    g = inv.gpus[0]
    assert g.catalog_id == "nvidia-h100-sxm5-80gb"
    assert g.compute_capability == "9.0"
    assert g.memory_bytes == 80 * 2**30
    assert g.sm_clock_max_hz == pytest.approx(1.98e9)
    assert g.power_limit_w == pytest.approx(700.0)
    assert g.throttle_reasons == ("gpu_idle",)
    assert (g.pcie_gen, g.pcie_width, g.pcie_max_gen) == (5, 16, 5)
    assert g.nvlink_active_links == 18 and g.ecc_enabled is True and g.mig_enabled is False
    assert g.sysfs_link is not None and g.sysfs_link.max_gen == 4 and g.sysfs_link.gen == 1
    assert [(p.a, p.b, p.path, p.p2p_read) for p in inv.topology] == [(0, 1, "NODE", True)]


def test_faulty_gpu_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [faulty_gpu()], p2p=False)
    g = take_inventory().gpus[0]
    assert g.catalog_id is None
    assert set(g.throttle_reasons) == {"sw_power_cap", "sw_thermal_slowdown"}
    assert g.ecc_uncorrected_volatile == 3 and g.retired_pages_double_bit == 2
    assert g.utilization == pytest.approx(0.97)


def test_unsupported_queries_become_none(monkeypatch: pytest.MonkeyPatch) -> None:
    module = install(monkeypatch, [FakeGpu()])

    def not_supported(*_: object) -> None:
        raise module.NVMLError(3)
    monkeypatch.setattr(module, "nvmlDeviceGetPowerManagementDefaultLimit", not_supported)
    monkeypatch.delattr(module, "nvmlDeviceGetGpuMaxPcieLinkGeneration")
    g = take_inventory().gpus[0]
    assert g.power_default_limit_w is None and g.pcie_gpu_max_gen is None
    assert g.power_limit_w == pytest.approx(700.0)


def test_sysfs_links_numa_and_pci_scan(tmp_path: Path) -> None:
    root = _sysfs(tmp_path)
    assert sysfs_bdf("00000000:17:00.0") == "0000:17:00.0"
    link = pcie_link("0000:17:00.0", sys_root=root)
    assert link is not None and (link.gen, link.width, link.max_gen, link.max_width) == (
        1, 16, 4, 16)
    assert pcie_link("0000:99:00.0", sys_root=root) is None
    assert pci_nvidia_devices(sys_root=root) == ("0000:17:00.0",)
    nodes = cpu_info(sys_root=root).numa_nodes
    assert [(n.id, n.cpus) for n in nodes] == [(0, "0-15"), (1, "16-31")]
    assert nodes[1].memory_bytes == 66_000_000 * 1024


def test_telemetry_sample_flags_throttling(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [faulty_gpu(), FakeGpu(reasons=0x0, utilization=99)])
    nv = open_nvml()
    bad, good = (sample(nv, h, i, 0.0) for i, h in enumerate(nv.handles()))
    assert bad.throttled and "sw_thermal_slowdown" in bad.reasons
    assert bad.power_w == pytest.approx(70.0) and bad.pcie_gen == 3
    assert not good.throttled
    assert reason_names(0x48) == ("hw_slowdown", "hw_thermal_slowdown")
