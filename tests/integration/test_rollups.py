"""Rollups and retention on the real database: a small history built here, numbers by hand (both engines).

Circle A, rice; Shanghai days start at 16:00 UTC the day before. Levels (UTC):

    Feb 29 16:10  days 5    stock 100  unconfirmed 10  coverage .8  coverage_stock .9   OK
    Feb 29 16:40  days 2    stock  40  unconfirmed 20  coverage .6  coverage_stock .7   SHORTAGE
    Feb 29 17:20  days -    stock   0  unconfirmed  0  coverage 0   coverage_stock -    STALE
    Mar  1 15:50  days 4    stock  80  unconfirmed  0  coverage .9  coverage_stock .9   WATCH     (23:50 in Shanghai)
    Mar  1 16:30  days 8    stock 160  unconfirmed  0  coverage 1   coverage_stock 1    OK        (next day there)
    Mar  2 16:30  days 0.5  stock  10  unconfirmed  5  coverage .5  coverage_stock .5   CRITICAL

Prices of rice on Mar 1 (Shanghai): O1 (serves A and B) 5 and 6, O2 (serves A) 4 and 9.
Feed health of s1: 16:05 http 10/1/2/0 and kafka 5/0/0/1, 16:59 http 3/2/0/0, 17:00 http 7/0/0/0
(accepted/rejected/duplicates/dead-lettered).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from baogong.cli import main
from schema.db import connect
from schema.maintain import Report, engine, maintain

LEVELS = (
    (datetime(2024, 2, 29, 16, 10, tzinfo=UTC), 5.0, 100.0, 10.0, 0.8, 0.9, "OK"),
    (datetime(2024, 2, 29, 16, 40, tzinfo=UTC), 2.0, 40.0, 20.0, 0.6, 0.7, "SHORTAGE"),
    (datetime(2024, 2, 29, 17, 20, tzinfo=UTC), None, 0.0, 0.0, 0.0, None, "STALE"),
    (datetime(2024, 3, 1, 15, 50, tzinfo=UTC), 4.0, 80.0, 0.0, 0.9, 0.9, "WATCH"),
    (datetime(2024, 3, 1, 16, 30, tzinfo=UTC), 8.0, 160.0, 0.0, 1.0, 1.0, "OK"),
    (datetime(2024, 3, 2, 16, 30, tzinfo=UTC), 0.5, 10.0, 5.0, 0.5, 0.5, "CRITICAL"),
)
PRICES = (("O1", 1, 5.0), ("O1", 3, 6.0), ("O2", 2, 4.0), ("O2", 4, 9.0))  # outlet, hour UTC on Mar 1, price
FEED = (
    (16, 5, "http", 10, 1, 2, 0),
    (16, 5, "kafka", 5, 0, 0, 1),
    (16, 59, "http", 3, 2, 0, 0),
    (17, 0, "http", 7, 0, 0, 0),
)
RECEIVED = datetime(2024, 3, 3, tzinfo=UTC)
DAY1 = datetime(2024, 2, 29, 16, tzinfo=UTC)  # Mar 1 00:00 in Shanghai
NOW = datetime(2024, 3, 4, 16, tzinfo=UTC)
KEEP = {"retention_days": 1000, "hourly_days": 1000, "daily_days": 1000}


def level(
    conn: Any,
    at: datetime,
    days: float | None,
    stock: float,
    unconfirmed: float,
    coverage: float,
    coverage_stock: float | None,
    status: str,
) -> None:
    conn.execute(
        "INSERT INTO circle_levels (computed_at, circle_id, necessity, stock, stock_unconfirmed, daily_demand, "
        "days_of_supply, coverage, coverage_stock, outlets_expected, outlets_fresh, status) "
        "VALUES (%s, 'A', 'rice', %s, %s, 20, %s, %s, %s, 2, 1, %s)",
        (at, stock, unconfirmed, days, coverage, coverage_stock, status),
    )


def price(conn: Any, outlet: str, at: datetime, value: float, received: datetime = RECEIVED) -> None:
    conn.execute(
        "INSERT INTO prices (reported_at, outlet_id, necessity, price, supplier_id, received_at) "
        "VALUES (%s, %s, 'rice', %s, 's1', %s)",
        (at, outlet, value, received),
    )


@pytest.fixture
def history(database_url: str) -> str:
    with connect(database_url) as conn:
        conn.execute("INSERT INTO business_types VALUES ('supermarket', '超市', 'supermarket', 'basic')")
        conn.execute("INSERT INTO suppliers (id, name, kind) VALUES ('s1', 'Test chain', 'chain')")
        for circle in ("A", "B"):
            conn.execute(
                "INSERT INTO circles (id, name, center_lat, center_lon) VALUES (%s, %s, 46.6, 126.9)", (circle, circle)
            )
        conn.execute("INSERT INTO communities VALUES ('A-1', 'A-1', 'st', 1000, 'A')")
        for outlet, circles in (("O1", ("A", "B")), ("O2", ("A",))):
            conn.execute(
                "INSERT INTO outlets (id, name, business_type, supplier_id, community_id, lat, lon) "
                "VALUES (%s, %s, 'supermarket', 's1', 'A-1', 46.6, 126.9)",
                (outlet, outlet),
            )
            for circle in circles:
                conn.execute("INSERT INTO outlet_circles VALUES (%s, %s)", (outlet, circle))
        for row in LEVELS:
            level(conn, *row)
        for outlet, hour, value in PRICES:
            price(conn, outlet, datetime(2024, 3, 1, hour, tzinfo=UTC), value)
        for hour, minute, source, *counts in FEED:
            conn.execute(
                "INSERT INTO feed_health VALUES ('s1', %s, %s, %s, %s, %s, %s)",
                (datetime(2024, 2, 29, hour, minute, tzinfo=UTC), source, *counts),
            )
    return database_url


def rows(url: str, table: str, order: str = "2, 3, 1") -> list[dict[str, Any]]:
    with connect(url) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()  # type: ignore[arg-type]


def plain(url: str) -> bool:
    """Whether the rollups are the plain engine's tables (else TimescaleDB's continuous aggregates)."""
    with connect(url) as conn:
        return engine(conn).rollups == "r"


def needs_plain(url: str) -> None:
    """This history is from 2024: TimescaleDB's retention policies, counting from the server's clock, drop it
    (tests/integration/test_timescaledb.py checks its aggregates against the plain engine's on recent rows)."""
    if not plain(url):
        pytest.skip("a history from 2024 is past TimescaleDB's retention, which counts from the server's clock")


def refreshed(report: Report) -> dict[str, int]:
    return {
        s.what.split(" since")[0]: s.rows or 0
        for s in report.steps
        if not s.what.startswith(("delete", "create partition", "drop partition"))
    }


def test_rollups_hold_the_numbers_worked_out_by_hand(history: str) -> None:
    needs_plain(history)
    first = maintain(history, now=NOW, **KEEP)
    assert first.ok and first.engine == "plain PostgreSQL", first.render()
    assert refreshed(first) == {
        "circle_levels_hourly": 5,
        "circle_levels_daily": 3,
        "prices_daily": 2,
        "feed_health_hourly": 2,
    }

    hourly = {r["bucket"]: r for r in rows(history, "circle_levels_hourly")}
    h16 = hourly[DAY1]
    assert (h16["days_min"], h16["days_avg"], h16["days_max"], h16["days_last"]) == (2.0, 3.5, 5.0, 2.0)
    assert (h16["stock_avg"], h16["stock_unconfirmed_avg"]) == (70.0, 15.0)
    assert (h16["coverage_min"], h16["coverage_stock_min"]) == (0.6, 0.7)
    assert (h16["status_worst"], h16["samples"], h16["days_samples"]) == ("SHORTAGE", 2, 2)
    h17 = hourly[DAY1 + timedelta(hours=1)]
    assert (h17["days_min"], h17["days_avg"], h17["days_last"], h17["status_worst"]) == (None, None, None, "STALE")
    assert (h17["samples"], h17["days_samples"], h17["coverage_stock_min"]) == (1, 0, None)

    daily = rows(history, "circle_levels_daily")
    assert [d["bucket"] for d in daily] == [DAY1, DAY1 + timedelta(days=1), DAY1 + timedelta(days=2)]
    d1 = daily[0]  # the four levels before Mar 1 16:00 UTC, 23:50 in Shanghai included
    assert (d1["days_min"], d1["days_max"], d1["days_last"]) == (2.0, 5.0, 4.0)
    assert d1["days_avg"] == pytest.approx(11 / 3)
    assert (d1["stock_avg"], d1["stock_unconfirmed_avg"]) == (pytest.approx(55.0), pytest.approx(7.5))
    assert (d1["coverage_min"], d1["coverage_stock_min"]) == (0.0, 0.7)
    assert (d1["status_worst"], d1["samples"], d1["days_samples"]) == ("SHORTAGE", 4, 3)
    assert [(d["status_worst"], d["days_last"], d["samples"]) for d in daily[1:]] == [
        ("OK", 8.0, 1),
        ("CRITICAL", 0.5, 1),
    ]

    prices = {r["circle_id"]: r for r in rows(history, "prices_daily")}
    a, b = prices["A"], prices["B"]
    assert a["bucket"] == b["bucket"] == DAY1
    assert (a["price_median"], a["price_min"], a["price_max"], a["outlets"], a["reports"]) == (5.5, 4.0, 9.0, 2, 4)
    assert (b["price_median"], b["price_min"], b["price_max"], b["outlets"], b["reports"]) == (5.5, 5.0, 6.0, 1, 2)

    feed = [
        (r["bucket"], r["accepted"], r["rejected"], r["duplicates"], r["dead_lettered"])
        for r in rows(history, "feed_health_hourly", "bucket")
    ]
    assert feed == [(DAY1, 18, 3, 2, 1), (DAY1 + timedelta(hours=1), 7, 0, 0, 0)]

    before = {t: rows(history, t) for t in ("circle_levels_hourly", "circle_levels_daily", "prices_daily")}
    again = maintain(history, now=NOW, **KEEP)
    assert set(refreshed(again).values()) == {0}
    assert {t: rows(history, t) for t in before} == before


def test_new_rows_in_a_rolled_bucket_are_picked_up(history: str) -> None:
    needs_plain(history)
    maintain(history, now=NOW, **KEEP)
    with connect(history) as conn:
        level(conn, datetime(2024, 3, 2, 16, 50, tzinfo=UTC), 1.5, 30.0, 0.0, 0.5, 0.5, "CRITICAL")
        # A price reported for Mar 1 that arrives two days later: found by received_at, its old day recomputed.
        price(conn, "O2", datetime(2024, 3, 1, 5, tzinfo=UTC), 10.0, received=RECEIVED + timedelta(days=2))

    report = maintain(history, now=NOW, **KEEP)
    assert refreshed(report) == {
        "circle_levels_hourly": 1,
        "circle_levels_daily": 1,
        "prices_daily": 1,
        "feed_health_hourly": 0,
    }
    last_hour = rows(history, "circle_levels_hourly")[-1]
    assert (last_hour["days_min"], last_hour["days_avg"], last_hour["days_last"], last_hour["samples"]) == (
        0.5,
        1.0,
        1.5,
        2,
    )
    assert rows(history, "circle_levels_daily")[-1]["samples"] == 2
    a = next(r for r in rows(history, "prices_daily") if r["circle_id"] == "A")
    assert (a["price_median"], a["price_max"], a["reports"]) == (6.0, 10.0, 5)


def test_retention_deletes_old_raw_rows_and_keeps_rollups(history: str) -> None:
    needs_plain(history)
    maintain(history, now=NOW, **KEEP)
    with connect(history) as conn:
        for at in (datetime(2024, 2, 29, 12, tzinfo=UTC), datetime(2024, 3, 3, 12, tzinfo=UTC)):
            conn.execute(
                "INSERT INTO outlet_reports (reported_at, outlet_id, necessity, quantity, supplier_id, received_at) "
                "VALUES (%s, 'O1', 'rice', 10, 's1', %s)",
                (at, at),
            )
    rollups = {t: rows(history, t) for t in ("circle_levels_hourly", "circle_levels_daily", "prices_daily")}

    # Raw history 3 days (cutoff Mar 1 16:00 UTC), hourly rollups 3 days too, daily ones kept. Raw tables are
    # partitioned (0018): the first run gave the levels one partition per day, prices and feed health one for
    # the week from Feb 26; only partitions ending by the cutoff go whole, and old rows left in a default
    # partition (the Feb 29 report, inserted after that run) are deleted (tests/integration/test_partitions.py).
    report = maintain(history, now=NOW, retention_days=3, hourly_days=3, daily_days=1000)
    deleted = {s.what.split(" before")[0]: s.rows for s in report.steps if s.what.startswith(("delete", "drop"))}
    assert deleted == {
        "drop partition circle_levels_p20240229": 3,
        "delete circle_levels_default": 0,
        "delete outlet_reports_default": 1,
        "delete prices_default": 0,
        "delete feed_health_default": 0,
        "delete circle_levels_hourly": 3,
        "delete feed_health_hourly": 2,
        "delete circle_levels_daily": 0,
        "delete prices_daily": 0,
    }
    with connect(history) as conn:
        left = conn.execute("SELECT computed_at FROM circle_levels ORDER BY 1").fetchall()
        reports = conn.execute("SELECT reported_at FROM outlet_reports").fetchall()
    assert [r["computed_at"] for r in left] == [LEVELS[3][0], LEVELS[4][0], LEVELS[5][0]]  # Mar 1's partition stays
    assert [r["reported_at"] for r in reports] == [datetime(2024, 3, 3, 12, tzinfo=UTC)]
    assert rows(history, "circle_levels_daily") == rollups["circle_levels_daily"]
    assert rows(history, "prices_daily") == rollups["prices_daily"]
    assert rows(history, "circle_levels_hourly") == rollups["circle_levels_hourly"][-2:]  # Mar 1 16:00 on


def test_migrate_says_which_engine(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BAOGONG_DATABASE_URL", database_url)
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert "0 migration(s) applied now" in out
    with connect(database_url) as conn:
        found = engine(conn)
    if found.timescaledb:
        assert "engine: TimescaleDB: hypertables with compression and retention policies" in out
        assert (found.rollups, found.name) == ("v", "timescaledb")
    else:
        assert "engine: plain PostgreSQL: rollups are tables refreshed by `baogong maintain`" in out
        assert (found.rollups, found.name) == ("r", "postgresql")
