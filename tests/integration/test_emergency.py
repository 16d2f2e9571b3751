"""Emergencies on the real PostgreSQL: declared, overlapping, lifted, with the levels' numbers worked out
by hand; the operators' HTTP endpoints on a real socket; `baogong emergency` as an operator runs it.

The city (built here): circles A and B in district D1, C in D2, 1,000 residents each; one supermarket
each (SA, SB, SC). rice: 0.25 kg/person/day, watch 7 / shortage 3 / critical 1 days, fresh for 24 h;
milk: 0.10 L, 4 / 2 / 1 days, fresh for 12 h; both min coverage 0.5. No sold_24h: demand is population
x per capita (rice 250 kg/day, milk 100 L/day per circle in normal times).

    outlet  reported    rice     milk
    SA      NOW - 9 h   1,500    300
    SB      NOW - 9 h   1,500    300
    SC      NOW - 1 h   1,500    300

Normal times: rice 1,500 / 250 = 6 days (WATCH, < 7); milk 300 / 100 = 3 days (WATCH, < 4).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from baogong.settings import Settings
from schema.db import ConstraintViolation, connect, make_pool
from schema.emergency import Grade, Scope
from schema.emergency_store import (
    circle_grades,
    create_operator_key,
    declare,
    lift,
    list_emergencies,
    revoke_operator_key,
)
from schema.keys import new_key
from streams.circles import level_message, refresh_levels
from streams.levels import CircleLevel
from tests.integration.test_acting import served
from tests.integration.test_level_sql import write

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
M10 = timedelta(minutes=10)


def build_city(url: str) -> None:
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO business_types (code, name_zh, name_en, category) "
            "VALUES ('supermarket', '超市', 'supermarket', 'basic')"
        )
        conn.execute(
            "INSERT INTO necessities (code, name_zh, name_en, unit, per_capita_daily, watch_days, shortage_days, "
            "critical_days, freshness_minutes, min_coverage) VALUES "
            "('rice', '大米', 'rice', 'kg', 0.25, 7, 3, 1, 1440, 0.5), "
            "('milk', '牛奶', 'milk', 'L', 0.10, 4, 2, 1, 720, 0.5)"
        )
        conn.execute(
            "INSERT INTO business_type_necessities (business_type, necessity) "
            "VALUES ('supermarket', 'rice'), ('supermarket', 'milk')"
        )
        conn.execute("INSERT INTO suppliers (id, name, kind) VALUES ('s1', 'Test chain', 'chain')")
        for circle, district in (("A", "D1"), ("B", "D1"), ("C", "D2")):
            conn.execute(
                "INSERT INTO circles (id, name, center_lat, center_lon, district) VALUES (%s, %s, 46.65, 126.97, %s)",
                (circle, circle, district),
            )
            conn.execute(
                "INSERT INTO communities (id, name, street_office, population, circle_id) "
                "VALUES (%s, %s, 'st', 1000, %s)",
                (f"{circle}-1", circle, circle),
            )
            conn.execute(
                "INSERT INTO outlets (id, name, business_type, supplier_id, community_id, lat, lon) "
                "VALUES (%s, %s, 'supermarket', 's1', %s, 46.65, 126.97)",
                (f"S{circle}", f"S{circle}", f"{circle}-1"),
            )
            conn.execute("INSERT INTO outlet_circles (outlet_id, circle_id) VALUES (%s, %s)", (f"S{circle}", circle))


def refresh(url: str, now: datetime) -> dict[tuple[str, str], CircleLevel]:
    async def run() -> list[CircleLevel]:
        pool = make_pool(url)
        await pool.open(wait=True, timeout=30)
        try:
            return await refresh_levels(pool, now)
        finally:
            await pool.close()

    return {(lv.circle_id, lv.necessity): lv for lv in asyncio.run(run())}


def stored(url: str, now: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    """The history rows computed at `now`, checked against the latest rows when they are the newest."""
    with connect(url) as conn:
        rows = conn.execute("SELECT * FROM circle_levels WHERE computed_at = %s", (now,)).fetchall()
    return {(r["circle_id"], r["necessity"]): r for r in rows}


def numbers(row: dict[str, Any]) -> tuple[Any, ...]:
    days = None if row["days_of_supply"] is None else round(row["days_of_supply"], 9)
    return (row["grade"], round(row["daily_demand"], 9), days, row["stock"], row["status"])


NORMAL = {(c, "rice"): (None, 250.0, 6.0, 1500.0, "WATCH") for c in "ABC"} | {
    (c, "milk"): (None, 100.0, 3.0, 300.0, "WATCH") for c in "ABC"
}


def test_declaring_overlapping_and_lifting_change_the_next_levels(database_url: str) -> None:
    url = database_url
    build_city(url)
    write(
        url,
        [(f"S{c}", NOW - (H if c == "C" else 9 * H), [("rice", 1500.0, None), ("milk", 300.0, None)]) for c in "ABC"],
        0,
    )

    refresh(url, NOW)
    assert {k: numbers(r) for k, r in stored(url, NOW).items()} == NORMAL

    with connect(url) as conn:
        city = declare(conn, Scope("city"), Grade.IV, "暴雪预警，道路封闭", "ops-wang", NOW + M10)
        d2 = declare(conn, Scope("district", "D2"), "III", "D2 供货中断", "ops-wang", NOW + M10)
        circle_a = declare(conn, Scope("circle", "A"), "II", "A 圈封控", "ops-li", NOW + M10)
        assert circle_grades(conn, NOW) == {}  # declared after NOW: the levels at NOW stay as they were
        grades = circle_grades(conn, NOW + H)
    assert grades == {"A": Grade.II, "B": Grade.IV, "C": Grade.III, None: Grade.IV}

    t1 = NOW + H  # SA and SB's reports are 10 h old, SC's 2 h
    levels = refresh(url, t1)
    got = {k: numbers(r) for k, r in stored(url, t1).items()}
    # A at II (the circle's own, inside the city's IV): demand x2, thresholds x1.5 (10.5 / 4.5 / 1.5 days
    # for rice). Rice 1,500 / 500 = 3 days < 4.5: SHORTAGE (WATCH in normal times). Staples are reported
    # every 6 h at II, so a report confirms rice for 12 h: 10 h is fresh. Milk is reported every 3 h, so
    # it is confirmed for 6 h only: SA's 10 h-old 300 L is unconfirmed, nothing is known: STALE.
    assert got[("A", "rice")] == (2, 500.0, 3.0, 1500.0, "SHORTAGE")
    assert got[("A", "milk")] == (2, 200.0, 0.0, 0.0, "STALE")
    milk_a = stored(url, t1)[("A", "milk")]
    assert (milk_a["stock_unconfirmed"], milk_a["unconfirmed_age_s"], milk_a["coverage"]) == (300.0, 36000.0, 0.0)
    # B at IV (the city's): demand x1.2, thresholds as normal; the 10 h-old report stays fresh.
    # Rice 1,500 / 300 = 5 days (WATCH); milk 300 / 120 = 2.5 days (WATCH: 2 <= 2.5 < 4).
    assert got[("B", "rice")] == (4, 300.0, 5.0, 1500.0, "WATCH")
    assert got[("B", "milk")] == (4, 120.0, 2.5, 300.0, "WATCH")
    # C at III (its district's, inside the city's IV): demand x1.5, thresholds x1.25 (milk 5 / 2.5 / 1.25).
    # Rice 1,500 / 375 = 4 days (WATCH: 3.75 <= 4 < 8.75); milk 300 / 150 = 2 days < 2.5: SHORTAGE.
    assert got[("C", "rice")] == (3, 375.0, 4.0, 1500.0, "WATCH")
    assert got[("C", "milk")] == (3, 150.0, 2.0, 300.0, "SHORTAGE")
    with connect(url) as conn:
        latest = conn.execute("SELECT circle_id, necessity, grade FROM circle_levels_latest").fetchall()
    assert {(r["circle_id"], r["necessity"]): r["grade"] for r in latest} == {k: v[0] for k, v in got.items()}
    message = level_message("A", [levels[("A", "rice")], levels[("A", "milk")]])
    assert message["emergency"] == {"grade": "II", "grade_number": 2, "report_every_h": {"rice": 6.0, "milk": 3.0}}

    # Lift A's own declaration: A falls back to the city's IV in the next levels.
    with connect(url) as conn:
        lifted, changed = lift(conn, circle_a.id, "ops-li", "A 圈解封", t1 + M10)
        assert changed and lifted.lifted_by == "ops-li" and lifted.lifted_at == t1 + M10
        assert lift(conn, circle_a.id, "ops-zhao", "again", t1 + M10)[1] is False  # lifted once, kept as it was
    t2 = NOW + 1.5 * H
    refresh(url, t2)
    got = {k: numbers(r) for k, r in stored(url, t2).items()}
    assert got[("A", "rice")] == (4, 300.0, 5.0, 1500.0, "WATCH")
    assert got[("A", "milk")] == (4, 120.0, 2.5, 300.0, "WATCH")  # 10.5 h old: fresh again under IV
    assert got[("C", "milk")] == (3, 150.0, 2.0, 300.0, "SHORTAGE")

    # Lift the city's and D2's: normal times again, no grade stored.
    with connect(url) as conn:
        lift(conn, city.id, "ops-wang", "预警解除", t2 + M10)
        lift(conn, d2.id, "ops-wang", "恢复供货", t2 + M10)
    t3 = NOW + 2 * H
    refresh(url, t3)
    assert {k: numbers(r) for k, r in stored(url, t3).items()} == NORMAL
    # The history keeps the grade each level was computed under.
    with connect(url) as conn:
        history = conn.execute(
            "SELECT computed_at, grade FROM circle_levels WHERE circle_id = 'A' AND necessity = 'rice' "
            "ORDER BY computed_at"
        ).fetchall()
    assert [r["grade"] for r in history] == [None, 2, 4, None]


def test_the_audit_is_never_rewritten(database_url: str) -> None:
    build_city(database_url)
    with connect(database_url) as conn:
        e = declare(conn, Scope("city"), Grade.III, "台风登陆", "ops-wang", NOW)
    for statement in (
        "UPDATE emergencies SET reason = 'something else' WHERE id = %s",
        "UPDATE emergencies SET grade = 1 WHERE id = %s",
        "DELETE FROM emergencies WHERE id = %s",
    ):
        with pytest.raises(ConstraintViolation) as refused, connect(database_url) as conn:
            conn.execute(statement, (e.id,))
        assert refused.value.constraint == "emergencies_audit"
    with connect(database_url) as conn:
        lift(conn, e.id, "ops-wang", "台风过境", NOW + H)
    with pytest.raises(ConstraintViolation, match="only lifting it once"), connect(database_url) as conn:
        conn.execute("UPDATE emergencies SET lift_reason = 'rewritten' WHERE id = %s", (e.id,))
    with connect(database_url) as conn:
        row = conn.execute("SELECT * FROM emergencies WHERE id = %s", (e.id,)).fetchone()
    assert row is not None
    assert (row["reason"], row["grade"], row["lift_reason"]) == ("台风登陆", 3, "台风过境")


def test_operators_declare_and_lift_over_http_and_other_keys_are_refused(database_url: str) -> None:
    build_city(database_url)
    supplier = new_key()
    with connect(database_url) as conn:
        operator = create_operator_key(conn, "ops-wang")
        revoked = create_operator_key(conn, "ops-gone")
        revoke_operator_key(conn, revoked.prefix, NOW)
        conn.execute(
            "INSERT INTO api_keys (prefix, supplier_id, key_hash) VALUES (%s, 's1', %s)",
            (supplier.prefix, supplier.key_hash),
        )
    body = {"scope": "circle:A", "grade": "II", "reason": "A 圈封控"}
    with served(Settings.from_env(database_url=database_url), lambda: NOW) as url:

        def call(method: str, path: str, key: str | None, json: Any = None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            return httpx.request(method, f"{url}{path}", headers=headers, json=json, timeout=30)

        assert call("POST", "/v1/emergencies", None, body).status_code == 401
        refused = call("POST", "/v1/emergencies", supplier.key, body)
        assert refused.status_code == 403 and "supplier key" in refused.json()["error"]
        assert call("GET", "/v1/emergencies", supplier.key).status_code == 403
        assert call("POST", "/v1/emergencies", revoked.key, body).status_code == 403

        bad = call("POST", "/v1/emergencies", operator.key, {**body, "grade": "V"})
        assert bad.status_code == 422 and "IV, III, II or I" in bad.json()["error"]
        assert call("POST", "/v1/emergencies", operator.key, {**body, "scope": "circle:Z"}).status_code == 422

        made = call("POST", "/v1/emergencies", operator.key, body)
        assert made.status_code == 201, made.text
        doc = made.json()
        assert (doc["grade"], doc["grade_number"], doc["scope"], doc["declared_by"]) == (
            "II",
            2,
            "circle:A",
            "ops-wang",
        )
        assert doc["rules"]["demand_multiplier"] == 2.0 and doc["rules"]["report_every_h"] == 6
        listed = call("GET", "/v1/emergencies", operator.key).json()["emergencies"]
        assert [(e["id"], e["active"], e["circles"]) for e in listed] == [(doc["id"], True, 1)]

        lifted = call("POST", f"/v1/emergencies/{doc['id']}/lift", operator.key, {"reason": "解封"})
        assert lifted.status_code == 200 and lifted.json()["changed"] is True
        again = call("POST", f"/v1/emergencies/{doc['id']}/lift", operator.key, {"reason": "解封"}).json()
        assert again["changed"] is False and "already" in again["message"]
        assert call("POST", "/v1/emergencies/999/lift", operator.key, {"reason": "x"}).status_code == 404
        assert call("GET", "/v1/emergencies", operator.key).json()["emergencies"] == []
        assert len(call("GET", "/v1/emergencies?all=true", operator.key).json()["emergencies"]) == 1
    with connect(database_url) as conn:
        row = conn.execute("SELECT * FROM emergencies").fetchone()
    assert row is not None
    assert (row["declared_by"], row["declared_at"], row["lifted_by"], row["lift_reason"]) == (
        "ops-wang",
        NOW,
        "ops-wang",
        "解封",
    )


def cli(env: dict[str, str], *args: str, status: int = 0) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "baogong.cli", "emergency", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == status, (done.stdout, done.stderr)
    return done.stdout + done.stderr


def test_the_cli_declares_lists_and_lifts(database_url: str) -> None:
    build_city(database_url)
    env = Settings.from_env(database_url=database_url).env()
    key = next(line for line in cli(env, "key", "create", "ops-li").splitlines() if line.startswith("bg_"))
    assert key.split("_")[1] in cli(env, "key", "list")

    assert "no emergency in force" in cli(env, "list")
    out = cli(env, "declare", "--scope", "district:D1", "--grade", "III", "--reason", "D1 暴雨", "--by", "ops-li")
    assert "grade III over district:D1" in out and "(2 circles)" in out and "demand x1.5" in out
    assert "no district 'D9'; districts: D1, D2" in cli(
        env, "declare", "--scope", "district:D9", "--grade", "III", "--reason", "x", status=2
    )
    assert "IV, III, II or I" in cli(env, "declare", "--scope", "city", "--grade", "V", "--reason", "x", status=2)
    listed = cli(env, "list")
    assert "1 emergency in force" in listed and "by ops-li: D1 暴雨" in listed
    with connect(database_url) as conn:
        (emergency_id,) = conn.execute("SELECT id FROM emergencies").fetchone().values()  # type: ignore[union-attr]
        assert circle_grades(conn, datetime.now(UTC) + H) == {"A": Grade.III, "B": Grade.III}
    assert "lifted emergency" in cli(env, "lift", str(emergency_id), "--reason", "雨停")
    assert "no emergency in force" in cli(env, "list")
    assert "lifted" in cli(env, "list", "--all") and "雨停" in cli(env, "list", "--all")
    assert "no emergency 999" in cli(env, "lift", "999", "--reason", "x", status=2)


def _critical_in_t1_at_grade_i(url: str, tmp_path: Path, moments: Sequence[timedelta]) -> Callable[[str], Any]:
    """T1 and T2 both critical on rice, T1 under grade I; the dispatcher evaluates at NOW + each of `moments`
    (alerts hold 60 s, critical ones escalate after 10 minutes). Returns `alert_row` for rice of a circle."""
    from alerts.escalate import Timers
    from alerts.evaluate import Lifecycle, evaluate_once
    from alerts.model import Policy
    from alerts.notify import Notifier, parse_channel
    from alerts.pipeline import Teams, default_receivers
    from alerts.rules import pipeline, shortage
    from schema.teams_store import import_teams
    from tests.integration.test_paging import alert_row, seed_city, set_levels, teams_file

    seed_city(url)
    hooks = {name: "http://127.0.0.1:9/unused" for name in ("T1-team", "T2-team", "T1-owner", "district", "city")}
    assert not import_teams(url, teams_file(tmp_path / "teams.yaml", hooks), channel_check=parse_channel).rejected
    with connect(url) as conn:
        declare(conn, Scope("circle", "T1"), Grade.I, "T1 封控", "ops-wang", NOW - M10)
    life = Lifecycle(Policy(for_s=60, clear_for_s=60), Timers({"critical": 10}, {"critical": 2}))
    rules = [shortage.rule(0.2, pipeline.Currency(stall_after_s=120, max_lag_s=60))]
    critical: dict[tuple[str, str], float | None] = {("T1", "rice"): 0.5, ("T2", "rice"): 0.5}

    async def run() -> None:
        pool = make_pool(url, max_size=2)
        await pool.open(wait=True)
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                notifiers: dict[str, Notifier] = {}
                defaults, fallback = default_receivers(Settings.from_env({}, database_url=url), client)
                teams = Teams(pool, client, defaults, fallback, notifiers, reload_s=3600)
                for moment in moments:
                    now = NOW + moment
                    set_levels(url, now, critical)
                    await evaluate_once(pool, now, rules, await teams.routing(now), life)
        finally:
            await pool.close()

    asyncio.run(run())
    return lambda circle: alert_row(url, circle, "rice")


def test_an_alert_in_a_circle_under_grade_i_escalates_four_times_sooner(database_url: str, tmp_path: Path) -> None:
    """Critical alerts escalate after 10 minutes unacknowledged; T1 at grade I (alert waits x0.25) after 2.5."""
    # pending, firing (paged at 1), then 2.6 minutes unacknowledged: past T1's 2.5, far from T2's 10
    row = _critical_in_t1_at_grade_i(database_url, tmp_path, [timedelta(minutes=m) for m in (0, 1, 3.6)])
    assert row("T1")["escalation_level"] == 1
    assert row("T2")["escalation_level"] == 0


def test_the_demo_declares_over_one_circle_shows_before_and_after_and_lifts_its_own(database_url: str) -> None:
    from baogong.demo.emergency import DemoEmergency, lift_demo_emergencies

    url = database_url
    build_city(url)
    now = datetime.now(UTC).replace(microsecond=0)  # the demo runs on the wall clock
    write(url, [(f"S{c}", now - H, [("rice", 1500.0, None), ("milk", 300.0, None)]) for c in "ABC"], 0)
    refresh(url, now)
    with connect(url) as conn:
        someone_else = declare(conn, Scope("circle", "C"), Grade.IV, "not the demo's", "ops-wang", now)
    demo = DemoEmergency(url, circle_id="A", grade=Grade.III, at_s=40.0)
    demo.act(39.0)
    assert demo.lines()[0].startswith("emergency: none yet")
    demo.act(40.0)
    assert "(waiting for the worker's next levels under it)" in demo.lines()[1]
    refresh(url, datetime.now(UTC) + timedelta(seconds=1))
    head, effect = demo.lines()
    assert "A at grade III" in head and "demand x1.5" in head
    # rice 1,500 / 250 = 6 days WATCH -> 1,500 / 375 = 4 days WATCH; milk 3 days WATCH -> 2 days SHORTAGE (< 2.5).
    assert "rice 6.0 WATCH → 4.0 WATCH" in effect and "pork ? ? → ? ?" in effect
    with connect(url) as conn:
        active = {e.declared_by for e in list_emergencies(conn, datetime.now(UTC) + H)}
    assert active == {"demo:市商务局", "ops-wang"}
    lift_demo_emergencies(url, "the demo stopped")
    with connect(url) as conn:
        left = list_emergencies(conn, datetime.now(UTC) + H)
    assert [e.id for e in left] == [someone_else.id]


def test_a_shortage_in_a_circle_under_grade_i_pages_after_a_quarter_of_the_hold(
    database_url: str, tmp_path: Path
) -> None:
    """Alerts fire after holding 60 s; T1 at grade I (waits x0.25) after 15 s, T2 still pending then."""
    # both pending at 0; 20 s later past T1's 15 s hold, short of T2's 60
    row = _critical_in_t1_at_grade_i(database_url, tmp_path, [timedelta(seconds=0), timedelta(seconds=20)])
    assert row("T1")["state"] == "firing"
    assert row("T2")["state"] == "pending"
