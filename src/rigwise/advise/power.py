"""Power of a machine: PSU sizing, transient spikes, connectors and power limiting.

* PSU (Dettmers, *A Full Hardware Guide to Deep Learning*, 2018): add the TDP of the GPUs and
  the CPU, add 100 W for the other parts and spikes, add 10 %, round up to the next 100 W:
  ``4 x 250 W + 150 W + 100 W = 1250 W -> 1375 W -> 1400 W``.
* Transients (Intel ATX 3.0 design guide; PCIe CEM 5.0): a 16-pin card may draw 3x its
  sustained power for 100 us; an ATX 3.x PSU must carry 200 % of its rating for 100 us.
* Connectors: 16-pin 12VHPWR / 12V-2x6 carries 600 W; an 8-pin PCIe plug 150 W, the slot 75 W.
* Power limit: speed kept at a fraction of the board power, interpolated linearly between the
  sourced points of ``rules.toml`` (Puget Systems RTX 3090; QuasarZone RTX 4090).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from rigwise.catalog.models import Gpu
from rigwise.catalog.parts import Rules, parts


@dataclass(frozen=True, slots=True)
class PsuSizing:
    """The guide's PSU arithmetic, in W: ``required_w = (gpus_w + cpu_w + other_w) * headroom``,
    ``recommended_w`` rounds it up; ``spike_w`` is the 100 us transient of 16-pin cards."""

    gpus_w: float
    cpu_w: float
    other_w: float
    headroom: float
    required_w: float
    recommended_w: float
    spike_w: float

    @property
    def sustained_w(self) -> float:
        """GPUs, CPU and other parts at full load, W."""
        return self.gpus_w + self.cpu_w + self.other_w


def size_psu(gpu_tdps_w: Sequence[float], cpu_tdp_w: float, *, spiking_w: float = 0.0,
             rules: Rules | None = None) -> PsuSizing:
    """PSU size for GPUs of ``gpu_tdps_w`` and a CPU of ``cpu_tdp_w`` (W), per Dettmers (2018).

    ``spiking_w`` is the board power of the cards whose transients are bounded by PCIe CEM 5.0
    (16-pin cards); their spike is ``gpu_excursion_factor`` times it.
    """
    r = rules or parts().rules
    gpus = float(sum(gpu_tdps_w))
    other = r.value("psu", "other_parts_w")
    headroom = r.value("psu", "headroom")
    step = r.value("psu", "round_to_w")
    required = (gpus + cpu_tdp_w + other) * headroom
    recommended = math.ceil(round(required, 6) / step) * step
    factor = r.value("psu", "gpu_excursion_factor")
    spike = gpus - spiking_w + spiking_w * factor + cpu_tdp_w + other
    return PsuSizing(gpus, cpu_tdp_w, other, headroom, required, recommended, spike)


@dataclass(frozen=True, slots=True)
class Connectors:
    """Auxiliary power plugs one GPU needs; ``derived`` when not from a source."""

    kind: str
    count: int
    derived: bool
    source: str


def gpu_connectors(gpu: Gpu) -> Connectors:
    """The auxiliary power connectors of ``gpu``.

    From ``gpu_power.toml`` where sourced; otherwise derived from the PCIe CEM ratings:
    ``ceil((TDP - 75 W) / 150 W)`` 8-pin plugs (none for cards at or under 75 W).
    """
    p = parts()
    known = p.gpu_power.get(gpu.id)
    if known:
        return Connectors(known.connector, known.count, False,
                          p.gpu_power_sources[known.source].title)
    r = p.rules
    tdp = gpu.tdp_w or 0.0
    n = max(0, math.ceil((tdp - r.value("psu", "slot_w")) / r.value("psu", "connector_8pin_w")))
    return Connectors("8-pin", n, True,
                      "derived from the PCIe CEM ratings (slot 75 W, 8-pin 150 W)")


def speed_at_power(fraction: float, rules: Rules | None = None) -> float | None:
    """Fraction of throughput kept at ``fraction`` of the board power; None below the lowest
    sourced point (no figure to stand on). Linear between sourced points."""
    pts = (rules or parts().rules).power_limit
    if fraction >= 1.0:
        return 1.0
    if fraction < pts[0].power_fraction - 1e-9:
        return None
    for lo, hi in itertools.pairwise(pts):
        if lo.power_fraction <= fraction <= hi.power_fraction:
            t = (fraction - lo.power_fraction) / (hi.power_fraction - lo.power_fraction)
            return lo.speed_fraction + t * (hi.speed_fraction - lo.speed_fraction)
    return pts[-1].speed_fraction


def lowest_power_fraction(rules: Rules | None = None) -> float:
    """The lowest power-limit fraction with a sourced speed figure."""
    return (rules or parts().rules).power_limit[0].power_fraction


@dataclass(frozen=True, slots=True)
class PowerLimit:
    """A power limit per GPU that fits a PSU: W per GPU, fraction of TDP, speed kept."""

    per_gpu_w: float
    fraction: float
    speed_kept: float


def limit_to_fit(gpu_tdp_w: float, n: int, cpu_tdp_w: float, psu_w: float) -> PowerLimit | None:
    """The highest per-GPU power limit with which the guide's PSU rule fits ``psu_w``.

    None if even the lowest sourced limit does not fit.
    """
    r = parts().rules
    budget = psu_w / r.value("psu", "headroom") - cpu_tdp_w - r.value("psu", "other_parts_w")
    fraction = min(1.0, budget / (n * gpu_tdp_w))
    kept = speed_at_power(fraction)
    if kept is None:
        return None
    return PowerLimit(fraction * gpu_tdp_w, fraction, kept)
