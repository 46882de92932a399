"""A fake ``pynvml`` module: the NVML calls rigwise makes, answered from plain data.

``FakeGpu`` holds what NVML would report for one GPU (NVML units: MHz, mW, °C, bytes);
:func:`install` puts a module built from a list of them into ``sys.modules['pynvml']``.
Values not set raise ``NVMLError_NotSupported`` (code 3), as real NVML does.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-0000"
    bus_id: str = "00000000:17:00.0"
    memory_total: int = 80 * 2**30
    cc: tuple[int, int] = (9, 0)
    sm_clock: int = 1980
    sm_clock_max: int = 1980
    mem_clock: int = 2619
    mem_clock_max: int = 2619
    utilization: int = 0
    power_mw: int = 70_000
    power_limit_mw: int = 700_000
    power_default_mw: int = 700_000
    temperature: int = 35
    slowdown_temperature: int = 87
    ecc: int = 1
    ecc_uncorrected: int = 0
    retired_pages: int = 0
    reasons: int = 0x1  # GpuIdle
    pcie_gen: int = 5
    pcie_width: int = 16
    pcie_max_gen: int = 5
    pcie_max_width: int = 16
    pcie_gpu_max_gen: int = 5
    numa: int = 0
    nvlinks: int = 18
    mig: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _mem(total: int) -> Any:
    return types.SimpleNamespace(total=total, used=0, free=total)


def build(gpus: list[FakeGpu], *, driver: str = "550.54.14", cuda: int = 12040,
          init_error: int | None = None, p2p: bool = True) -> types.ModuleType:
    m = types.ModuleType("pynvml")
    m.NVMLError = NVMLError  # type: ignore[attr-defined]

    def init() -> None:
        if init_error is not None:
            raise NVMLError(init_error)

    def handle(i: int) -> FakeGpu:
        if not 0 <= i < len(gpus):
            raise NVMLError(2)
        return gpus[i]

    def clock(g: FakeGpu, kind: int) -> int:
        return {1: g.sm_clock, 2: g.mem_clock}[kind]

    def max_clock(g: FakeGpu, kind: int) -> int:
        return {1: g.sm_clock_max, 2: g.mem_clock_max}[kind]

    def nvlink(g: FakeGpu, link: int) -> int:
        if link >= g.nvlinks:
            raise NVMLError(3)
        return 1

    fns: dict[str, Any] = {
        "nvmlInit": init, "nvmlShutdown": lambda: None,
        "nvmlSystemGetDriverVersion": lambda: driver,
        "nvmlSystemGetCudaDriverVersion_v2": lambda: cuda,
        "nvmlDeviceGetCount": lambda: len(gpus),
        "nvmlDeviceGetHandleByIndex": handle,
        "nvmlDeviceGetName": lambda g: g.name,
        "nvmlDeviceGetUUID": lambda g: g.uuid,
        "nvmlDeviceGetPciInfo": lambda g: types.SimpleNamespace(busId=g.bus_id.encode()),
        "nvmlDeviceGetMemoryInfo": lambda g: _mem(g.memory_total),
        "nvmlDeviceGetCudaComputeCapability": lambda g: g.cc,
        "nvmlDeviceGetClockInfo": clock,
        "nvmlDeviceGetMaxClockInfo": max_clock,
        "nvmlDeviceGetUtilizationRates": lambda g: types.SimpleNamespace(gpu=g.utilization,
                                                                          memory=0),
        "nvmlDeviceGetPowerUsage": lambda g: g.power_mw,
        "nvmlDeviceGetEnforcedPowerLimit": lambda g: g.power_limit_mw,
        "nvmlDeviceGetPowerManagementDefaultLimit": lambda g: g.power_default_mw,
        "nvmlDeviceGetTemperature": lambda g, s: g.temperature,
        "nvmlDeviceGetTemperatureThreshold": lambda g, t: g.slowdown_temperature,
        "nvmlDeviceGetEccMode": lambda g: [g.ecc, g.ecc],
        "nvmlDeviceGetTotalEccErrors": lambda g, e, c: g.ecc_uncorrected,
        "nvmlDeviceGetRetiredPages": lambda g, cause: [0x1000] * g.retired_pages,
        "nvmlDeviceGetCurrentClocksEventReasons": lambda g: g.reasons,
        "nvmlDeviceGetCurrPcieLinkGeneration": lambda g: g.pcie_gen,
        "nvmlDeviceGetCurrPcieLinkWidth": lambda g: g.pcie_width,
        "nvmlDeviceGetMaxPcieLinkGeneration": lambda g: g.pcie_max_gen,
        "nvmlDeviceGetMaxPcieLinkWidth": lambda g: g.pcie_max_width,
        "nvmlDeviceGetGpuMaxPcieLinkGeneration": lambda g: g.pcie_gpu_max_gen,
        "nvmlDeviceGetNumaNodeId": lambda g: g.numa,
        "nvmlDeviceGetNvLinkState": nvlink,
        "nvmlDeviceGetMigMode": lambda g: [g.mig, g.mig],
        "nvmlDeviceGetTopologyCommonAncestor": lambda a, b: 40,
        "nvmlDeviceGetP2PStatus": lambda a, b, i: 0 if p2p else 5,
    }
    for name, fn in fns.items():
        setattr(m, name, fn)
    return m


def install(monkeypatch: pytest.MonkeyPatch, gpus: list[FakeGpu], **kw: Any) -> types.ModuleType:
    """Make ``import pynvml`` return a fake NVML with ``gpus``."""
    module = build(gpus, **kw)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    return module


HEALTHY_H100 = FakeGpu()


def faulty_gpu() -> FakeGpu:
    """A GPU with every fault doctor knows: unknown name, power cap, thermal throttling,
    a PCIe link trained down under load, ECC errors and retired pages."""
    return FakeGpu(name="NVIDIA Frobnicator 9000", uuid="GPU-bad", bus_id="00000000:65:00.0",
                   power_limit_mw=450_000, power_default_mw=700_000, temperature=91,
                   reasons=0x4 | 0x20, utilization=97, pcie_gen=3, pcie_width=8,
                   ecc_uncorrected=3, retired_pages=2, sm_clock=1100)
