"""The demo's reports through the level maths (pure): the scripted rice shortage happens and resolves.

The database side of the same computation is tested in tests/integration/test_level_sql.py; here each
circle's inputs are summed in Python from one round of simulator records, all fresh.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest

from baogong.demo.simulator import Scenario, Simulator
from schema.catalogue import NECESSITY_BY_CODE
from schema.demo_city import build_demo_city
from streams.levels import CircleInputs, CircleLevel, DemandSource, Status, Thresholds, compute_level

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    return Simulator(build_demo_city(), Scenario())


def levels(sim: Simulator, elapsed_s: float, necessity: str) -> dict[str, CircleLevel]:
    served = {o.id: o.circle_ids for o in sim.city.outlets}
    population: dict[str, int] = defaultdict(int)
    for community in sim.city.communities:
        population[community.circle_id] += community.population
    stock: dict[str, float] = defaultdict(float)
    sold: dict[str, float] = defaultdict(float)
    fresh: dict[str, int] = defaultdict(int)
    for records in sim.records(elapsed_s, NOW).values():
        for r in records:
            if r["necessity"] != necessity:
                continue
            per = 0.5 if r["unit"] == "斤" else 1.0
            for circle in served[r["outlet_id"]]:
                stock[circle] += r["quantity"] * per
                sold[circle] += r["sold_24h"] * per
                fresh[circle] += 1
    spec = NECESSITY_BY_CODE[necessity]
    t = Thresholds(spec.watch_days, spec.shortage_days, spec.critical_days, spec.min_coverage)
    return {
        c.id: compute_level(
            CircleInputs(
                c.id,
                necessity,
                population[c.id],
                spec.per_capita_daily,
                t,
                stock[c.id],
                fresh[c.id],
                fresh[c.id],
                sold_24h=sold[c.id],
                stock_with_sold=stock[c.id],
            ),
            NOW,
        )
        for c in sim.city.circles
    }


def test_every_line_carries_a_plausible_sold_24h(simulator: Simulator) -> None:
    lines = [r for records in simulator.records(0.0, NOW).values() for r in records]
    assert lines and all(r["sold_24h"] is not None and r["sold_24h"] > 0 for r in lines)
    # A day's sales are a tenth or so of what an outlet holds (about ten days of supply).
    ratio = sum(r["sold_24h"] for r in lines) / sum(r["quantity"] for r in lines)
    assert 0.05 < ratio < 0.15


def test_the_scripted_rice_shortage_happens_and_resolves_on_observed_demand(simulator: Simulator) -> None:
    scenario = simulator.scenario
    before = levels(simulator, 0.0, "rice")
    during = levels(simulator, (scenario.short_from_s + scenario.short_until_s) / 2, "rice")
    after = levels(simulator, scenario.short_until_s + 5, "rice")
    assert all(lv.status is Status.OK for lv in before.values())
    assert all(lv.demand_source is DemandSource.OBSERVED for lv in before.values())
    assert during[scenario.circle_id].status is Status.SHORTAGE
    assert {c for c, lv in during.items() if lv.status is not Status.OK} == {scenario.circle_id}
    assert all(lv.status is Status.OK for lv in after.values())
    # People keep buying while the delivery is missing: observed demand stays put.
    short = scenario.circle_id
    assert during[short].daily_demand == pytest.approx(before[short].daily_demand, rel=0.05)
    # ... and it is of the order of what its residents eat (it also serves neighbours near its edge).
    residents = sum(c.population for c in simulator.city.communities if c.circle_id == short)
    assert 0.9 < before[short].daily_demand / (residents * NECESSITY_BY_CODE["rice"].per_capita_daily) < 1.1
