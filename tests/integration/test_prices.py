"""Price levels, grades and gouging leads on the real database (schema/price_store.py, `baogong prices`).

The tiny city (circle T1, outlets O1–O3) with 27 days of rice prices at 5.00 per outlet, the older days
rolled up by the real `baogong maintain` code into prices_daily; then today's prices, graded as of noon
(Asia/Shanghai) today. Every number is worked out by hand.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from baogong.settings import Settings
from schema.db import connect
from schema.maintain import maintain
from schema.price_store import TZ, latest_levels, leads, outlet_history, refresh, rules_from, shanghai_day
from tests.support import seed_tiny_city

SETTINGS = Settings(price_fresh_h=24.0)
RULES = rules_from(SETTINGS)


def noon_today() -> datetime:
    today = datetime.now(UTC).astimezone(TZ).date()
    return datetime(today.year, today.month, today.day, 12, tzinfo=TZ)


def put_prices(url: str, rows: list[tuple[datetime, str, str, float]]) -> None:
    with connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO prices (reported_at, outlet_id, necessity, price, supplier_id, received_at) "
            "VALUES (%s, %s, %s, %s, 's1', now())",
            rows,
        )


def history(url: str, now: datetime, days: int = 27, price: float = 5.0) -> None:
    """One rice price per outlet per day at 10:00 for `days` days before today; then the rollup refresh."""
    put_prices(
        url,
        [(now - timedelta(days=d, hours=2), o, "rice", price) for d in range(1, days + 1) for o in ("O1", "O2", "O3")],
    )
    maintain(url, now=datetime.now(UTC), retention_days=35, hourly_days=180, daily_days=1095)


def test_spike_graded_both_ways_stored_with_a_gouging_lead(database_url: str) -> None:
    seed_tiny_city(database_url)
    now = noon_today()
    history(database_url, now)
    with connect(database_url) as conn:
        rolled = conn.execute("SELECT count(*) AS n FROM prices_daily WHERE circle_id = 'T1'").fetchone()
    assert rolled is not None and rolled["n"] == 27  # the older history is read from the rollup
    # today: O1 7.00, O2 7.00, O3 12.00 -> median 7.00, +40 % on yesterday's 5.00 (plan IV: > 30 % in a day);
    # baseline 5.00 over 27 days, sd floor 0.25 -> deviation 2.00 / 0.25 = 8 -> CRISIS.
    # O3 at 12.00 > 7.00 x 1.5 = 10.50: a gouging lead (x1.71).
    put_prices(
        database_url,
        [
            (now - timedelta(minutes=m), o, "rice", p)
            for o, p, m in (("O1", 7.0, 30), ("O2", 7.0, 20), ("O3", 12.0, 10))
        ],
    )
    with connect(database_url) as conn:
        done = refresh(conn, now, RULES, SETTINGS.price_fresh_h)
    by_scope = {(lv.circle_id, lv.necessity): lv.grade for lv in done.levels}
    t1 = by_scope[("T1", "rice")]
    assert (t1.price, t1.baseline, t1.history_days) == (7.0, 5.0, 27)
    assert t1.deviation == pytest.approx(8.0) and t1.phase.value == "CRISIS"
    assert t1.rise_day == pytest.approx(0.4) and t1.plan_grade == "IV"
    city = by_scope[("*", "rice")]  # the city: the same three outlets
    assert city.price == 7.0 and city.plan_grade == "IV"
    assert [(lead.outlet_id, round(lead.ratio, 2)) for lead in done.leads] == [("O3", 1.71)]

    with connect(database_url) as conn:
        stored = {(r["circle_id"], r["necessity"]): r for r in latest_levels(conn)}
        found = leads(conn, shanghai_day(now))
        hist = outlet_history(conn, "O3", "rice", "T1", now - timedelta(days=3))
    row = stored[("T1", "rice")]
    assert (row["phase"], row["plan_grade"], row["spiking"], row["stale"]) == ("CRISIS", "IV", True, False)
    assert row["day"] == shanghai_day(now) and row["baseline_kind"] == "rolling"
    assert [(r["outlet_id"], r["price"], r["circle_price"]) for r in found] == [("O3", 12.0, 7.0)]
    assert [(h["last"], h["circle_price"]) for h in hist][-2:] == [(5.0, None), (12.0, 7.0)]

    # the same pass again stores the same: one row per scope, necessity and day; one lead row
    with connect(database_url) as conn:
        refresh(conn, now, RULES, SETTINGS.price_fresh_h)
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM price_levels) AS levels, (SELECT count(*) FROM price_leads) AS leads"
        ).fetchone()
    assert counts == {"levels": 2, "leads": 1}


def test_no_fresh_prices_is_stale_unknown_not_normal(database_url: str) -> None:
    seed_tiny_city(database_url)
    now = noon_today()
    history(database_url, now, days=5)  # the last report yesterday 10:00; a 1-hour freshness window
    with connect(database_url) as conn:
        done = refresh(conn, now, RULES, fresh_h=1.0)
    t1 = next(lv.grade for lv in done.levels if lv.circle_id == "T1")
    assert t1.stale and t1.phase.value == "UNKNOWN" and t1.plan_grade == "UNKNOWN" and not t1.spiking
    assert t1.baseline is None and t1.history_days == 5  # fewer than 7 days: no baseline either


def test_cli_leads_lists_the_outlet_with_its_history(database_url: str, tmp_path: Path) -> None:
    seed_tiny_city(database_url)
    now = datetime.now(UTC)
    history(database_url, now, days=10)
    put_prices(
        database_url, [(now - timedelta(minutes=5), o, "rice", p) for o, p in (("O1", 7.0), ("O2", 7.0), ("O3", 12.0))]
    )
    env = {**Settings(database_url=database_url).env()}  # type: ignore[arg-type]
    run = [sys.executable, "-m", "baogong.cli", "prices"]
    refreshed = subprocess.run([*run, "refresh"], env=env, capture_output=True, text=True, timeout=60)
    assert refreshed.returncode == 0, refreshed.stderr
    assert "2 spiking" in refreshed.stdout and "1 gouging leads" in refreshed.stdout
    listed = subprocess.run(
        [*run, "leads", "--circle", "T1", "--necessity", "rice"], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert "O3" in listed.stdout and "12.00" in listed.stdout and "vs circle median 7.00" in listed.stdout
    assert "low 5.00" in listed.stdout  # its history: the days before the spike
    none = subprocess.run([*run, "leads", "--circle", "T9"], env=env, capture_output=True, text=True, timeout=60)
    assert none.returncode == 0 and "no gouging leads" in none.stdout


def test_seed_history_gives_every_circle_a_calm_baseline(database_url: str) -> None:
    from schema.history_seed import seed_history
    from schema.seed import seed_demo

    seed_demo(database_url, progress=lambda _line: None)
    now = datetime.now(UTC)
    done = seed_history(database_url, 60, now)
    assert done.prices > 0 and done.levels == 60 * 24 * 10 * 12  # 10 circles x 12 necessities, hourly
    with connect(database_url) as conn:
        graded = refresh(conn, now, RULES, fresh_h=24 * 60)  # the last seeded prices (yesterday) count as current
        daily = conn.execute("SELECT count(DISTINCT bucket) AS n FROM prices_daily").fetchone()
    assert daily is not None and daily["n"] == 60  # older days are read from the rollup
    circles = [lv for lv in graded.levels if lv.circle_id != "*"]
    assert len({lv.circle_id for lv in circles}) == 10
    assert all(lv.grade.baseline_kind == "rolling" and lv.grade.history_days == 28 for lv in graded.levels)
    # yesterday's own prices against a 28-day baseline with a weekly shape: no plan grade, no crisis
    assert all(lv.grade.plan_grade == "NONE" for lv in graded.levels)
    assert not [lv for lv in graded.levels if lv.grade.phase.value == "CRISIS"]


def test_the_daily_report_has_the_price_section(database_url: str, tmp_path: Path) -> None:
    from baogong.report import write_report

    seed_tiny_city(database_url)
    now = noon_today()
    history(database_url, now)
    put_prices(
        database_url, [(now - timedelta(minutes=5), o, "rice", p) for o, p in (("O1", 7.0), ("O2", 7.0), ("O3", 12.0))]
    )
    with connect(database_url) as conn:
        refresh(conn, now, RULES, SETTINGS.price_fresh_h)
    text = write_report(database_url, shanghai_day(now), tmp_path, now=now, progress=lambda _: None).read_text("utf-8")
    section = text[text.index("六、价格监测") :]
    assert "危机" in section and "IV级" in section and "+40%" in section  # T1 and the city, both grades
    assert "哄抬价格线索 1 条" in section and "12.00" in section and "1.71" in section  # O3's lead
