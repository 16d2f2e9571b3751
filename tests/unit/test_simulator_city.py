"""The simulator feeds a generated city: every record it makes passes the API's validation, at a set pace."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from baogong.demo.simulator import Pace, Scenario, Simulator
from schema.catalogue import CARRIES, NECESSITIES
from schema.city_gen import build_city
from schema.contract import Context, validate_records

NOW = datetime(2025, 3, 1, 4, 0, tzinfo=UTC)


def test_every_record_for_a_generated_city_is_valid_and_rounds_cover_every_outlet() -> None:
    city = build_city(2_000, 8, seed=4)
    sim = Simulator(city, Scenario(circle_id="C001"))
    ctx = Context(
        units={n.code: n.unit for n in NECESSITIES},
        outlet_owner={o.id: o.supplier_id for o in city.outlets},
        outlet_type={o.id: o.business_type for o in city.outlets},
        now=NOW,
    )
    carriers = [o for o in city.outlets if o.business_type in CARRIES]
    expected_lines = sum(len(CARRIES[o.business_type]) for o in carriers)
    seen: Counter[str] = Counter()
    made = 0
    while made < expected_lines:  # one whole round, fed up to 1,000 records at a time
        for supplier_id, records in sim.next_records(0.0, NOW, min(1_000, expected_lines - made)).items():
            good, bad = validate_records("inventory", records, ctx, supplier_id)
            assert bad == [], bad[:3]
            assert len(good) == len(records)
            seen.update(r["outlet_id"] for r in records)
            made += len(records)
    assert made == expected_lines
    assert set(seen) == {o.id for o in carriers}  # every carrying outlet reported, each exactly once per round


def test_pace_asks_for_the_rate_times_the_time_never_more() -> None:
    pace = Pace(2_000.0)
    assert pace.due(0.0) == 0
    assert pace.due(0.5) == 1_000
    assert pace.due(0.5) == 0  # already asked
    assert pace.due(2.0) == 3_000
    assert pace.asked == 4_000
