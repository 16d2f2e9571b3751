"""The synthetic city generator (schema/city_gen.py): sizes, populations, membership, determinism."""

from __future__ import annotations

from collections import Counter

import pytest

from schema.catalogue import CARRIES
from schema.circles import WALK_KM, haversine_km, served_circles
from schema.city_gen import CIRCLES_PER_DISTRICT, GeneratedCity, build_city, default_population
from schema.demo_city import COMMUNITIES_PER_CIRCLE, OUTLETS_BY_TYPE, UNAFFILIATED


@pytest.fixture(scope="module")
def city() -> GeneratedCity:
    return build_city(2_000, 30, seed=5)


def test_counts_and_populations_are_what_was_asked(city: GeneratedCity) -> None:
    assert len(city.outlets) == 2_000
    assert len(city.circles) == 30
    assert len(city.communities) == 30 * COMMUNITIES_PER_CIRCLE
    assert city.population == default_population(2_000)
    assert all(m.population > 0 for m in city.communities)
    assert len(city.districts) == 3  # 30 circles, 12 per district
    assert max(Counter(city.district_of.values()).values()) <= CIRCLES_PER_DISTRICT
    assert len({o.id for o in city.outlets}) == 2_000
    assert build_city(2_000, 8, population=3_560_000).population == 3_560_000


def test_business_types_follow_the_demo_mix(city: GeneratedCity) -> None:
    by_type = Counter(o.business_type for o in city.outlets)
    assert set(by_type) == set(OUTLETS_BY_TYPE)
    share = by_type["convenience_store"] / 2_000
    assert abs(share - OUTLETS_BY_TYPE["convenience_store"] / sum(OUTLETS_BY_TYPE.values())) < 0.01


def test_every_outlet_serves_its_home_circle_and_exactly_the_circles_within_a_walk(city: GeneratedCity) -> None:
    home = {m.id: m.circle_id for m in city.communities}
    for outlet in city.outlets:
        assert outlet.circle_ids[0] == home[outlet.community_id]
        # The rule over every circle, without the generator's spatial index, gives the same circles.
        assert outlet.circle_ids == served_circles(outlet.lat, outlet.lon, outlet.circle_ids[0], city.circles)
    centre = {c.id: c for c in city.circles}
    near_home = [
        haversine_km(o.lat, o.lon, centre[o.circle_ids[0]].center_lat, centre[o.circle_ids[0]].center_lon)
        for o in city.outlets
    ]
    assert max(near_home) <= WALK_KM
    assert any(len(o.circle_ids) > 1 for o in city.outlets)  # neighbouring circles share some outlets


def test_suppliers_own_every_outlet_and_only_carriers_report(city: GeneratedCity) -> None:
    suppliers = {s.id: s for s in city.suppliers}
    assert all(o.supplier_id in suppliers for o in city.outlets)
    for outlet in city.outlets:
        reports = suppliers[outlet.supplier_id].has_key
        assert reports == (outlet.business_type in CARRIES)
        assert (outlet.supplier_id == UNAFFILIATED) == (outlet.business_type not in CARRIES)


def test_same_arguments_same_city_another_seed_another_city() -> None:
    assert build_city(500, 4, seed=1) == build_city(500, 4, seed=1)
    assert build_city(500, 4, seed=1).outlets != build_city(500, 4, seed=2).outlets


def test_impossible_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="outlets"):
        build_city(10, 8)  # fewer outlets than communities
    with pytest.raises(ValueError, match="circle"):
        build_city(100, 0)
