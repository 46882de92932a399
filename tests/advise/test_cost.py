"""Own vs rent: the break-even of Dettmers' worked example, per-run energy and emissions."""

from __future__ import annotations

import pytest

from rigwise.advise.cost import (
    Rate,
    Usage,
    break_even_hours,
    compare,
    rental_rates,
    resale_retention_per_year,
)
from rigwise.catalog.load import catalog

# Dettmers, "Which GPU(s) to Get for Deep Learning" (2020), cloud vs desktop: a $2,200 desktop
# with one RTX 3090, 350 W GPU + 100 W CPU, $0.12/kWh, against an AWS V100 at $2.14/h, at 15 %
# utilization: "591 kWh per year", "break-even ... about 300 days ($2,311 vs $2,270)".
PURCHASE, RATE, POWER_W, PRICE_KWH, UTIL = 2200.0, 2.14, 450.0, 0.12, 0.15


def test_dettmers_energy_per_year() -> None:
    kwh = POWER_W / 1000 * UTIL * 24 * 365
    assert kwh == pytest.approx(591, abs=1)


def test_dettmers_break_even_about_300_days() -> None:
    hours = break_even_hours(PURCHASE, RATE, POWER_W, PRICE_KWH)
    assert hours is not None
    days = hours / (UTIL * 24)
    assert days == pytest.approx(300, rel=0.03)  # 293 days; the post rounds to "about 300"
    # the post's cloud side at 300 days: $2.14/h x 0.15 x 24 h x 300 days = $2,311
    cloud_300_days = RATE * UTIL * 24 * 300
    assert cloud_300_days == pytest.approx(2311, abs=1)


def test_dettmers_spot_break_even() -> None:
    # spot at about $0.90/h: the formula gives 722 days (23.7 months); the post says
    # "20 months" without showing its arithmetic, so we hold the formula's value.
    hours = break_even_hours(PURCHASE, 0.9, POWER_W, PRICE_KWH)
    assert hours is not None
    assert hours / (UTIL * 24) == pytest.approx(722, abs=1)


def test_renting_cheaper_than_electricity_never_breaks_even() -> None:
    assert break_even_hours(2000.0, 0.05, 450.0, 0.16) is None


def test_resale_shortens_break_even() -> None:
    plain = break_even_hours(PURCHASE, RATE, POWER_W, PRICE_KWH)
    resold = break_even_hours(PURCHASE, RATE, POWER_W, PRICE_KWH, resale_usd=1000.0)
    assert plain is not None and resold is not None
    assert resold == pytest.approx(plain * 1200 / 2200)


def test_resale_retention_comes_from_catalog_observations() -> None:
    r, n = resale_retention_per_year()
    assert n >= 10
    assert 0.6 < r < 0.95


def test_compare_per_run_energy_and_emissions() -> None:
    gpu = catalog().gpu("RTX 3090")
    usage = Usage(hours_per_month=100.0, run_hours=10.0, run_tokens=1e9)
    rate = Rate("given", "cloud_on_demand", RATE, "2020-09-07", None, "test")
    c = compare(gpu, 1, usage, purchase_usd=PURCHASE, purchase_note="given", power_w=POWER_W,
                usd_per_kwh=PRICE_KWH, years=3.0, grid_g_per_kwh=366.0, resale_fraction=0.0,
                rates=[rate])
    assert c.run is not None
    assert c.run.energy_kwh == pytest.approx(4.5)
    assert c.run.emissions_kg == pytest.approx(4.5 * 0.366)
    assert c.run.rent_usd["cloud_on_demand"] == pytest.approx(21.4)
    # owning: capital over 3 years of 100 h/month plus electricity, per run hour
    per_h = PURCHASE / 3600 + 0.45 * PRICE_KWH
    assert c.run.own_usd == pytest.approx(10 * per_h)
    assert c.rent[0].break_even_months == pytest.approx(
        break_even_hours(PURCHASE, RATE, POWER_W, PRICE_KWH) / 100.0)  # type: ignore[operator]


def test_rental_rates_keep_the_newest_per_provider_and_kind() -> None:
    rates = rental_rates(catalog().gpu("H100 SXM5 80GB"))
    keys = [(r.provider, r.kind) for r in rates]
    assert len(keys) == len(set(keys))
    assert {"cloud_on_demand"} <= {r.kind for r in rates}
