"""The demo's price spike on the real database (baogong/demo/prices.py): the demo city gets a price history once,
its calm prices grade calm, and C05's rice spike grades both ways with exactly one gouging lead.

The prices are stored as the worker stores the API's records and graded by the worker's own pass
(`schema.price_store.refresh`); the API → broker → worker → alert path is tests/integration/test_price_path.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from baogong.demo.prices import DemoPrices, price_history
from baogong.settings import Settings
from schema.db import connect
from schema.demo_city import build_demo_city
from schema.price_store import TZ, refresh, rules_from
from schema.prices import Phase
from schema.seed import seed_demo

RULES = rules_from(Settings())


def store(url: str, by_supplier: dict[str, list[dict[str, Any]]]) -> None:
    with connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO prices (reported_at, outlet_id, necessity, price, supplier_id, received_at) "
            "VALUES (%s, %s, %s, %s, %s, now())",
            [
                (r["reported_at"], r["outlet_id"], r["necessity"], r["price"], supplier)
                for supplier, records in by_supplier.items()
                for r in records
            ],
        )


def test_the_demo_spike_in_c05_is_graded_both_ways_with_one_gouging_lead(database_url: str) -> None:
    url = database_url
    keys = {k.supplier_id: k.key for k in seed_demo(url, progress=lambda _: None).keys}
    today = datetime.now(UTC).astimezone(TZ).date()
    noon = datetime(today.year, today.month, today.day, 12, tzinfo=TZ)  # the same Shanghai day throughout

    said: list[str] = []
    assert price_history(url, noon, days=14, progress=said.append).startswith("price history: 14 days")
    assert said and "14 days of SYNTHETIC past prices" in said[0]
    assert price_history(url, noon, days=14, progress=said.append) == (
        "price history: 14 of the last 28 days hold prices (baselines exist)"
    )
    assert len(said) == 1  # nothing written the second time

    demo = DemoPrices(url, build_demo_city(), keys)
    store(url, demo.prices(demo.outlets, noon - timedelta(minutes=2), spiking=False))
    with connect(url) as conn:
        calm = refresh(conn, noon - timedelta(minutes=1), RULES, 24.0)
    assert calm.levels and not [lv for lv in calm.levels if lv.grade.spiking]
    # Each outlet's usual price is its own history's: calm levels sit within a quarter or so of a standard deviation
    # of their baselines (NORMAL, the odd one just over into STRESS by noise), not off by a markup drawn anew.
    assert max(abs(lv.grade.deviation or 0.0) for lv in calm.levels) < 0.5
    assert not calm.leads

    store(url, demo.prices(demo.spiked, noon - timedelta(seconds=30), spiking=True, only="rice"))
    with connect(url) as conn:
        done = refresh(conn, noon, RULES, 24.0)
    spiking = {(lv.circle_id, lv.necessity): lv.grade for lv in done.levels if lv.grade.spiking}
    assert list(spiking) == [("C05", "rice")]  # one circle, one necessity; not the city-wide median
    rice = spiking[("C05", "rice")]
    assert rice.phase is Phase.CRISIS and rice.deviation is not None and rice.deviation > 5
    assert rice.plan_grade == "IV"  # +45 %: above IV's 30 % a day / 40 % a week, below III's 50 % / 60 %
    assert rice.rise_day is not None and 0.35 < rice.rise_day < 0.5
    assert demo.gouger is not None
    assert [(lead.outlet_id, lead.circle_id, lead.necessity) for lead in done.leads] == [
        (demo.gouger.id, "C05", "rice")
    ]

    demo.started_at = noon - timedelta(minutes=3)  # as `act` sets it: alerts since the demo started
    shown = "\n".join(demo.lines())
    assert "C05 rice: " in shown and "ALPS CRISIS" in shown and "plan grade IV (day +" in shown
    assert "PriceSpike none; PanicBuying (price spike + stock below the watch line) none" in shown
    assert f"gouging lead for the market supervision bureau: {demo.gouger.name}" in shown
