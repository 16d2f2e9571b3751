"""The synthetic demo city: deterministic, sized from the plan, every circle supplied."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from schema.catalogue import BUSINESS_TYPES, CARRIES, NECESSITIES
from schema.circles import WALK_KM as CIRCLE_RADIUS_KM
from schema.circles import circles_within, haversine_km
from schema.demo_city import OUTLETS_BY_TYPE, UNAFFILIATED, Circle, DemoCity, build_demo_city


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return build_demo_city()


def _circle(lat: float, lon: float, id: str) -> Circle:
    return Circle(id=id, name=id, center_lat=lat, center_lon=lon, owner="", team="")


def test_same_seed_same_city(city: DemoCity) -> None:
    assert build_demo_city(2024) == city


def test_another_seed_another_city_of_the_same_size(city: DemoCity) -> None:
    other = build_demo_city(7)
    assert other != city
    assert (len(other.outlets), other.population) == (len(city.outlets), city.population)


def test_sized_from_the_plan(city: DemoCity) -> None:
    assert len(city.circles) == 10
    assert len(city.communities) == 40
    assert city.population == 316_000
    assert len(city.outlets) == 6_668
    assert len({c.street_office for c in city.communities}) == 10
    assert Counter(c.circle_id for c in city.communities) == {c.id: 4 for c in city.circles}


def test_populations_vary_plausibly(city: DemoCity) -> None:
    populations = [c.population for c in city.communities]
    assert len(set(populations)) > 30
    assert min(populations) > 3_000 and max(populations) < 15_000


def test_every_business_type_present_in_the_documented_numbers(city: DemoCity) -> None:
    assert Counter(o.business_type for o in city.outlets) == OUTLETS_BY_TYPE
    assert set(OUTLETS_BY_TYPE) == {b.code for b in BUSINESS_TYPES}


def test_ids_are_unique_and_short(city: DemoCity) -> None:
    ids = [o.id for o in city.outlets]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "O00001" and ids[-1] == "O06668"
    assert [c.id for c in city.circles] == [f"C{i:02d}" for i in range(1, 11)]
    assert len({c.id for c in city.communities}) == 40


def test_every_outlet_within_a_walk_of_its_circle_centre(city: DemoCity) -> None:
    communities = {c.id: c for c in city.communities}
    circles = {c.id: c for c in city.circles}
    for outlet in city.outlets:
        circle = circles[communities[outlet.community_id].circle_id]
        assert haversine_km(outlet.lat, outlet.lon, circle.center_lat, circle.center_lon) <= CIRCLE_RADIUS_KM


def test_outlet_circles_are_its_home_circle_plus_every_centre_within_1_km(city: DemoCity) -> None:
    communities = {c.id: c for c in city.communities}
    for outlet in city.outlets:
        home = communities[outlet.community_id].circle_id
        assert outlet.circle_ids[0] == home
        assert set(outlet.circle_ids) == {home, *circles_within(outlet.lat, outlet.lon, city.circles, 1.0)}
    assert any(len(o.circle_ids) > 1 for o in city.outlets), "some outlets should serve two circles"


def test_spread_over_about_43_square_km(city: DemoCity) -> None:
    lats = [c.center_lat for c in city.circles]
    lons = [c.center_lon for c in city.circles]
    north_south = haversine_km(min(lats), 126.97, max(lats), 126.97) + 2 * CIRCLE_RADIUS_KM
    east_west = haversine_km(46.65, min(lons), 46.65, max(lons)) + 2 * CIRCLE_RADIUS_KM
    assert 35 <= north_south * east_west <= 50
    assert abs(sum(lats) / 10 - 46.65) < 0.01 and abs(sum(lons) / 10 - 126.97) < 0.01


def test_every_necessity_carried_in_every_circle(city: DemoCity) -> None:
    carried: dict[str, set[str]] = {c.id: set() for c in city.circles}
    for outlet in city.outlets:
        for circle_id in outlet.circle_ids:
            carried[circle_id].update(CARRIES.get(outlet.business_type, ()))
    for circle_id, necessities in carried.items():
        assert necessities == {n.code for n in NECESSITIES}, circle_id


def test_every_outlet_has_one_known_supplier(city: DemoCity) -> None:
    suppliers = {s.id: s for s in city.suppliers}
    owned = Counter(o.supplier_id for o in city.outlets)
    assert set(owned) == set(suppliers), "every supplier owns outlets"
    for outlet in city.outlets:
        carries = outlet.business_type in CARRIES
        assert (outlet.supplier_id == UNAFFILIATED) is not carries
        assert suppliers[outlet.supplier_id].has_key is carries
    assert [s.id for s in city.suppliers if not s.has_key] == [UNAFFILIATED]


def test_chains_own_their_business_types(city: DemoCity) -> None:
    kinds = {s.id: s.kind for s in city.suppliers}
    chained = [o for o in city.outlets if o.chain is not None]
    assert {kinds[o.supplier_id] for o in chained} <= {"chain", "supermarket", "market", "pharmacy"}
    assert {o.business_type for o in chained} == {
        "supermarket",
        "convenience_store",
        "vegetable_market",
        "fresh_food_store",
        "pharmacy",
    }


def test_fast() -> None:
    started = time.perf_counter()
    build_demo_city(99)
    assert time.perf_counter() - started < 0.5


def test_circles_within_a_known_distance() -> None:
    # One degree of latitude is 111.195 km on the mean-radius sphere, so 0.009° ≈ 1.0008 km.
    centre = _circle(46.65, 126.97, "A")
    assert haversine_km(46.65, 126.97, 46.659, 126.97) == pytest.approx(1.0008, abs=1e-3)
    assert circles_within(46.659, 126.97, [centre], 1.0) == ()
    assert circles_within(46.659, 126.97, [centre], 1.001) == ("A",)
    assert circles_within(46.65, 126.97, [centre], 0.0) == ("A",)


def test_circles_within_east_west_and_sorted() -> None:
    # At 46.65 N a degree of longitude is 111.195 * cos(46.65°) ≈ 76.33 km.
    circles = [_circle(46.65, 126.97 + 0.6 / 76.33, "B"), _circle(46.65, 126.97, "A"), _circle(46.65, 127.0, "C")]
    assert circles_within(46.65, 126.97, circles, 1.0) == ("A", "B")
    assert circles_within(46.65, 126.985, circles, 1.2) == ("A", "B", "C")
