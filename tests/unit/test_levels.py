from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.levels import CircleInputs, Status, Thresholds, classify, compute_level, coverage

T = Thresholds(watch_days=7, shortage_days=3, critical_days=1, min_coverage=0.5)
NOW = datetime(2026, 11, 25, tzinfo=UTC)


def inputs(stock: float, fresh: int = 10, expected: int = 10, population: int = 1000) -> CircleInputs:
    return CircleInputs("C1", "rice", population, 0.25, T, stock, expected, fresh)


def test_days_of_supply_is_stock_over_population_demand() -> None:
    level = compute_level(inputs(2000), NOW)
    assert level.daily_demand == pytest.approx(250)
    assert level.days_of_supply == pytest.approx(8)
    assert level.status is Status.OK


def test_emergency_multiplier_raises_demand() -> None:
    level = compute_level(inputs(2000), NOW, demand_multiplier=2.0)
    assert level.days_of_supply == pytest.approx(4)
    assert level.status is Status.WATCH


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
