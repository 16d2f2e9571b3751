"""Restock suggestions worked out by hand (alerts/restock.py).

Circle A is short of rice: 200 kg in stock, 100 kg/day, target 7 days (watch_days) -> needs 700 - 200 = 500 kg.
Its neighbours (all targets 7 days):

    circle  stock   demand  target stock  surplus
    B       2,000   150     1,050         950
    C         600   100       700           0   (needs its own stock, and 100 kg more)

    outlet  serves  km north of A's centre  fresh rice
    OA1     A, B    0.5                     900   (counts in A already: never a source)
    OC1     C       1.0                     600   (C has no surplus)
    OBC     B, C    1.5                     400   (between B and C: C has no surplus, so 0)
    OB1     B       2.0                     300   -> spare 300, take 300 (200 left to find; B has 650 left)
    OB2     B       2.5                   1,700   -> spare min(1,700, 650) = 650, take 200
"""

from __future__ import annotations

import pytest

from alerts.restock import Candidate, CircleSupply, Plan, annotation, plan
from schema.circles import EARTH_RADIUS_KM

LAT, LON = 46.65, 126.97
KM_PER_DEG = EARTH_RADIUS_KM * 3.141592653589793 / 180


def outlet(oid: str, km: float, stock: float, *circles: str) -> Candidate:
    return Candidate(oid, f"{oid} 店", LAT + km / KM_PER_DEG, LON, circles[0], stock, circles)


SHORT = CircleSupply("A", stock=200, daily_demand=100, target_days=7)
CIRCLES = {
    "A": SHORT,
    "B": CircleSupply("B", stock=2000, daily_demand=150, target_days=7),
    "C": CircleSupply("C", stock=600, daily_demand=100, target_days=7),
}
CANDIDATES = [
    outlet("OB2", 2.5, 1700, "B"),
    outlet("OA1", 0.5, 900, "A", "B"),
    outlet("OC1", 1.0, 600, "C"),
    outlet("OBC", 1.5, 400, "B", "C"),
    outlet("OB1", 2.0, 300, "B"),
]


def taken(p: Plan) -> list[tuple[str, float, float]]:
    return [(s.outlet_id, s.quantity, s.spare) for s in p.suggestions]


def test_the_need_splits_over_the_nearest_sources_with_spare() -> None:
    assert SHORT.need == 500
    assert (CIRCLES["B"].surplus, CIRCLES["C"].surplus) == (950, 0)
    p = plan(SHORT, (LAT, LON), CANDIDATES, CIRCLES, necessity="rice", unit="kg")
    assert p.need == 500 and p.target_days == 7
    assert taken(p) == [("OB1", 300, 300), ("OB2", 200, 650)]
    assert [s.distance_km for s in p.suggestions] == [pytest.approx(2.0, abs=1e-6), pytest.approx(2.5, abs=1e-6)]
    assert [s.circle_id for s in p.suggestions] == ["B", "B"]
    assert (p.covered, p.shortfall) == (500, 0)


def test_a_circle_never_gives_what_it_needs_for_its_own_target() -> None:
    # A needs 1,500: B can give only its 950 kg surplus, however much OB2 holds.
    short = CircleSupply("A", stock=200, daily_demand=100, target_days=17)
    p = plan(short, (LAT, LON), CANDIDATES, CIRCLES)
    assert p.need == 1500
    assert taken(p) == [("OB1", 300, 300), ("OB2", 650, 650)]
    assert (p.covered, p.shortfall) == (950, 550)


def test_unknown_levels_give_nothing_and_the_limit_caps_the_list() -> None:
    stale_b = {**CIRCLES, "B": CircleSupply("B", 2000, 150, 7, known=False)}
    assert plan(SHORT, (LAT, LON), CANDIDATES, stale_b).suggestions == ()
    missing_b = {k: v for k, v in CIRCLES.items() if k != "B"}
    assert plan(SHORT, (LAT, LON), CANDIDATES, missing_b).suggestions == ()
    p = plan(SHORT, (LAT, LON), CANDIDATES, CIRCLES, limit=1)
    assert taken(p) == [("OB1", 300, 300)] and p.shortfall == 200


def test_a_circle_at_its_target_needs_nothing() -> None:
    ok = CircleSupply("A", stock=800, daily_demand=100, target_days=7)
    p = plan(ok, (LAT, LON), CANDIDATES, CIRCLES)
    assert (p.need, p.suggestions, p.shortfall) == (0, (), 0)
    assert annotation(p) == ""


def test_the_page_annotation_is_short_chinese() -> None:
    p = plan(SHORT, (LAT, LON), CANDIDATES, CIRCLES, unit="kg")
    assert annotation(p) == "建议调货：OB1 店（B，2.0 km）300 kg；OB2 店（B，2.5 km）200 kg"
    assert annotation(p, shown=1) == "建议调货：OB1 店（B，2.0 km）300 kg；另 1 处"
    none = plan(SHORT, (LAT, LON), [], CIRCLES, unit="kg")
    assert annotation(none) == "建议调货：附近无富余库存（需补 500 kg）"
