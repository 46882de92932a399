"""The catalog's entities as the rest of rigwise uses them: flat, SI units, frozen.

Built from the file models of :mod:`rigwise.catalog.schema` by :mod:`rigwise.catalog.load`;
``provenance`` maps each field name to the source it came from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from rigwise.catalog.schema import PriceObservation, Source

Precision = Literal["fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8", "int4", "fp4"]


@dataclass(frozen=True, slots=True)
class Gpu:
    """One accelerator device (a board, module, chip or SoC), quantities in SI units.

    One ``Gpu`` is one device as CUDA or ROCm enumerate it and as clouds bill it. Where a board
    carries several (``devices_per_board`` > 1: the Tesla K80's two GK210, the MI250X's two
    GCDs), every quantity and price here is one device's share of the board.

    ``peak_flop_per_s`` maps each supported precision to its dense peak in FLOP/s (OP/s for
    integer types); a precision missing from it is not supported by the device.
    """

    id: str
    name: str
    vendor: str
    segment: str
    architecture: str
    chip: str | None
    compute_capability: str | None
    aliases: tuple[str, ...]
    release_date: dt.date
    memory_bytes: float
    memory_type: str
    memory_bandwidth_bytes_per_s: float
    l2_cache_bytes: float | None
    compute_units: int | None
    boost_clock_hz: float | None
    peak_flop_per_s: dict[str, float]
    fp16_acc16_flop_per_s: float | None
    sparsity_factor: float
    tdp_w: float | None
    form_factor: str
    slots: int | None
    cooling: str | None
    pcie_gen: int | None
    pcie_lanes: int | None
    scaleup_fabric: str
    scaleup_bytes_per_s_per_direction: float | None
    p2p: bool
    launch_price_usd: float | None
    sources: dict[str, Source]
    provenance: dict[str, str]
    prices: tuple[PriceObservation, ...] = field(default=())
    devices_per_board: int = 1

    def supports(self, precision: str) -> bool:
        """True if the device has a published peak for ``precision``."""
        return precision in self.peak_flop_per_s

    def peak(self, precision: str) -> float:
        """Dense peak of ``precision`` in FLOP/s; KeyError if unsupported."""
        return self.peak_flop_per_s[precision]

    def latest_price(self, kind: str) -> PriceObservation | None:
        """The most recent price observation of one kind (``street_new``, ``used``, ...)."""
        seen = [p for p in self.prices if p.kind == kind]
        return max(seen, key=lambda p: p.date) if seen else None

    def purchase_price_usd(self, market: str) -> tuple[float, str] | None:
        """Price to buy one unit in ``market`` (``new`` or ``used``) and what it is.

        New: the latest street price, else the launch price. Used: the latest used price.
        Observed prices are per board; a board of several devices is shared among them.
        Returns ``(usd, description)``, or None when no price is known.
        """
        n = self.devices_per_board
        per = "" if n == 1 else f", 1/{n} of a {n}-device board"
        if market == "used":
            obs = self.latest_price("used")
            return (obs.usd / n, f"used, {obs.date:%Y-%m}{per}") if obs and obs.usd else None
        obs = self.latest_price("street_new")
        if obs and obs.usd:
            return obs.usd / n, f"street, {obs.date:%Y-%m}{per}"
        if self.launch_price_usd:
            return self.launch_price_usd, f"launch, {self.release_date:%Y}{per}"
        return None

    def cloud_price_usd_per_h(self) -> tuple[float, str] | None:
        """The cheapest recent on-demand price of one GPU-hour and its provider.

        Recent means observed within a year of the newest on-demand observation.
        """
        seen = [p for p in self.prices if p.kind == "cloud_on_demand" and p.usd_per_h]
        if not seen:
            return None
        newest = max(p.date for p in seen)
        recent = [p for p in seen if (newest - p.date).days <= 366]
        best = min(recent, key=lambda p: p.usd_per_h or float("inf"))
        assert best.usd_per_h is not None
        return best.usd_per_h, f"{best.provider or 'cloud'}, {best.date:%Y-%m}"


@dataclass(frozen=True, slots=True)
class Cpu:
    """One CPU, quantities in SI units."""

    id: str
    name: str
    vendor: str
    segment: str
    aliases: tuple[str, ...]
    release_date: dt.date
    cores: int
    threads: int
    pcie_gen: int
    pcie_lanes: int
    memory_channels: int | None
    tdp_w: float
    launch_price_usd: float | None
    sources: dict[str, Source]
    provenance: dict[str, str]
    street_price_usd: float | None = None
    street_price_date: dt.date | None = None

    def purchase_price_usd(self) -> tuple[float, str] | None:
        """The price to plan with: the dated street price, else the launch price.

        Returns ``(usd, description)``, or None when no price is known.
        """
        if self.street_price_usd and self.street_price_date:
            return self.street_price_usd, f"street, {self.street_price_date:%Y-%m}"
        if self.launch_price_usd:
            return self.launch_price_usd, f"launch, {self.release_date:%Y}"
        return None
