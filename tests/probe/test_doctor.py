"""Verdicts: each rule fires on the fault it names, and stays quiet on a healthy machine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rigwise.probe.doctor import Finding, diagnose, worst
from rigwise.probe.inventory import Inventory, take_inventory
from rigwise.probe.stack import Framework, Stack, driver_need, software_stack
from tests.probe.fake_nvml import HEALTHY_H100, FakeGpu, faulty_gpu, install

GIB = 2**30


def _inv(monkeypatch: pytest.MonkeyPatch, gpus: list[FakeGpu], *, ram_gib: float = 512,
         threads: int = 64, torch_cuda: str | None = "12.4", driver: str = "550.54.14",
         **kw: object) -> Inventory:
    install(monkeypatch, gpus, driver=driver, **kw)  # type: ignore[arg-type]
    inv = take_inventory()
    cpu = dataclasses.replace(inv.cpu, memory_bytes=ram_gib * GIB, usable_cores=threads)
    stack = Stack((), (), (), (Framework("torch", "2.5.1", torch_cuda, "test"),))
    return dataclasses.replace(inv, cpu=cpu, stack=stack)


def _by(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.check, []).append(f)
    return out


def test_healthy_machine_has_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    inv = _inv(monkeypatch, [HEALTHY_H100, FakeGpu(uuid="GPU-1", bus_id="00000000:18:00.0")])
    findings = diagnose(inv)
    assert worst(findings) == "ok", [f for f in findings if f.level != "ok"]
    assert {"nvidia", "ram", "cpu", "driver", "p2p"} <= {f.check for f in findings}


def test_faulty_gpu_gets_each_verdict_with_a_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    inv = _inv(monkeypatch, [faulty_gpu(), FakeGpu(uuid="GPU-1", bus_id="00000000:18:00.0")],
               p2p=False)
    by = _by(diagnose(inv))
    assert by["catalog"][0].level == "warn" and "does not know" in by["catalog"][0].message
    assert by["power"][0].level == "warn" and "450 W" in by["power"][0].message
    assert "-pl 700" in (by["power"][0].fix or "")
    assert by["thermal"][0].level == "fail" and by["thermal"][0].fix
    assert by["pcie"][0].level == "warn" and "Gen3 x8" in by["pcie"][0].message
    assert by["ecc"][0].level == "fail"
    assert by["p2p"][0].level == "warn" and "0-1" in by["p2p"][0].message
    assert all(f.fix for f in by["pcie"] + by["ecc"] + by["p2p"] if f.level != "info")


def test_link_below_max_at_idle_is_not_a_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    idle = FakeGpu(pcie_gen=1, reasons=0x1, utilization=0)
    pcie = _by(diagnose(_inv(monkeypatch, [idle])))["pcie"]
    assert [f.level for f in pcie] == ["info"]


def test_slot_slower_than_gpu_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeGpu(pcie_max_gen=4, pcie_gen=4, pcie_gpu_max_gen=5)
    pcie = _by(diagnose(_inv(monkeypatch, [gpu])))["pcie"]
    assert any("supports PCIe Gen5" in f.message for f in pcie)


def test_ram_rule_largest_gpu_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _by(diagnose(_inv(monkeypatch, [HEALTHY_H100], ram_gib=64)))["ram"][0].level == "warn"
    assert _by(diagnose(_inv(monkeypatch, [HEALTHY_H100], ram_gib=80)))["ram"][0].level == "ok"


def test_cpu_threads_per_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [FakeGpu(uuid=f"GPU-{i}", bus_id=f"00000000:1{i}:00.0") for i in range(4)]
    assert _by(diagnose(_inv(monkeypatch, gpus, threads=6)))["cpu"][0].level == "warn"
    assert _by(diagnose(_inv(monkeypatch, gpus, threads=12)))["cpu"][0].level == "info"
    assert _by(diagnose(_inv(monkeypatch, gpus, threads=16)))["cpu"][0].level == "ok"


@pytest.mark.parametrize(("driver", "level"), [("520.61.05", "fail"), ("535.54.03", "warn"),
                                               ("550.54.14", "ok"), ("560.35.03", "ok")])
def test_driver_against_framework_cuda(monkeypatch: pytest.MonkeyPatch, driver: str,
                                       level: str) -> None:
    # torch built for CUDA 12.4: minor-version compatibility from 525.60.13, full from 550.54.14
    found = _by(diagnose(_inv(monkeypatch, [HEALTHY_H100], driver=driver)))["driver"]
    assert found[0].level == level
    if level != "ok":
        assert "550.54.14" in (found[0].fix or "")


def test_driver_table_from_nvidia_release_notes() -> None:
    need = driver_need("12.4")
    assert (need.minor_compat_min, need.ga_min) == ("525.60.13", "550.54.14")
    assert driver_need("12.7").ga_min == "560.28.03"  # no 12.7 release: the 12.6 driver
    assert driver_need("13.0").minor_compat_min == "580.65.06"
    assert "nvidia.com" in need.source


def test_cpu_build_of_torch_with_gpus_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    fw = _by(diagnose(_inv(monkeypatch, [HEALTHY_H100], torch_cuda=None)))["framework"]
    assert fw[0].level == "warn" and "CPU build" in fw[0].message


def test_no_nvidia_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [], init_error=12)
    findings = diagnose(take_inventory())
    assert [f.level for f in findings if f.check == "nvidia"] == ["info"]
    assert worst(findings) in ("ok", "info")


def test_gpu_on_pci_bus_without_driver_fails(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    install(monkeypatch, [], init_error=9)
    dev = tmp_path / "bus/pci/devices/0000:17:00.0"
    dev.mkdir(parents=True)
    (dev / "vendor").write_text("0x10de\n")
    (dev / "class").write_text("0x030000\n")
    inv = take_inventory(sys_root=tmp_path)
    f = _by(diagnose(inv))["driver"][0]
    assert f.level == "fail" and "0000:17:00.0" in f.message and "driver" in (f.fix or "")


def test_software_stack_reads_installed_torch_without_importing_it() -> None:
    stack = software_stack(cuda_roots=(), include_dirs=())
    torch = [f for f in stack.frameworks if f.name == "torch"]
    assert torch and torch[0].version.startswith("2.")


def test_system_cudnn_header(tmp_path: Path) -> None:
    (tmp_path / "cudnn_version.h").write_text(
        "#define CUDNN_MAJOR 9\n#define CUDNN_MINOR 1\n#define CUDNN_PATCHLEVEL 0\n")
    stack = software_stack(cuda_roots=(), include_dirs=(tmp_path,))
    assert [c.version for c in stack.cudnn if c.name == "cuDNN"] == ["9.1.0"]


@pytest.mark.parametrize(("name", "cc", "torch_version", "cuda", "level"), [
    # PyTorch 2.8's CUDA 12.8 wheels are built for CC 7.5 and up (pytorch/pytorch #157517)
    ("Tesla V100-SXM2-16GB", (7, 0), "2.9.0", "12.8", "fail"),
    ("Tesla V100-SXM2-16GB", (7, 0), "2.9.0", "12.6", None),   # its CUDA 12.6 wheel still has 7.0
    ("Tesla V100-SXM2-16GB", (7, 0), "2.5.1", "12.4", None),
    ("NVIDIA GeForce GTX 1080 Ti", (6, 1), "2.10.0", "13.0", "fail"),  # CUDA 13: CC 7.5+
    ("Tesla K80", (3, 7), "2.5.1", "12.4", "fail"),  # CUDA 12 removed Kepler
    ("Tesla T4", (7, 5), "2.10.0", "13.0", None),
])
def test_framework_without_kernels_for_the_gpu_fails(
        monkeypatch: pytest.MonkeyPatch, name: str, cc: tuple[int, int], torch_version: str,
        cuda: str, level: str | None) -> None:
    inv = _inv(monkeypatch, [FakeGpu(name=name, cc=cc)], torch_cuda=cuda)
    stack = Stack((), (), (), (Framework("torch", torch_version, cuda, "test"),))
    found = _by(diagnose(dataclasses.replace(inv, stack=stack))).get("kernels", [])
    if level is None:
        assert found == []
    else:
        assert found[0].level == level and "no kernel image" in found[0].message
        assert "cu126" in (found[0].fix or "") or "CUDA 11" in (found[0].fix or "")
