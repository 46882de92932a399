"""Own or rent: break-even, cost per run, energy and emissions.

Break-even (Dettmers, *Which GPU(s) to Get for Deep Learning*, 2020, cloud vs desktop): owning
costs the purchase plus electricity for the hours used; renting costs the hourly rate. They are
equal after ``H`` hours of use::

    H = (purchase - resale) / (rate - power_kW x price_per_kWh)

and after ``H / (24 x utilization)`` days of calendar time. The post's example (a $2,200
RTX 3090 desktop, 350 W GPU + 100 W CPU, $0.12/kWh, AWS V100 at $2.14/h, 15 % utilization)
gives 293 days, "about 300 days" in the post. The default break-even leaves resale out, as the
post does; ``with_resale`` subtracts the resale value after the horizon.

Resale value: ``purchase x retention ** years``, where ``retention`` is the median per-year
ratio ``(used price / launch price) ** (1 / age)`` over the catalog's used-price observations
of cards at least two years old (Tom's Hardware and GPU Poet eBay averages).

Energy per run = system power x run time; emissions = energy x grid intensity (default: U.S.
2023 average, EIA).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from rigwise.catalog.load import catalog
from rigwise.catalog.models import Gpu
from rigwise.catalog.parts import parts
from rigwise.errors import InputError
from rigwise.units import SECONDS_PER_HOUR

HOURS_PER_MONTH = 8766.0 / 12.0
"""Mean hours in a month (365.25 days x 24 h / 12)."""
RATE_KINDS = ("cloud_on_demand", "cloud_spot", "cloud_reserved")


@dataclass(frozen=True, slots=True)
class Rate:
    """One dated rental rate of one GPU-hour."""

    provider: str
    kind: str
    usd_per_h: float
    date: str
    instance: str | None
    source: str


def rental_rates(gpu: Gpu) -> list[Rate]:
    """The newest observed rate per (provider, kind), cheapest first within each kind."""
    newest: dict[tuple[str, str], Rate] = {}
    for p in gpu.prices:
        if p.kind not in RATE_KINDS or p.usd_per_h is None:
            continue
        key = (p.provider or "cloud", p.kind)
        rate = Rate(key[0], p.kind, p.usd_per_h, p.date.isoformat(), p.instance,
                    gpu.sources[p.source].title if p.source in gpu.sources else p.source)
        if key not in newest or rate.date > newest[key].date:
            newest[key] = rate
    return sorted(newest.values(), key=lambda r: (RATE_KINDS.index(r.kind), r.usd_per_h))


def resale_retention_per_year() -> tuple[float, int]:
    """Median yearly value retention of used GPUs in the catalog, and the observations used."""
    ratios: list[float] = []
    for g in catalog().gpus.values():
        if not g.launch_price_usd:
            continue
        for p in g.prices:
            age = (p.date - g.release_date).days / 365.25
            if p.kind == "used" and p.usd and age >= 2.0:
                ratios.append((p.usd / g.launch_price_usd) ** (1.0 / age))
    if not ratios:
        raise InputError("no used-price observations in the catalog to estimate resale")
    return statistics.median(ratios), len(ratios)


def break_even_hours(purchase_usd: float, rate_usd_per_h: float, power_w: float,
                     usd_per_kwh: float, resale_usd: float = 0.0) -> float | None:
    """Hours of use after which owning is cheaper than renting (Dettmers 2020).

    None when renting costs less per hour than the electricity of owning.
    """
    saving = rate_usd_per_h - power_w / 1000.0 * usd_per_kwh
    if saving <= 0:
        return None
    return max(0.0, purchase_usd - resale_usd) / saving


@dataclass(frozen=True, slots=True)
class Usage:
    """How the machine is used: GPU-busy hours per month, optionally one run's length."""

    hours_per_month: float
    run_hours: float | None = None
    run_tokens: float | None = None
    run_epochs: float | None = None


@dataclass(frozen=True, slots=True)
class Own:
    """Owning over ``years``: purchase, energy, resale, and their sum (USD)."""

    purchase_usd: float
    purchase_note: str
    power_w: float
    usd_per_kwh: float
    energy_usd_per_h: float
    years: float
    resale_usd: float
    retention_per_year: float
    total_usd: float
    usd_per_h_of_use: float


@dataclass(frozen=True, slots=True)
class RentOption:
    """Renting ``gpus`` GPUs at one rate: horizon cost and break-even against owning."""

    rate: Rate
    usd_per_h: float
    total_usd: float
    break_even_hours: float | None
    break_even_months: float | None
    break_even_hours_with_resale: float | None


@dataclass(frozen=True, slots=True)
class RunCost:
    """One run (a training run or one month of use): time, energy, emissions, costs."""

    hours: float
    energy_kwh: float
    emissions_kg: float
    own_usd: float
    rent_usd: dict[str, float]
    tokens: float | None
    epochs: float | None


@dataclass(frozen=True, slots=True)
class CostComparison:
    """The answer of ``rigwise cost``."""

    gpu: Gpu
    gpus: int
    usage: Usage
    own: Own
    rent: tuple[RentOption, ...]
    run: RunCost | None
    grid_g_per_kwh: float


def compare(gpu: Gpu, gpus: int, usage: Usage, *, purchase_usd: float, purchase_note: str,
            power_w: float, usd_per_kwh: float, years: float, grid_g_per_kwh: float,
            resale_fraction: float | None = None,
            rates: list[Rate] | None = None) -> CostComparison:
    """Compare owning ``gpus`` x ``gpu`` with renting them for ``usage``.

    Raises:
        InputError: non-positive hours, years or prices.
    """
    for name, v in (("hours per month", usage.hours_per_month), ("years", years),
                    ("purchase price", purchase_usd), ("electricity price", usd_per_kwh),
                    ("power", power_w)):
        if v <= 0:
            raise InputError(f"{name} must be positive, got {v:g}")
    retention, _ = resale_retention_per_year()
    fraction = resale_fraction if resale_fraction is not None else retention ** years
    resale = purchase_usd * fraction
    energy_h = power_w / 1000.0 * usd_per_kwh
    hours = usage.hours_per_month * 12.0 * years
    total = purchase_usd - resale + energy_h * hours
    own = Own(purchase_usd, purchase_note, power_w, usd_per_kwh, energy_h, years, resale,
              retention, total, total / hours)
    rent = []
    for r in rates if rates is not None else rental_rates(gpu):
        rate = r.usd_per_h * gpus
        be = break_even_hours(purchase_usd, rate, power_w, usd_per_kwh)
        be_r = break_even_hours(purchase_usd, rate, power_w, usd_per_kwh, resale)
        rent.append(RentOption(r, rate, rate * hours, be,
                               be / usage.hours_per_month if be is not None else None, be_r))
    run = _run_cost(usage, own, rent, power_w, grid_g_per_kwh, hours)
    return CostComparison(gpu, gpus, usage, own, tuple(rent), run, grid_g_per_kwh)


def _run_cost(usage: Usage, own: Own, rent: list[RentOption], power_w: float, grid: float,
              horizon_h: float) -> RunCost:
    hours = usage.run_hours if usage.run_hours is not None else usage.hours_per_month
    kwh = power_w / 1000.0 * hours
    capital_h = (own.purchase_usd - own.resale_usd) / horizon_h
    own_usd = hours * (capital_h + own.energy_usd_per_h)
    by_kind: dict[str, float] = {}
    for o in rent:
        k = o.rate.kind
        by_kind[k] = min(by_kind.get(k, float("inf")), o.usd_per_h * hours)
    return RunCost(hours, kwh, kwh * grid / 1000.0, own_usd, by_kind, usage.run_tokens,
                   usage.run_epochs)


def defaults() -> dict[str, tuple[float, str]]:
    """The default electricity price, grid intensity, utilization and years, with sources."""
    r = parts().rules
    return {k: (r.value("cost", k), r.cite("cost", k))
            for k in ("electricity_usd_per_kwh", "grid_g_co2_per_kwh", "utilization", "years")}


def run_hours_from_seconds(seconds: float) -> float:
    """Seconds to hours."""
    return seconds / SECONDS_PER_HOUR
