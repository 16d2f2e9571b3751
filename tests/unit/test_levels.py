from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from streams.circles import level_message
from streams.levels import (
    CircleInputs,
    DemandRule,
    DemandSource,
    Lag,
    Status,
    Thresholds,
    classify,
    compute_level,
    coverage,
    observed_rate,
    recent_rates,
    stock_coverage,
)

T = Thresholds(watch_days=7, shortage_days=3, critical_days=1, min_coverage=0.5)
NOW = datetime(2026, 11, 25, tzinfo=UTC)


def inputs(stock: float, fresh: int = 10, expected: int = 10, population: int = 1000) -> CircleInputs:
    return CircleInputs("C1", "rice", population, 0.25, T, stock, expected, fresh)


def test_days_of_supply_is_stock_over_population_demand() -> None:
    level = compute_level(inputs(2000), NOW)
    assert level.daily_demand == pytest.approx(250)
    assert level.days_of_supply == pytest.approx(8)
    assert level.status is Status.OK
    assert level.demand_source is DemandSource.POPULATION
    assert level.demand_observed is None


def test_emergency_multiplier_raises_demand() -> None:
    level = compute_level(inputs(2000), NOW, demand_multiplier=2.0)
    assert level.days_of_supply == pytest.approx(4)
    assert level.status is Status.WATCH
    assert compute_level(inputs(2000), NOW, rule=DemandRule(multiplier=2.0)).days_of_supply == pytest.approx(4)


@pytest.mark.parametrize(
    ("days", "status"),
    [(10, Status.OK), (7, Status.OK), (6.9, Status.WATCH), (2.9, Status.SHORTAGE), (0.5, Status.CRITICAL)],
)
def test_thresholds(days: float, status: Status) -> None:
    assert classify(days, 1.0, T) is status


def test_low_coverage_is_stale_never_ok() -> None:
    level = compute_level(inputs(10_000, fresh=4, expected=10), NOW)
    assert level.coverage == pytest.approx(0.4)
    assert level.status is Status.STALE


def test_no_expected_outlets_is_unknown() -> None:
    assert coverage(3, 0) == 0.0
    assert compute_level(inputs(100, fresh=0, expected=0), NOW).status is Status.STALE


def test_zero_population_has_no_days_and_is_stale() -> None:
    level = compute_level(inputs(100, population=0), NOW)
    assert level.days_of_supply is None
    assert level.status is Status.STALE


# ---------------------------------------------------------------- confirmed stock, two coverages


def test_unconfirmed_stock_is_kept_with_its_age_and_never_counted() -> None:
    # 2,000 kg fresh (8 days), 6,000 kg last seen 30 h ago: days stay 8, stock share is 2,000 / 8,000.
    level = compute_level(
        replace(inputs(2000), stock_unconfirmed=6000, oldest_unconfirmed=NOW - timedelta(hours=30)), NOW
    )
    assert level.stock == 2000 and level.stock_unconfirmed == 6000
    assert level.days_of_supply == pytest.approx(8)
    assert level.unconfirmed_age_s == pytest.approx(30 * 3600)
    assert level.coverage == 1.0
    assert level.coverage_stock == pytest.approx(0.25)
    assert level.status is Status.STALE  # the big holders went silent: unknown, not OK


def test_silent_supermarket_behind_reporting_kiosks_is_stale_never_a_false_shortage() -> None:
    # 9 of 10 expected outlets (kiosks, 20 kg each) are fresh: outlet coverage 0.9 passes. The supermarket's
    # 5,000 kg is a day old. Confirmed stock 180 kg would read CRITICAL (0.72 days); it is STALE instead.
    level = compute_level(
        replace(inputs(180, fresh=9), stock_unconfirmed=5000, oldest_unconfirmed=NOW - timedelta(days=1)), NOW
    )
    assert level.coverage == pytest.approx(0.9)
    assert level.coverage_stock == pytest.approx(180 / 5180)
    assert level.days_of_supply == pytest.approx(0.72)
    assert level.status is Status.STALE


def test_stock_coverage_at_the_minimum_is_enough() -> None:
    level = compute_level(replace(inputs(2000), stock_unconfirmed=2000, oldest_unconfirmed=NOW), NOW)
    assert level.coverage_stock == pytest.approx(0.5)
    assert level.status is Status.OK


def test_stock_coverage_edge_cases() -> None:
    assert stock_coverage(0, 0, reports_fresh=3) == 1.0  # fresh reports, all zero: a confirmed empty circle
    assert stock_coverage(0, 0, reports_fresh=0) == 0.0  # nothing known
    assert stock_coverage(0, 50, reports_fresh=3) == 0.0  # fresh zeros, old 50: unknown
    assert stock_coverage(30, 10, reports_fresh=1) == pytest.approx(0.75)


def test_confirmed_empty_circle_is_critical() -> None:
    level = compute_level(replace(inputs(0), reports_fresh=10), NOW)
    assert level.coverage_stock == 1.0
    assert level.days_of_supply == 0.0
    assert level.status is Status.CRITICAL


def test_nothing_reported_is_stale_with_no_unconfirmed_age() -> None:
    level = compute_level(inputs(0, fresh=0), NOW)
    assert level.coverage == 0.0 and level.coverage_stock == 0.0
    assert level.unconfirmed_age_s is None
    assert level.status is Status.STALE


def test_either_coverage_below_minimum_is_stale() -> None:
    assert classify(10, 0.49, T, 1.0) is Status.STALE
    assert classify(10, 1.0, T, 0.49) is Status.STALE
    assert classify(0.1, 1.0, T, 0.49) is Status.STALE
    assert classify(10, 0.5, T, 0.5) is Status.OK


# ---------------------------------------------------------------- demand from sold_24h


def sold(stock: float, sold_24h: float | None, stock_with_sold: float, **kw: object) -> CircleInputs:
    return replace(inputs(stock), sold_24h=sold_24h, stock_with_sold=stock_with_sold, **kw)  # type: ignore[arg-type]


def test_observed_demand_scaled_up_to_all_fresh_stock() -> None:
    # Outlets holding 1,500 of 2,000 kg sold 300 kg: the circle sells 300 / 0.75 = 400 kg a day; 5 days.
    level = compute_level(sold(2000, 300, 1500), NOW)
    assert level.demand_source is DemandSource.OBSERVED
    assert level.demand_observed == pytest.approx(400)
    assert level.daily_demand == pytest.approx(400)
    assert level.days_of_supply == pytest.approx(5)
    assert level.status is Status.WATCH


def test_observed_demand_times_the_emergency_multiplier() -> None:
    level = compute_level(sold(2000, 300, 1500), NOW, rule=DemandRule(multiplier=1.5))
    assert level.demand_observed == pytest.approx(400)  # stored before the multiplier
    assert level.daily_demand == pytest.approx(600)


def test_too_few_sellers_fall_back_to_population() -> None:
    # Outlets with sold_24h hold 900 of 2,000 kg (45% < 50%): population x per-capita = 250 kg/day.
    level = compute_level(sold(2000, 300, 900), NOW)
    assert level.demand_source is DemandSource.POPULATION
    assert level.demand_observed is None
    assert level.daily_demand == pytest.approx(250)
    assert compute_level(sold(2000, 300, 1000), NOW).demand_source is DemandSource.OBSERVED  # exactly half


@pytest.mark.parametrize(
    ("sold_24h", "with_sold", "stock"),
    [(None, 0, 2000), (0, 2000, 2000), (300, 0, 2000), (300, 0, 0)],
)
def test_observed_rate_not_usable(sold_24h: float | None, with_sold: float, stock: float) -> None:
    assert observed_rate(sold_24h, with_sold, stock, 0.5) is None


def test_observed_demand_is_the_median_of_the_last_computations() -> None:
    # Raw rates of the last four computations: 400, 410, 1,000 (a tick that caught an odd report), 405.
    # Now outlets holding all 2,000 kg sold 800: the last five rates are kept, their median is the demand.
    prev = (400.0, 410.0, 1000.0, 405.0)
    level = compute_level(
        sold(2000, 800, 2000, prev_observed_raw=prev, prev_computed_at=NOW - timedelta(seconds=5)), NOW
    )
    assert level.observed_raw == (400.0, 410.0, 1000.0, 405.0, 800.0)
    assert level.demand_observed == 410.0  # median of 400, 405, 410, 800, 1,000
    assert level.daily_demand == 410.0
    level = compute_level(
        sold(2000, 800, 2000, prev_observed_raw=level.observed_raw, prev_computed_at=NOW), NOW + timedelta(seconds=5)
    )
    assert level.observed_raw == (410.0, 1000.0, 405.0, 800.0, 800.0)  # the oldest dropped
    assert level.demand_observed == 800.0  # a lasting change is followed within a few ticks


def test_a_lasting_rate_is_the_rate_however_the_ticks_fell() -> None:
    rates: tuple[float, ...] = (123.0, 9999.0)
    at = NOW
    for _ in range(5):
        at += timedelta(seconds=7)
        rates = recent_rates(rates, at - timedelta(seconds=7), at, 400.0, 5)
    assert rates == (400.0,) * 5


def test_recomputing_at_the_same_moment_changes_nothing() -> None:
    once = recent_rates((1.0, 2.0), NOW - timedelta(seconds=5), NOW, 3.0, 5)
    assert once == (1.0, 2.0, 3.0)
    assert recent_rates(once, NOW, NOW, 3.0, 5) == once  # the same moment again: replaced, not added
    assert recent_rates((), None, NOW, 3.0, 5) == (3.0,)
    assert recent_rates((1.0, 2.0), NOW - timedelta(seconds=5), NOW, 3.0, 1) == (3.0,)  # no smoothing


def test_observed_rates_start_afresh_after_population_demand() -> None:
    level = compute_level(sold(2000, 300, 900), NOW)  # too few sellers
    assert level.observed_raw == () and level.demand_observed is None


# ---------------------------------------------------------------- lag and the level message


def test_lag_is_carried_and_published() -> None:
    level = compute_level(
        replace(sold(2000, 300, 1500), stock_unconfirmed=500.0, oldest_unconfirmed=NOW - timedelta(hours=25)),
        NOW,
        lag=Lag(reports=12, seconds=3.5),
    )
    assert (level.lag_reports, level.lag_s) == (12, 3.5)
    message = level_message("C1", [level])
    assert message["computed_at"] == NOW.isoformat()
    assert message["lag"] == {"reports": 12, "seconds": 3.5}
    rice = message["necessities"]["rice"]  # type: ignore[index]
    assert rice["stock"] == 2000 and rice["stock_unconfirmed"] == 500
    assert rice["unconfirmed_age_s"] == pytest.approx(25 * 3600)
    assert rice["demand_source"] == "observed"
    assert rice["coverage_stock"] == pytest.approx(0.8)
    assert rice["status"] == "WATCH"


def test_no_lag_is_null() -> None:
    level = compute_level(inputs(2000), NOW)
    assert level.lag_reports is None and level.lag_s is None
    assert level_message("C1", [level])["lag"] is None
