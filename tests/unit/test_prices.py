"""Price grades (schema/prices.py): every number worked out by hand."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from schema.prices import (
    DEFAULT_PLAN,
    NONE,
    UNKNOWN,
    Phase,
    PriceRules,
    baseline,
    gouging,
    grade,
    parse_plan,
    phase_of,
    plan_grade_of,
)

TODAY = date(2025, 3, 31)
RULES = PriceRules()


def days(values: list[float], end: date = TODAY) -> dict[date, float]:
    """`values` as the daily medians of the days before `end`, the last value yesterday."""
    return {end - timedelta(days=len(values) - i): v for i, v in enumerate(values)}


def test_flat_history_floor_makes_sd_five_percent_of_baseline() -> None:
    history = days([10.0] * 28)
    g = grade(10.1, history, TODAY, RULES)
    # baseline 10, stdev 0 -> floor 0.05 * 10 = 0.5; (10.1 - 10) / 0.5 = 0.2 -> NORMAL
    assert g.baseline == 10.0 and g.baseline_kind == "rolling" and g.history_days == 28
    assert g.sd == pytest.approx(0.5)
    assert g.deviation == pytest.approx(0.2)
    assert g.phase is Phase.NORMAL
    # +1 % on the day and on the week: no plan grade
    assert g.rise_day == pytest.approx(0.01) and g.rise_week == pytest.approx(0.01)
    assert g.plan_grade == NONE and not g.spiking and not g.stale


@pytest.mark.parametrize(
    ("price", "deviation", "phase"),
    [(10.125, 0.25, Phase.STRESS), (10.49, 0.98, Phase.STRESS), (10.5, 1.0, Phase.ALERT), (11.0, 2.0, Phase.CRISIS)],
)
def test_phases_on_flat_history(price: float, deviation: float, phase: Phase) -> None:
    g = grade(price, days([10.0] * 28), TODAY, RULES)
    assert g.deviation == pytest.approx(deviation)
    assert g.phase is phase
    assert g.spiking is (phase in (Phase.ALERT, Phase.CRISIS))


def test_spread_history_uses_its_own_sd() -> None:
    # 14 days at 9 and 14 at 11: median 10, sample sd = sqrt(28 * 1 / 27) = 1.0184
    history = days([9.0, 11.0] * 14)
    g = grade(12.0, history, TODAY, RULES)
    assert g.baseline == 10.0
    assert g.sd == pytest.approx((28 / 27) ** 0.5)
    assert g.deviation == pytest.approx(2 / (28 / 27) ** 0.5)  # 1.964 -> ALERT, not CRISIS
    assert g.phase is Phase.ALERT
    # yesterday (the last value) was 11: +9.1 %; a week before (7 days back, index 21) was 11: +9.1 %
    assert g.rise_day == pytest.approx(12 / 11 - 1)
    assert g.plan_grade == NONE


def test_falling_price_is_normal() -> None:
    g = grade(6.0, days([10.0] * 28), TODAY, RULES)
    assert g.deviation == pytest.approx(-8.0)
    assert g.phase is Phase.NORMAL


def test_plan_grades_day_and_week() -> None:
    # +35 % on the day: IV (day > 30 %); +55 %: III; +75 %: II; +120 %: I; thresholds are strict
    assert plan_grade_of(0.35, None, DEFAULT_PLAN) == "IV"
    assert plan_grade_of(0.30, 0.40, DEFAULT_PLAN) == NONE
    assert plan_grade_of(0.55, None, DEFAULT_PLAN) == "III"
    assert plan_grade_of(0.10, 0.65, DEFAULT_PLAN) == "III"  # week > 60 %
    assert plan_grade_of(0.75, None, DEFAULT_PLAN) == "II"
    assert plan_grade_of(1.2, 0.0, DEFAULT_PLAN) == "I"
    assert plan_grade_of(None, None, DEFAULT_PLAN) == UNKNOWN
    assert plan_grade_of(-0.5, None, DEFAULT_PLAN) == NONE


def test_a_spike_graded_both_ways() -> None:
    # flat 8.00 for 28 days; now 11.20 = +40 %: IV on the day (> 30 %), not on the week (not > 40 %);
    # deviation 3.2 / 0.4 = 8 -> CRISIS
    g = grade(11.2, days([8.0] * 28), TODAY, RULES)
    assert g.rise_day == pytest.approx(0.4) and g.rise_week == pytest.approx(0.4)
    assert g.plan_grade == "IV"
    assert g.deviation == pytest.approx(8.0)
    assert g.phase is Phase.CRISIS and g.spiking


def test_missing_days_are_skipped_and_too_few_give_no_baseline() -> None:
    # 6 days of history in the 28-day window: fewer than 7 -> no baseline, phase UNKNOWN; yesterday is there
    history = {TODAY - timedelta(days=d): 10.0 for d in (1, 3, 5, 10, 20, 27)}
    g = grade(14.0, history, TODAY, RULES)
    assert g.baseline is None and g.history_days == 6 and g.phase is Phase.UNKNOWN
    assert g.rise_day == pytest.approx(0.4) and g.plan_grade == "IV"
    assert not g.stale and g.spiking  # the plan grade alone is a price alert
    # a 7th day anywhere in the window makes a baseline: median of 7 values
    history[TODAY - timedelta(days=15)] = 12.0
    assert baseline(history, TODAY, RULES) == (10.0, "rolling", 7)


def test_week_reference_is_seven_days_back_or_the_nearest_of_three_before() -> None:
    history = {TODAY - timedelta(days=9): 10.0}
    g = grade(15.0, history, TODAY, RULES)
    assert g.rise_day is None and g.rise_week == pytest.approx(0.5)
    assert g.plan_grade == "IV"  # week: +50 % > 40 %
    too_old = {TODAY - timedelta(days=11): 10.0}
    assert grade(15.0, too_old, TODAY, RULES).plan_grade == UNKNOWN


def test_single_outlet_history() -> None:
    # one outlet, one price a day: the medians are its prices; the rolling median of 5,5,6 x 9 + 7 (10 days)
    history = days([5.0, 5.0] + [6.0] * 7 + [7.0])
    b, kind, n = baseline(history, TODAY, RULES)
    assert (b, kind, n) == (6.0, "rolling", 10)


def test_stale_is_unknown_never_normal() -> None:
    g = grade(None, days([10.0] * 28), TODAY, RULES)
    assert g.stale and g.phase is Phase.UNKNOWN and g.plan_grade == UNKNOWN and not g.spiking
    assert g.baseline == 10.0  # the baseline is still known


def test_seasonal_baseline_once_a_year_of_history_exists() -> None:
    # this year: flat 10 for 28 days. Last year: 8 for the 28 days before (today - 364), 10 in the week around
    # it (a seasonal rise of 25 %): baseline 10 * 10 / 8 = 12.5
    history = days([10.0] * 28)
    then = TODAY - timedelta(days=364)
    history.update(days([8.0] * 28, then))
    history.update({then + timedelta(days=i): 10.0 for i in range(-3, 4) if i >= 0})
    b, kind, _ = baseline(history, TODAY, RULES)
    assert kind == "seasonal" and b == pytest.approx(12.5)
    g = grade(12.5, history, TODAY, RULES)
    assert g.phase is Phase.NORMAL  # what last year did is no spike


def test_phase_bounds_and_gouging() -> None:
    assert [phase_of(x) for x in (0.0, 0.24, 0.25, 1.0, 1.99, 2.0)] == [
        Phase.NORMAL,
        Phase.NORMAL,
        Phase.STRESS,
        Phase.ALERT,
        Phase.ALERT,
        Phase.CRISIS,
    ]
    assert gouging(15.1, 10.0, True, RULES)  # > 50 % above
    assert not gouging(15.0, 10.0, True, RULES)
    assert not gouging(30.0, 10.0, False, RULES)  # no spike, no lead


def test_parse_plan() -> None:
    assert parse_plan("IV:30/40,III:50/60,II:70/80,I:100/100") == DEFAULT_PLAN
    with pytest.raises(ValueError, match="NAME:DAY%/WEEK%"):
        parse_plan("IV=30")
