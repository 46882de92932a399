"""NVML through ``nvidia-ml-py`` (``import pynvml``), imported lazily and never fatal.

Every query goes through :meth:`Nvml.get`, which returns ``None`` when the call is missing
from the binding, not supported by the device or driver (``NVML_ERROR_NOT_SUPPORTED``,
``NVML_ERROR_FUNCTION_NOT_FOUND``) or fails in any other NVML way, so that one odd GPU never
breaks the inventory (the pattern of nvitop's ``libnvml`` wrapper).

Enum values below are those of ``nvml.h`` (NVML API reference, "Device Enums" and
"Clocks Event Reasons"); they are part of NVML's stable ABI.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from rigwise import units

CLOCK_SM = 1  # NVML_CLOCK_SM
CLOCK_MEM = 2  # NVML_CLOCK_MEM
TEMPERATURE_GPU = 0  # NVML_TEMPERATURE_GPU
TEMPERATURE_THRESHOLD_SLOWDOWN = 1  # NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
P2P_CAPS_INDEX_READ = 0  # NVML_P2P_CAPS_INDEX_READ
P2P_STATUS_OK = 0  # NVML_P2P_STATUS_OK
MEMORY_ERROR_UNCORRECTED = 1  # NVML_MEMORY_ERROR_TYPE_UNCORRECTED
VOLATILE_ECC = 0  # NVML_VOLATILE_ECC
RETIRED_DOUBLE_BIT = 1  # NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR
NVLINK_MAX_LINKS = 18  # links on Hopper; older GPUs answer NOT_SUPPORTED past their count

#: Clock event ("throttle") reason bits, nvml.h ``nvmlClocksEventReason*``.
THROTTLE_REASONS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
#: Reasons that mean the GPU runs slower than it could: power, thermal or hardware limits.
#: ``gpu_idle`` is not one (NVIDIA/NVSentinel#890 ignores it for the same reason).
LIMITING_REASONS = frozenset({"sw_power_cap", "hw_slowdown", "sw_thermal_slowdown",
                              "hw_thermal_slowdown", "hw_power_brake_slowdown"})
THERMAL_REASONS = frozenset({"sw_thermal_slowdown", "hw_thermal_slowdown"})
POWER_REASONS = frozenset({"sw_power_cap", "hw_power_brake_slowdown"})


def reason_names(mask: int | None) -> tuple[str, ...]:
    """Names of the clock-event reason bits set in ``mask`` (empty for None or 0)."""
    if not mask:
        return ()
    return tuple(name for bit, name in THROTTLE_REASONS.items() if mask & bit)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Nvml:
    """An initialised NVML session; use :func:`open_nvml` to get one.

    ``status`` is ``"ok"``, or why NVML is unusable: ``"nvidia-ml-py not installed"``,
    ``"NVML library not found (no NVIDIA driver)"``, ``"NVIDIA driver not loaded"``, ...
    """

    def __init__(self, module: ModuleType | None, status: str) -> None:
        self.module = module
        self.status = status

    @property
    def ok(self) -> bool:
        """True if NVML answered ``nvmlInit``."""
        return self.module is not None and self.status == "ok"

    def get(self, fn: str, *args: Any) -> Any:
        """``pynvml.<fn>(*args)``, or None if missing, unsupported or failing."""
        if not self.ok:
            return None
        func: Callable[..., Any] | None = getattr(self.module, fn, None)
        if func is None:
            return None
        try:
            return func(*args)
        except self.module.NVMLError:  # type: ignore[union-attr]
            return None

    def text(self, fn: str, *args: Any) -> str | None:
        """Like :meth:`get`, decoded to ``str``."""
        value = self.get(fn, *args)
        return None if value is None else _text(value)

    def handles(self) -> list[Any]:
        """Device handles in NVML index order (not necessarily CUDA's order)."""
        count = self.get("nvmlDeviceGetCount") or 0
        return [h for h in (self.get("nvmlDeviceGetHandleByIndex", i) for i in range(count))
                if h is not None]

    def close(self) -> None:
        """``nvmlShutdown``; safe to call twice."""
        if self.ok:
            self.get("nvmlShutdown")
            self.status = "closed"


_INIT_ERRORS = {
    9: "NVIDIA driver not loaded",
    12: "NVML library not found (no NVIDIA driver)",
    4: "no permission to use NVML",
    18: "NVML and driver versions differ (reboot after a driver update)",
}


def open_nvml() -> Nvml:
    """Import ``pynvml`` and call ``nvmlInit``; never raises.

    A machine without NVIDIA hardware or driver gets an :class:`Nvml` whose ``ok`` is False
    and whose ``status`` says why.
    """
    try:
        module = importlib.import_module("pynvml")
    except ImportError:
        return Nvml(None, "nvidia-ml-py not installed")
    try:
        module.nvmlInit()
    except module.NVMLError as exc:
        code = getattr(exc, "value", None)
        return Nvml(None, _INIT_ERRORS.get(code, f"NVML error: {exc}") if isinstance(
            code, int) else f"NVML error: {exc}")
    except OSError as exc:  # a broken libnvidia-ml.so
        return Nvml(None, f"NVML library could not load: {exc}")
    return Nvml(module, "ok")


@dataclass(frozen=True, slots=True)
class TelemetrySample:
    """One NVML reading of one GPU during a benchmark. SI units, None where unreadable.

    ``throttled`` is True when a limiting clock-event reason is set
    (:data:`LIMITING_REASONS`) or the SM clock is below 75% of its maximum while the GPU
    is not idle (nvbench's ``--throttle-threshold`` rule).
    """

    t_s: float
    gpu_index: int
    sm_clock_hz: float | None
    mem_clock_hz: float | None
    power_w: float | None
    temperature_c: float | None
    reasons: tuple[str, ...]
    pcie_gen: int | None
    pcie_width: int | None
    throttled: bool


THROTTLE_CLOCK_FRACTION = 0.75


def sample(nv: Nvml, handle: Any, index: int, t_s: float) -> TelemetrySample:
    """Read clocks, power, temperature, clock-event reasons and the PCIe link of one GPU."""
    sm = nv.get("nvmlDeviceGetClockInfo", handle, CLOCK_SM)
    sm_max = nv.get("nvmlDeviceGetMaxClockInfo", handle, CLOCK_SM)
    mem = nv.get("nvmlDeviceGetClockInfo", handle, CLOCK_MEM)
    power = nv.get("nvmlDeviceGetPowerUsage", handle)
    temp = nv.get("nvmlDeviceGetTemperature", handle, TEMPERATURE_GPU)
    mask = nv.get("nvmlDeviceGetCurrentClocksEventReasons", handle)
    if mask is None:
        mask = nv.get("nvmlDeviceGetCurrentClocksThrottleReasons", handle)
    reasons = reason_names(mask)
    slow_clock = (sm is not None and sm_max and "gpu_idle" not in reasons
                  and sm < THROTTLE_CLOCK_FRACTION * sm_max)
    throttled = bool(set(reasons) & LIMITING_REASONS) or bool(slow_clock)
    return TelemetrySample(
        t_s=t_s, gpu_index=index,
        sm_clock_hz=None if sm is None else sm * units.MEGA,
        mem_clock_hz=None if mem is None else mem * units.MEGA,
        power_w=None if power is None else power / units.KILO,
        temperature_c=None if temp is None else float(temp),
        reasons=reasons,
        pcie_gen=nv.get("nvmlDeviceGetCurrPcieLinkGeneration", handle),
        pcie_width=nv.get("nvmlDeviceGetCurrPcieLinkWidth", handle),
        throttled=throttled,
    )
