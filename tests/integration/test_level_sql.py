"""The level SQL on the real PostgreSQL: a small city built here, every stored number worked out by hand.

Catalogue (inserted here, not the full one, so every row can be checked):
rice 0.25 kg/person/day, thresholds watch 7 / shortage 3 / critical 1 days,
fresh for 24 h; milk 0.10 L/person/day, 4 / 2 / 1 days, fresh for 12 h; both
min coverage 0.5. Supermarkets and convenience stores are expected to carry
both; pharmacies neither.

    circle  district  population  outlets (home community's circle first)
    A       D1        1,000       SA1 (supermarket, serves A and B), KA1, KA2 (kiosks),
                                  PA1 (pharmacy), DA1 (supermarket, deactivated)
    B       D1        2,000       SB1 (supermarket), KB1 (kiosk),
                                  RB1, RB2 (kiosks, deactivated and reactivated at AS)
    C       D2          400       SC1 (supermarket, silent for 30 h), KC1-KC3 (kiosks)

NOW = AS + 2 h, where AS is the reactivation time the database gave RB1 and RB2.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from baogong.demo.simulator import Scenario, Simulator
from schema.contract import Accepted
from schema.db import connect, make_pool
from schema.demo_city import build_demo_city
from schema.seed import seed_demo
from streams.circles import CITY, area_levels, refresh_levels
from streams.levels import CircleLevel, DemandRule, Lag
from streams.sink import MessageWrite, Position, ReportSink, keyed_rows

H = timedelta(hours=1)

CIRCLES = (("A", "D1"), ("B", "D1"), ("C", "D2"))
COMMUNITIES = (("A-1", 1000, "A"), ("B-1", 2000, "B"), ("C-1", 400, "C"))
OUTLETS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("SA1", "supermarket", "A-1", ("A", "B")),
    ("KA1", "convenience_store", "A-1", ("A",)),
    ("KA2", "convenience_store", "A-1", ("A",)),
    ("PA1", "pharmacy", "A-1", ("A",)),
    ("DA1", "supermarket", "A-1", ("A",)),
    ("SB1", "supermarket", "B-1", ("B",)),
    ("KB1", "convenience_store", "B-1", ("B",)),
    ("RB1", "convenience_store", "B-1", ("B",)),
    ("RB2", "convenience_store", "B-1", ("B",)),
    ("SC1", "supermarket", "C-1", ("C",)),
    ("KC1", "convenience_store", "C-1", ("C",)),
    ("KC2", "convenience_store", "C-1", ("C",)),
    ("KC3", "convenience_store", "C-1", ("C",)),
)
#: A report line: necessity, quantity, sold_24h.
Line = tuple[str, float, float | None]


def build_city(url: str) -> datetime:
    """The city above; returns AS, when RB1 and RB2 were reactivated (database time)."""
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO business_types (code, name_zh, name_en, category) VALUES "
            "('supermarket', '超市', 'supermarket', 'basic'), "
            "('convenience_store', '便利店', 'convenience store', 'basic'), "
            "('pharmacy', '药店', 'pharmacy', 'basic')"
        )
        conn.execute(
            "INSERT INTO necessities (code, name_zh, name_en, unit, per_capita_daily, watch_days, shortage_days, "
            "critical_days, freshness_minutes, min_coverage) VALUES "
            "('rice', '大米', 'rice', 'kg', 0.25, 7, 3, 1, 1440, 0.5), "
            "('milk', '牛奶', 'milk', 'L', 0.10, 4, 2, 1, 720, 0.5)"
        )
        conn.execute(
            "INSERT INTO business_type_necessities (business_type, necessity) VALUES "
            "('supermarket', 'rice'), ('supermarket', 'milk'), "
            "('convenience_store', 'rice'), ('convenience_store', 'milk')"
        )
        conn.execute("INSERT INTO suppliers (id, name, kind) VALUES ('s1', 'Test chain', 'chain')")
        for circle, district in CIRCLES:
            conn.execute(
                "INSERT INTO circles (id, name, center_lat, center_lon, district) VALUES (%s, %s, 46.65, 126.97, %s)",
                (circle, circle, district),
            )
        for community, population, circle in COMMUNITIES:
            conn.execute(
                "INSERT INTO communities (id, name, street_office, population, circle_id) "
                "VALUES (%s, %s, 'st', %s, %s)",
                (community, community, population, circle),
            )
        for outlet, business_type, community, circles in OUTLETS:
            conn.execute(
                "INSERT INTO outlets (id, name, business_type, supplier_id, community_id, lat, lon) "
                "VALUES (%s, %s, %s, 's1', %s, 46.65, 126.97)",
                (outlet, outlet, business_type, community),
            )
            for circle in circles:
                conn.execute("INSERT INTO outlet_circles (outlet_id, circle_id) VALUES (%s, %s)", (outlet, circle))
        conn.execute("UPDATE outlets SET active = false WHERE id IN ('DA1', 'RB1', 'RB2')")
    with connect(url) as conn:
        conn.execute("UPDATE outlets SET active = true WHERE id IN ('RB1', 'RB2')")
        rows = conn.execute("SELECT id, active_since FROM outlets ORDER BY id").fetchall()
    since = {r["id"]: r["active_since"] for r in rows}
    assert since["KA1"] is None and since["DA1"] is None  # never reactivated: every report counts
    assert since["RB1"] is not None and since["RB1"] == since["RB2"]
    return since["RB1"]  # type: ignore[no-any-return]


Report = tuple[str, datetime, Sequence[Line]]


def write(url: str, reports: Sequence[Report], partition: int) -> None:
    """Store `reports` through the worker's own sink, one Kafka message each on `partition` (offsets from 0).

    A line is (necessity, quantity, sold_24h); lines of one necessity in one report are pack sizes, keyed
    by their SKU as the Kafka path keys them: the sink stores each and outlet_stock holds their sum.
    """

    async def refused(message: MessageWrite, row: Accepted, exc: Exception) -> None:
        raise AssertionError(f"the sink refused {row}: {exc}")

    async def run() -> None:
        messages = []
        for offset, (outlet, at, lines) in enumerate(reports):
            accepted = [
                Accepted(i, outlet, necessity, quantity, "kg", at, sold, None, at.timestamp(), f"{necessity}-{i}")
                for i, (necessity, quantity, sold) in enumerate(lines)
            ]
            rows, summed = keyed_rows("inventory", accepted)
            messages.append(
                MessageWrite(
                    Position("test.supply.inventory.v1", partition, offset),
                    "s1",
                    rows=rows,
                    received_at=at,
                    summed=summed,
                )
            )
        pool = make_pool(url)
        await pool.open(wait=True, timeout=30)
        try:
            result = await ReportSink(pool).write("inventory", messages, refused)
        finally:
            await pool.close()
        assert result.new == sum(len(lines) for _, _, lines in reports)

    asyncio.run(run())


def reports(now: datetime, active_since: datetime) -> list[Report]:
    """The city's reports up to `now`."""
    return [
        # SA1 (serves A and B): one report, two pack sizes of rice (40 x 5 kg + 30 x 10 kg = 500 kg), no sold_24h.
        ("SA1", now - H, [("rice", 200.0, None), ("rice", 300.0, None), ("milk", 120.0, None)]),
        ("KA1", now - 2 * H, [("rice", 40.0, None), ("milk", 10.0, None)]),
        # Exactly 24 h old: rice still fresh (window inclusive); milk (12 h window) unconfirmed.
        ("KA2", now - 24 * H, [("rice", 60.0, None), ("milk", 8.0, None)]),
        ("PA1", now - 0.5 * H, [("rice", 10.0, None)]),  # a pharmacy's rice: stock, not coverage
        ("DA1", now - H, [("rice", 900.0, None), ("milk", 300.0, None)]),  # deactivated: never counts
        # 13 h old: rice fresh, milk unconfirmed (its sold_24h with it).
        ("SB1", now - 13 * H, [("rice", 1000.0, 150.0), ("milk", 200.0, 40.0)]),
        ("KB1", now - 3 * H, [("rice", 100.0, 20.0), ("milk", 20.0, 10.0)]),
        # Reported before its reactivation: out for good. RB2 reported after its reactivation: counts.
        ("RB1", active_since - timedelta(minutes=10), [("rice", 700.0, None), ("milk", 70.0, None)]),
        ("RB2", active_since + timedelta(minutes=1), [("rice", 50.0, None), ("milk", 5.0, None)]),
        ("SC1", now - 30 * H, [("rice", 5000.0, None)]),  # the silent supermarket
        *((kiosk, now - H, [("rice", 20.0, None)]) for kiosk in ("KC1", "KC2", "KC3")),
    ]


def refresh(url: str, now: datetime, lag: Lag | None = None) -> list[CircleLevel]:
    async def run() -> list[CircleLevel]:
        pool = make_pool(url)
        await pool.open(wait=True, timeout=30)
        try:
            return await refresh_levels(pool, now, lag=lag, demand=DemandRule(median_of=5))
        finally:
            await pool.close()

    return asyncio.run(run())


def areas(url: str, now: datetime) -> dict[tuple[str, str], CircleLevel]:
    async def run() -> list[CircleLevel]:
        pool = make_pool(url)
        await pool.open(wait=True, timeout=30)
        try:
            return await area_levels(pool, now)
        finally:
            await pool.close()

    return {(lv.circle_id, lv.necessity): lv for lv in asyncio.run(run())}


def latest(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    with connect(url) as conn:
        rows = conn.execute("SELECT * FROM circle_levels_latest").fetchall()
    return {(r["circle_id"], r["necessity"]): r for r in rows}


def check(row: dict[str, Any], **expected: Any) -> None:
    """Every column of a circle_levels_latest row against its hand-worked value (floats to 1e-9)."""
    assert set(row) == set(expected) | {"circle_id", "necessity"}, sorted(set(row) ^ set(expected))
    for name, value in expected.items():
        got = row[name]
        if isinstance(value, float) and got is not None:
            assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (row["circle_id"], row["necessity"], name)
        else:
            assert got == value, (row["circle_id"], row["necessity"], name, got, value)


def test_every_number_of_circle_levels_latest(database_url: str) -> None:
    url = database_url
    active_since = build_city(url)
    now = active_since + 2 * H

    write(url, reports(now, active_since), partition=0)
    with connect(url) as conn:
        lines = conn.execute(
            "SELECT quantity FROM outlet_reports WHERE outlet_id = 'SA1' AND necessity = 'rice' ORDER BY quantity"
        ).fetchall()
        stock = conn.execute("SELECT quantity FROM outlet_stock WHERE outlet_id = 'SA1' AND necessity = 'rice'")
        assert [r["quantity"] for r in lines] == [200, 300]  # both pack sizes stored...
        assert stock.fetchone() == {"quantity": 500}  # ... and one stock

    levels = refresh(url, now, Lag(reports=7, seconds=1.5))
    assert len(levels) == 6
    rows = latest(url)
    assert set(rows) == {(c, n) for c, _ in CIRCLES for n in ("rice", "milk")}
    # The first level of every series is history too: recorded when computed.
    common = {"computed_at": now, "recorded_at": now, "lag_reports": 7, "lag_s": 1.5, "grade": None}

    # A rice. Expected: SA1, KA1, KA2 (PA1 is a pharmacy, DA1 inactive) = 3, all fresh: coverage 3/3 = 1.
    # Confirmed stock 500 (SA1) + 40 (KA1) + 60 (KA2) + 10 (PA1) = 610; nothing unconfirmed: stock share 1.
    # No sold_24h: demand 1,000 x 0.25 = 250 kg/day; 610 / 250 = 2.44 days < 3: SHORTAGE.
    check(
        rows[("A", "rice")],
        **common,
        stock=610.0,
        stock_unconfirmed=0.0,
        unconfirmed_age_s=None,
        daily_demand=250.0,
        demand_source="population",
        demand_observed=None,
        demand_observed_recent=None,
        days_of_supply=2.44,
        coverage=1.0,
        coverage_stock=1.0,
        outlets_expected=3,
        outlets_fresh=3,
        status="SHORTAGE",
    )
    # A milk. Fresh: SA1 120 + KA1 10 = 130; KA2's 8 L is 24 h old (> 12 h): unconfirmed, age 86,400 s.
    # Coverage 2/3; stock share 130 / 138. Demand 1,000 x 0.10 = 100 L/day; 1.3 days < 2: SHORTAGE.
    check(
        rows[("A", "milk")],
        **common,
        stock=130.0,
        stock_unconfirmed=8.0,
        unconfirmed_age_s=86400.0,
        daily_demand=100.0,
        demand_source="population",
        demand_observed=None,
        demand_observed_recent=None,
        days_of_supply=1.3,
        coverage=2 / 3,
        coverage_stock=130 / 138,
        outlets_expected=3,
        outlets_fresh=2,
        status="SHORTAGE",
    )
    # B rice. Expected: SA1, SB1, KB1, RB1, RB2 = 5. RB1's 700 kg was reported before its reactivation:
    # gone for good. Fresh: SA1 500 + SB1 1,000 + KB1 100 + RB2 50 = 1,650 (4 outlets: coverage 0.8).
    # sold_24h from SB1 150 + KB1 20 = 170, sent by outlets holding 1,100 of 1,650 (2/3 >= 1/2):
    # observed demand 170 / (2/3) = 255 kg/day (the first computation: the median of one rate);
    # 1,650 / 255 = 6.47 days: WATCH.
    check(
        rows[("B", "rice")],
        **common,
        stock=1650.0,
        stock_unconfirmed=0.0,
        unconfirmed_age_s=None,
        daily_demand=255.0,
        demand_source="observed",
        demand_observed=255.0,
        demand_observed_recent=[255.0],
        days_of_supply=1650 / 255,
        coverage=0.8,
        coverage_stock=1.0,
        outlets_expected=5,
        outlets_fresh=4,
        status="WATCH",
    )
    # B milk. Fresh: SA1 120 + KB1 20 + RB2 5 = 145 (3 of 5: 0.6); SB1's 200 L is 13 h old: unconfirmed,
    # age 46,800 s; stock share 145 / 345 = 0.42 < 0.5: STALE. sold_24h only from KB1 (20 of 145 L, < 1/2):
    # population demand 2,000 x 0.10 = 200; 145 / 200 = 0.725 days would read CRITICAL, falsely.
    check(
        rows[("B", "milk")],
        **common,
        stock=145.0,
        stock_unconfirmed=200.0,
        unconfirmed_age_s=46800.0,
        daily_demand=200.0,
        demand_source="population",
        demand_observed=None,
        demand_observed_recent=None,
        days_of_supply=0.725,
        coverage=0.6,
        coverage_stock=145 / 345,
        outlets_expected=5,
        outlets_fresh=3,
        status="STALE",
    )
    # C rice: the silent supermarket next to reporting kiosks. Fresh 3 x 20 = 60 (3 of 4 outlets: 0.75,
    # enough); SC1's 5,000 kg is 30 h old: unconfirmed, age 108,000 s; stock share 60 / 5,060 < 0.5: STALE,
    # where 60 / (400 x 0.25 = 100) = 0.6 days would have read CRITICAL.
    check(
        rows[("C", "rice")],
        **common,
        stock=60.0,
        stock_unconfirmed=5000.0,
        unconfirmed_age_s=108000.0,
        daily_demand=100.0,
        demand_source="population",
        demand_observed=None,
        demand_observed_recent=None,
        days_of_supply=0.6,
        coverage=0.75,
        coverage_stock=60 / 5060,
        outlets_expected=4,
        outlets_fresh=3,
        status="STALE",
    )
    # C milk: nobody reported: nothing known (both coverages 0), 0 / 40 = 0 days, STALE.
    check(
        rows[("C", "milk")],
        **common,
        stock=0.0,
        stock_unconfirmed=0.0,
        unconfirmed_age_s=None,
        daily_demand=40.0,
        demand_source="population",
        demand_observed=None,
        demand_observed_recent=None,
        days_of_supply=0.0,
        coverage=0.0,
        coverage_stock=0.0,
        outlets_expected=4,
        outlets_fresh=0,
        status="STALE",
    )

    # Recomputing at the same moment writes nothing new and changes nothing.
    refresh(url, now, Lag(reports=7, seconds=1.5))
    assert latest(url) == rows

    # An hour later: KA1 is deactivated, KB1 sends a new rice report (more sold), nobody else reports.
    with connect(url) as conn:
        conn.execute("UPDATE outlets SET active = false WHERE id = 'KA1'")
    write(url, [("KB1", now + timedelta(minutes=10), [("rice", 100.0, 45.0)])], partition=1)
    later = now + H
    refresh(url, later)
    rows2 = latest(url)
    common2 = {"computed_at": later, "recorded_at": later, "lag_reports": None, "lag_s": None, "grade": None}
    # A rice: KA1's 40 kg left with it; KA2's 60 kg is now 25 h old: unconfirmed (age 90,000 s).
    # Expected SA1, KA2 = 2, fresh SA1 only: 0.5 (just enough). Stock 500 + 10 (PA1) = 510;
    # share 510 / 570. 510 / 250 = 2.04 days: SHORTAGE.
    check(
        rows2[("A", "rice")],
        **common2,
        stock=510.0,
        stock_unconfirmed=60.0,
        unconfirmed_age_s=90000.0,
        daily_demand=250.0,
        demand_source="population",
        demand_observed=None,
        demand_observed_recent=None,
        days_of_supply=2.04,
        coverage=0.5,
        coverage_stock=510 / 570,
        outlets_expected=2,
        outlets_fresh=1,
        status="SHORTAGE",
    )
    # B rice: stock unchanged (1,650); sold 150 + 45 = 195 over the same 2/3 share: raw 292.5 kg/day.
    # Observed demand is the median of this computation's rate and the one before (255): 273.75;
    # 1,650 / 273.75 = 6.03 days: WATCH.
    median = (255 + 292.5) / 2
    check(
        rows2[("B", "rice")],
        **common2,
        stock=1650.0,
        stock_unconfirmed=0.0,
        unconfirmed_age_s=None,
        daily_demand=median,
        demand_source="observed",
        demand_observed=median,
        demand_observed_recent=[255.0, 292.5],
        days_of_supply=1650 / median,
        coverage=0.8,
        coverage_stock=1.0,
        outlets_expected=5,
        outlets_fresh=4,
        status="WATCH",
    )
    with connect(url) as conn:
        history = conn.execute("SELECT circle_id, necessity, computed_at FROM circle_levels").fetchall()
    assert len(history) == 12  # two computations of 6 levels; the repeat at `now` added nothing


def test_area_totals_count_an_outlet_serving_two_circles_once(database_url: str) -> None:
    url = database_url
    active_since = build_city(url)
    now = active_since + 2 * H
    write(url, reports(now, active_since), partition=0)

    circles = {(lv.circle_id, lv.necessity): lv for lv in refresh(url, now)}
    assert circles[("A", "rice")].stock + circles[("B", "rice")].stock == 610 + 1650  # SA1's 500 in both

    got = areas(url, now)
    assert set(got) == {(a, n) for a in (CITY, "D1", "D2") for n in ("rice", "milk")}
    d1 = got[("D1", "rice")]
    # D1 = A-1 and B-1 outlets, each once: SA1 500 + KA1 40 + KA2 60 + PA1 10 + SB1 1,000 + KB1 100 + RB2 50
    # = 1,760 (not 2,260). Expected SA1, KA1, KA2, SB1, KB1, RB1, RB2 = 7; fresh all but RB1 = 6.
    # sold 170 from outlets holding 1,100 of 1,760 (0.625): observed 170 / 0.625 = 272 kg/day;
    # 1,760 / 272 = 6.47 days: WATCH.
    assert (d1.stock, d1.stock_unconfirmed, d1.unconfirmed_age_s) == (1760, 0, None)
    assert (d1.outlets_expected, d1.outlets_fresh) == (7, 6)
    assert d1.coverage == pytest.approx(6 / 7) and d1.coverage_stock == 1.0
    assert d1.demand_source == "observed" and d1.daily_demand == pytest.approx(272)
    assert d1.days_of_supply == pytest.approx(1760 / 272) and d1.status == "WATCH"
    # D2 = circle C: 60 fresh, 5,000 unconfirmed (30 h), population 400: STALE as the circle.
    d2 = got[("D2", "rice")]
    assert (d2.stock, d2.stock_unconfirmed, d2.unconfirmed_age_s) == (60, 5000, 108000)
    assert (d2.outlets_expected, d2.outlets_fresh, d2.daily_demand) == (4, 3, pytest.approx(100))
    assert d2.status == "STALE"
    # The city: 1,760 + 60 = 1,820 fresh, 5,000 unconfirmed; 11 expected, 9 fresh; population 3,400.
    # Stock share 1,820 / 6,820 < 0.5: STALE. Observed: 170 over 1,100 / 1,820 of fresh stock = 281.27.
    city = got[(CITY, "rice")]
    assert (city.stock, city.stock_unconfirmed, city.unconfirmed_age_s) == (1820, 5000, 108000)
    assert (city.outlets_expected, city.outlets_fresh) == (11, 9)
    assert city.coverage == pytest.approx(9 / 11) and city.coverage_stock == pytest.approx(1820 / 6820)
    assert city.daily_demand == pytest.approx(170 * 1820 / 1100) and city.status == "STALE"
    # Milk in D1: fresh SA1 120 + KA1 10 + KB1 20 + RB2 5 = 155 (SA1 once); unconfirmed KA2 8 + SB1 200,
    # the oldest KA2's (24 h). Population 3,000 x 0.10 = 300 L/day (sold_24h only from KB1's 20 of 155).
    milk = got[("D1", "milk")]
    assert (milk.stock, milk.stock_unconfirmed, milk.unconfirmed_age_s) == (155, 208, 86400)
    assert milk.demand_source == "population" and milk.daily_demand == pytest.approx(300)


def test_demo_city_circle_whose_supermarkets_stop_reporting_turns_stale(database_url: str) -> None:
    """The issue's case on the demo city: a circle's supermarkets go silent while its kiosks and markets report.

    The simulator gives each supermarket about ten times a kiosk's stock, so after a day and an hour the
    silent supermarkets hold most of the circle's last known stock: the outlet coverage alone would still
    pass (most outlets report), the stock-weighted coverage does not, and the circle is STALE, not OK.
    """
    url = database_url
    seed_demo(url, progress=lambda line: None)
    city = build_demo_city()
    sim = Simulator(city, Scenario(short_from_s=math.inf))  # no scripted shortage here
    silent = {o.id for o in city.outlets if o.business_type == "supermarket" and "C05" in o.circle_ids}
    start = datetime.now(UTC).replace(microsecond=0)

    def stock_round(at: datetime, skip: set[str]) -> None:
        with connect(url) as conn, conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE round (outlet_id text, necessity text, quantity float8, sold_24h float8, "
                "reported_at timestamptz) ON COMMIT DROP"
            )
            with cur.copy("COPY round FROM STDIN") as copy:
                for records in sim.records(0.0, at).values():
                    for r in records:
                        per = 0.5 if r["unit"] == "斤" else 1.0  # vegetable markets count rice in jin
                        if r["outlet_id"] not in skip:
                            copy.write_row(
                                (r["outlet_id"], r["necessity"], r["quantity"] * per, r["sold_24h"] * per, at)
                            )
            cur.execute(
                "INSERT INTO outlet_stock (outlet_id, necessity, quantity, sold_24h, reported_at) SELECT * FROM round "
                "ON CONFLICT (outlet_id, necessity) DO UPDATE SET quantity = EXCLUDED.quantity, "
                "sold_24h = EXCLUDED.sold_24h, reported_at = EXCLUDED.reported_at"
            )

    stock_round(start, set())
    before = {(lv.circle_id, lv.necessity): lv for lv in refresh(url, start + timedelta(seconds=1))}
    assert all(lv.status == "OK" for lv in before.values())
    later = start + 25 * H
    stock_round(later, silent)
    after = {(lv.circle_id, lv.necessity): lv for lv in refresh(url, later + timedelta(seconds=1))}
    rice = after[("C05", "rice")]
    assert len(silent) >= 10
    assert rice.coverage >= 0.5, "most of its outlets report: outlet coverage alone would say OK"
    assert rice.coverage_stock < 0.5 and rice.stock_unconfirmed > rice.stock
    assert rice.unconfirmed_age_s == 25 * 3600 + 1  # reported at `start`, computed a second after `later`
    assert rice.status == "STALE"
    # Circles whose supermarkets all report (none of them serves C05) stay OK.
    assert after[("C01", "rice")].status == "OK"
