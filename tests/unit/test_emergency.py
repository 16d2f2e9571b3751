"""Emergency grades: parsing, the effective grade of overlapping scopes, and what the defaults change."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from schema.catalogue import NECESSITIES
from schema.emergency import (
    ANY_NECESSITY,
    DEFAULT_RULES,
    Grade,
    GradeRules,
    Scope,
    effective_grade,
    freshness_caps,
    parse_grade,
    roman,
    rules,
)
from streams.circles import level_message
from streams.levels import CircleInputs, DemandRule, Status, Thresholds, compute_level


@pytest.mark.parametrize(
    ("text", "grade"),
    [("IV", Grade.IV), ("iii", Grade.III), ("Ⅱ", Grade.II), ("I", Grade.I), ("2", Grade.II), (1, Grade.I)],
)
def test_grades_are_read_in_roman_and_stored_as_integers(text: str | int, grade: Grade) -> None:
    assert parse_grade(text) is grade
    assert int(grade) in (1, 2, 3, 4) and roman(int(grade)) == grade.roman


@pytest.mark.parametrize("text", ["V", "0", 5, "", "high", True])
def test_a_grade_outside_iv_to_i_is_refused_with_the_forms(text: str | int) -> None:
    with pytest.raises(ValueError, match="IV, III, II or I"):
        parse_grade(text)


def test_scopes_parse_and_refuse_what_names_nothing() -> None:
    assert Scope.parse("city") == Scope("city")
    assert Scope.parse("district:北林区") == Scope("district", "北林区")
    assert Scope.parse("circle: C03 ") == Scope("circle", "C03")
    assert str(Scope("circle", "C03")) == "circle:C03"
    for bad in ("town", "district", "district:", "circle:  ", "city:X"):
        with pytest.raises(ValueError):
            Scope.parse(bad)


def test_a_circle_at_ii_inside_a_city_at_iv_is_at_ii_and_its_neighbours_at_iv() -> None:
    declared = [(Scope("city"), 4), (Scope("circle", "C03"), 2), (Scope("district", "D2"), 3)]
    assert effective_grade(declared, "C03", "D1") is Grade.II
    assert effective_grade(declared, "C01", "D1") is Grade.IV
    assert effective_grade(declared, "C09", "D2") is Grade.III
    # A less severe declaration inside a more severe one changes nothing.
    assert effective_grade([(Scope("city"), 1), (Scope("circle", "C03"), 4)], "C03", "D1") is Grade.I
    assert effective_grade([(Scope("circle", "C03"), 2)], "C04", "D1") is None
    assert effective_grade([], "C03", "D1") is None


def test_each_grade_up_asks_more_demand_higher_thresholds_fresher_data_faster_pages() -> None:
    ordered = [DEFAULT_RULES[g] for g in (Grade.IV, Grade.III, Grade.II, Grade.I)]
    for lower, higher in itertools.pairwise(ordered):
        assert higher.demand_multiplier > lower.demand_multiplier
        assert higher.threshold_factor > lower.threshold_factor
        assert higher.report_every_h < lower.report_every_h
        assert higher.timer_factor < lower.timer_factor
        for n in NECESSITIES:
            assert higher.demand(n.code) >= lower.demand(n.code)
            assert higher.report_every(n.code) <= lower.report_every(n.code)
            assert higher.freshness_minutes(n.code, n.freshness_minutes) <= lower.freshness_minutes(
                n.code, n.freshness_minutes
            )
    assert [r.demand_multiplier for r in ordered] == [1.2, 1.5, 2.0, 3.0]
    assert rules(None) is None and rules(2) is DEFAULT_RULES[Grade.II]


def test_the_defaults_in_numbers() -> None:
    four, three, two, one = (DEFAULT_RULES[g] for g in (Grade.IV, Grade.III, Grade.II, Grade.I))
    # IV is the daily report: every normal window (6 to 48 h) stands.
    assert four.report_every("rice") == timedelta(hours=24)
    assert all(four.freshness_minutes(n.code, n.freshness_minutes) == n.freshness_minutes for n in NECESSITIES)
    # II: staples confirmed for 12 h instead of 24; leafy vegetables keep their 6 h (reported every 3 h).
    assert two.freshness_minutes("rice", 24 * 60) == 12 * 60
    assert two.freshness_minutes("leafy_vegetables", 6 * 60) == 6 * 60
    # I: staples 8 h, perishables 4 h; fever medicine six times the demand, hoarded water four times.
    assert one.freshness_minutes("rice", 24 * 60) == 8 * 60 and one.freshness_minutes("milk", 12 * 60) == 4 * 60
    assert (one.demand("fever_medicine"), one.demand("bottled_water"), one.demand("rice")) == (6.0, 4.0, 3.0)
    # Thresholds scale together, so their order holds: rice at III is 8.75 / 3.75 / 1.25 days.
    assert three.thresholds(7, 3, 1) == (8.75, 3.75, 1.25)
    assert one.timer_factor == 0.25


def test_the_freshness_caps_the_level_query_takes() -> None:
    caps = freshness_caps()
    rows = list(zip(caps["cap_grade"], caps["cap_necessity"], caps["cap_minutes"], strict=True))
    assert (1, ANY_NECESSITY, 8 * 60) in rows and (1, "milk", 4 * 60) in rows and (4, ANY_NECESSITY, 48 * 60) in rows
    assert len({(g, n) for g, n, _ in rows}) == len(rows)  # one cap per grade and necessity
    extra = freshness_caps(["rice"])
    assert (2, "rice", 12 * 60) in zip(extra["cap_grade"], extra["cap_necessity"], extra["cap_minutes"], strict=True)


def test_a_grade_that_would_relax_anything_is_refused() -> None:
    with pytest.raises(ValueError, match="never lowers"):
        GradeRules(Grade.IV, demand_multiplier=0.9, threshold_factor=1.0, report_every_h=24, timer_factor=1.0)
    with pytest.raises(ValueError, match="never lowers"):
        GradeRules(Grade.IV, demand_multiplier=1.0, threshold_factor=1.0, report_every_h=24, timer_factor=1.5)
    with pytest.raises(ValueError, match="positive"):
        GradeRules(Grade.IV, demand_multiplier=1.0, threshold_factor=1.0, report_every_h=0, timer_factor=1.0)


def _rice(stock: float, grade: int | None, sold: float | None = None) -> CircleInputs:
    return CircleInputs(
        "C1",
        "rice",
        population=1000,
        per_capita_daily=0.25,
        thresholds=Thresholds(7, 3, 1, 0.5),
        stock=stock,
        outlets_expected=2,
        outlets_fresh=2,
        sold_24h=sold,
        stock_with_sold=stock if sold else 0.0,
        grade=grade,
    )


def test_a_level_under_a_grade_multiplies_demand_scales_thresholds_and_keeps_the_grade() -> None:
    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    normal = compute_level(_rice(1000, None), now)
    assert (normal.daily_demand, normal.days_of_supply, normal.status, normal.grade) == (250, 4, Status.WATCH, None)
    # III: demand 250 x 1.5 = 375, 1,000 / 375 = 2.67 days; thresholds 8.75 / 3.75 / 1.25: SHORTAGE.
    three = compute_level(_rice(1000, 3), now)
    assert (three.daily_demand, three.status, three.grade) == (375, Status.SHORTAGE, 3)
    # Observed demand (200 kg sold by outlets holding all the stock) is multiplied too: I, x3 = 600.
    observed = compute_level(_rice(1000, 1, sold=200), now)
    assert (observed.demand_observed, observed.daily_demand) == (200, 600)
    # A deployment multiplier larger than the grade's is kept; a smaller one gives way to the grade's.
    assert compute_level(_rice(1000, 4), now, rule=DemandRule(multiplier=2.0)).daily_demand == 500
    assert compute_level(_rice(1000, 4), now, rule=DemandRule(multiplier=1.1)).daily_demand == 300
    message = level_message("C1", [three])
    assert message["emergency"] == {"grade": "III", "grade_number": 3, "report_every_h": {"rice": 12.0}}
    assert level_message("C1", [normal])["emergency"] is None
