"""Supply tasks on the real PostgreSQL: a small city built here, suggestions worked out by hand.

Rice: 0.25 kg/person/day, watch 7 / shortage 3 / critical 1 days, fresh for 24 h. Circle centres and
outlets lie on one meridian (km north of A's centre; negative: south), except D, 5 km east.

    circle  centre  people  demand  outlets (fresh rice)                              stock  days  surplus (7 days)
    A        0      400     100     OA1 150 (A), OAB 100 (A and B)                      250   2.5   - (SHORTAGE)
    B       +2.2    600     150     OAB 100, OB1 300 (+2.0), OB2 1,600 (+2.5);        2,000  13.3  2,000 - 1,050 = 950
                                    OB3 900 (+1.5) 30 h old: unconfirmed; OB4 800 (+1.2) inactive
    C       -1.2    400     100     OC1 600 (-1.0)                                      600   6     0 (needs 100 more)
    D       5 km E  400     100     OD1 5,000                                         5,000  50    too far (5 km)

A needs 7 x 100 - 250 = 450 kg. Nearest first: OC1 (1.0 km) has no spare (C needs its own); OAB serves A
(already counted there); OB3 is not fresh, OB4 not active; OB1 (2.0 km) gives 300; OB2 (2.5 km) could give
min(1,600, 950 - 300) = 650 and gives the 150 still needed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from alerts import tasks_store
from alerts.restock import suggestions_for
from alerts.tasks import MoveRefused, NotATaskAlert, State
from baogong.settings import Settings
from schema.circles import EARTH_RADIUS_KM
from schema.db import connect, make_pool
from streams.circles import refresh_levels
from tests.support import baogong_process, free_port, wait_for

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
LAT, LON = 46.65, 126.97
KM_PER_DEG = EARTH_RADIUS_KM * 3.141592653589793 / 180

CIRCLES = (("A", 0.0, 0.0, 400), ("B", 2.2, 0.0, 600), ("C", -1.2, 0.0, 400), ("D", 0.0, 5.0, 400))
#: outlet, km north, circles served (home first), rice, hours old, active
OUTLETS = (
    ("OA1", 0.0, ("A",), 150.0, 1, True),
    ("OAB", 0.5, ("A", "B"), 100.0, 1, True),
    ("OB1", 2.0, ("B",), 300.0, 2, True),
    ("OB2", 2.5, ("B",), 1600.0, 3, True),
    ("OB3", 1.5, ("B",), 900.0, 30, True),
    ("OB4", 1.2, ("B",), 800.0, 1, False),
    ("OC1", -1.0, ("C",), 600.0, 1, True),
    ("OD1", 0.0, ("D",), 5000.0, 1, True),
)


def north(km: float) -> float:
    return LAT + km / KM_PER_DEG


def build_city(url: str, now: datetime = NOW) -> None:
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO business_types (code, name_zh, name_en, category) "
            "VALUES ('supermarket', '超市', 'supermarket', 'basic')"
        )
        conn.execute(
            "INSERT INTO necessities (code, name_zh, name_en, unit, per_capita_daily, watch_days, shortage_days, "
            "critical_days, freshness_minutes, min_coverage) "
            "VALUES ('rice', '大米', 'rice', 'kg', 0.25, 7, 3, 1, 1440, 0.5)"
        )
        conn.execute("INSERT INTO business_type_necessities VALUES ('supermarket', 'rice')")
        conn.execute("INSERT INTO suppliers (id, name, kind) VALUES ('s1', 'Test chain', 'chain')")
        for circle, km_n, km_e, population in CIRCLES:
            lon = LON + km_e / (KM_PER_DEG * 0.6862)  # cos(46.65°) ≈ 0.6862
            conn.execute(
                "INSERT INTO circles (id, name, center_lat, center_lon) VALUES (%s, %s, %s, %s)",
                (circle, f"{circle}圈", north(km_n), lon),
            )
            conn.execute(
                "INSERT INTO communities (id, name, street_office, population, circle_id) "
                "VALUES (%s, %s, 'st', %s, %s)",
                (f"{circle}-1", f"{circle}-1", population, circle),
            )
        lon_of = {c: LON + e / (KM_PER_DEG * 0.6862) for c, _, e, _ in CIRCLES}
        for outlet, km_n, circles, rice, hours, active in OUTLETS:
            conn.execute(
                "INSERT INTO outlets (id, name, business_type, supplier_id, community_id, lat, lon, active) "
                "VALUES (%s, %s, 'supermarket', 's1', %s, %s, %s, %s)",
                (outlet, f"{outlet}超市", f"{circles[0]}-1", north(km_n), lon_of[circles[0]], active),
            )
            for circle in circles:
                conn.execute("INSERT INTO outlet_circles VALUES (%s, %s)", (outlet, circle))
            conn.execute(
                "INSERT INTO outlet_stock (outlet_id, necessity, quantity, reported_at) VALUES (%s, 'rice', %s, %s)",
                (outlet, rice, now - timedelta(hours=hours)),
            )

    async def levels() -> None:
        pool = make_pool(url)
        await pool.open(wait=True, timeout=30)
        try:
            await refresh_levels(pool, now)
        finally:
            await pool.close()

    asyncio.run(levels())


def insert_alert(
    url: str, circle: str = "A", rule: str = "shortage", acked_by: str | None = "A-team/wang", now: datetime = NOW
) -> int:
    with connect(url) as conn:
        row = conn.execute(
            "INSERT INTO alerts (fingerprint, rule, circle_id, necessity, severity, state, labels, annotations, "
            "pending_since, starts_at, acknowledged_at, acknowledged_by) "
            "VALUES (%s, %s, %s, 'rice', 'high', 'firing', '{}', '{}', %s, %s, %s, %s) RETURNING id",
            (f"{rule}-{circle}", rule, circle, now - 12 * MIN, now - 10 * MIN, now if acked_by else None, acked_by),
        ).fetchone()
    assert row is not None
    return int(row["id"])


@pytest.fixture
def city(database_url: str) -> str:
    build_city(database_url)
    return database_url


def test_suggestions_ranked_and_sized_by_hand(city: str) -> None:
    with connect(city) as conn:
        levels = {r["circle_id"]: r for r in conn.execute("SELECT * FROM circle_levels_latest").fetchall()}
        assert {c: (levels[c]["stock"], levels[c]["daily_demand"], levels[c]["status"]) for c in "ABCD"} == {
            "A": (250, 100, "SHORTAGE"),
            "B": (2000, 150, "OK"),
            "C": (600, 100, "WATCH"),
            "D": (5000, 100, "OK"),
        }
        plan = suggestions_for(conn, "A", "rice", NOW)
    assert plan is not None
    assert (plan.need, plan.target_days, plan.unit) == (450, 7, "kg")
    assert [(s.outlet_id, s.circle_id, s.quantity, s.spare) for s in plan.suggestions] == [
        ("OB1", "B", 300, 300),
        ("OB2", "B", 150, 650),
    ]
    assert [round(s.distance_km, 3) for s in plan.suggestions] == [2.0, 2.5]
    assert plan.shortfall == 0


def test_a_task_from_acknowledgement_to_recovery(city: str) -> None:
    alert = insert_alert(city)
    with connect(city) as conn:
        task = tasks_store.open_task(conn, alert, NOW + MIN)
        again = tasks_store.open_task(conn, alert, NOW + 5 * MIN)  # idempotent: nothing new, nothing changed
        assert again == task
    assert (task.state, task.target_quantity, task.target_days, task.unit) == (State.OPEN, 450, 7, "kg")
    assert [(s["outlet_id"], s["quantity"]) for s in task.suggestions] == [("OB1", 300), ("OB2", 150)]
    assert task.suggestions[0]["distance_km"] == 2.0
    assert (task.paged_at, task.acknowledged_at, task.opened_at, task.opened_by) == (
        NOW - 10 * MIN,
        NOW,
        NOW + MIN,
        "A-team/wang",
    )

    t1, t2 = NOW + 30 * MIN, NOW + 3 * 60 * MIN
    with connect(city) as conn:
        with pytest.raises(MoveRefused, match="is open: dispatch it first"):
            tasks_store.advance(conn, task.id, "delivered", "A-team/li", t1)
        moved = tasks_store.advance(conn, task.id, "dispatched", "A-team/li", t1)
        assert (moved.state, moved.dispatched_at, moved.dispatched_by) == (State.DISPATCHED, t1, "A-team/li")
        with pytest.raises(MoveRefused, match="already dispatched"):
            tasks_store.advance(conn, task.id, "dispatched", "A-team/li", t1)
        moved = tasks_store.advance(conn, task.id, "delivered", "A-team/zhao", t2)
        assert (moved.state, moved.delivered_at, moved.delivered_by) == (State.DELIVERED, t2, "A-team/zhao")
        assert tasks_store.close_recovered(conn, t2) == []  # the alert still fires

    # The level recovers: the dispatcher resolves the alert by itself; the next evaluation closes the task.
    t3, t4 = NOW + 5 * 60 * MIN, NOW + 5 * 60 * MIN + 5 * timedelta(seconds=1)
    with connect(city) as conn:
        conn.execute("UPDATE alerts SET state = 'resolved', ends_at = %s WHERE id = %s", (t3, alert))
        assert tasks_store.close_recovered(conn, t4) == [task.id]
        assert tasks_store.close_recovered(conn, t4) == []
        closed = tasks_store.get_task(conn, task.id)
        events = conn.execute(
            "SELECT kind, actor, at, detail FROM alert_events WHERE alert_id = %s ORDER BY id", (alert,)
        ).fetchall()
        review = tasks_store.review(conn, NOW)
    assert (closed.state, closed.closed_at, closed.recovered_at) == (State.CLOSED, t4, t3)
    assert [(e["kind"], e["actor"], e["at"]) for e in events] == [
        ("task_opened", "A-team/wang", NOW + MIN),
        ("task_dispatched", "A-team/li", t1),
        ("task_delivered", "A-team/zhao", t2),
        ("task_closed", "dispatcher", t4),
    ]
    assert events[0]["detail"] == {"task_id": task.id, "target_quantity": 450, "sources": 2, "shortfall": 0}
    assert events[3]["detail"] == {"task_id": task.id, "from": "delivered", "reason": "recovered", "resolved_by": None}
    steps = ("id", "page_to_ack_s", "ack_to_dispatched_s", "dispatched_to_recovered_s")
    assert [tuple(r[k] for k in steps) for r in review] == [(task.id, 600.0, 1800.0, 4.5 * 3600)]


def test_shortages_only_a_manual_resolution_is_no_recovery_and_a_reopened_alert_gets_a_new_task(city: str) -> None:
    feed = insert_alert(city, circle="B", rule="feed")
    unacked = insert_alert(city, circle="C", acked_by=None)
    with connect(city) as conn:
        with pytest.raises(NotATaskAlert, match="only shortages carry supply tasks"):
            tasks_store.open_task(conn, feed, NOW)
        task = tasks_store.open_task(conn, unacked, NOW + MIN)
        # C needs 100 kg; its only neighbour A has no surplus: a target, no sources.
        assert (task.target_quantity, task.suggestions, task.opened_by, task.acknowledged_at) == (
            100,
            (),
            "baogong",
            NOW + MIN,
        )
        conn.execute(
            "UPDATE alerts SET state = 'resolved', ends_at = %s, resolved_by = 'C-team/sun' WHERE id = %s",
            (NOW + 9 * MIN, unacked),
        )
        assert tasks_store.close_recovered(conn, NOW + 10 * MIN) == [task.id]
        closed = tasks_store.get_task(conn, task.id)
        assert (closed.state, closed.recovered_at, closed.closed_at) == (State.CLOSED, None, NOW + 10 * MIN)
        with pytest.raises(MoveRefused, match="is closed"):
            tasks_store.advance(conn, task.id, "dispatched", "C-team/sun", NOW + 11 * MIN)
        assert tasks_store.open_task(conn, unacked, NOW + 12 * MIN) == closed  # resolved: the closed one stays

        # The shortage recurs: the same alert reopens; acknowledging it again opens a new task.
        conn.execute(
            "UPDATE alerts SET state = 'acknowledged', reopened_at = %s, ends_at = NULL, resolved_by = NULL, "
            "acknowledged_at = %s, acknowledged_by = 'C-team/sun' WHERE id = %s",
            (NOW + 20 * MIN, NOW + 25 * MIN, unacked),
        )
        second = tasks_store.open_task(conn, unacked, NOW + 25 * MIN)
        assert second.id != task.id and second.state is State.OPEN
        assert (second.paged_at, second.acknowledged_at, second.opened_by) == (
            NOW + 20 * MIN,
            NOW + 25 * MIN,
            "C-team/sun",
        )
        assert [t.id for t in tasks_store.list_tasks(conn, open_only=True)] == [second.id]


def baogong(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BAOGONG_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "baogong.cli", "tasks", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_cli(city: str) -> None:
    alert = insert_alert(city)
    with connect(city) as conn:
        task = tasks_store.open_task(conn, alert, NOW + MIN)

    listed = baogong(city, "list", "--open")
    assert listed.returncode == 0, listed.stderr
    assert f"{task.id:>4}  open" in listed.stdout and "A rice" in listed.stdout

    dispatched = baogong(city, "dispatch", str(task.id), "--as", "A-team/li")
    assert dispatched.returncode == 0, dispatched.stderr
    assert f"task {task.id} dispatched by A-team/li" in dispatched.stdout
    refused = baogong(city, "dispatch", str(task.id), "--as", "A-team/li")
    assert refused.returncode == 3 and "already dispatched" in refused.stderr
    assert baogong(city, "deliver", str(task.id), "--as", "A-team/zhao").returncode == 0

    shown = baogong(city, "show", str(task.id))
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "delivered" in out and "450 kg" in out
    assert "OB1超市" in out and "2.0 km" in out and "300 kg" in out and "OB2超市" in out and "150 kg" in out
    for step in ("paged", "acknowledged", "dispatched", "delivered", "recovered"):
        assert step in out
    as_json = json.loads(baogong(city, "show", str(task.id), "--json").stdout)
    assert as_json["state"] == "delivered" and as_json["dispatched_by"] == "A-team/li"

    missing = baogong(city, "show", "999")
    assert missing.returncode == 2 and "no supply task 999" in missing.stderr

    with connect(city) as conn:
        conn.execute("UPDATE alerts SET state = 'resolved', ends_at = now() WHERE id = %s", (alert,))
        tasks_store.close_recovered(conn, datetime.now(UTC))
    review = baogong(city, "review", "--days", "1")
    assert review.returncode == 0, review.stderr
    assert f"{task.id:>4}  A rice  closed " in review.stdout and "page->ack +10 min" in review.stdout


def test_acknowledged_over_http_then_dispatched_and_delivered(database_url: str, tmp_path: Path) -> None:
    """The responder app (`baogong alerts serve`, a real process): acknowledging opens the task, the team moves it."""
    now = datetime.now(UTC)
    build_city(database_url, now)
    with connect(database_url) as conn:
        conn.execute("INSERT INTO teams (id, name, kind, circle_id) VALUES ('A-team', 'A圈保供队', 'circle_team', 'A')")
        conn.execute("INSERT INTO team_members (team_id, member_id, position, name) VALUES ('A-team', 'li', 0, '李强')")
    alert = insert_alert(database_url, acked_by=None, now=now)
    settings = Settings.from_env(database_url=database_url, alerts_port=free_port(), alerts_db_connections=2)
    env = {**os.environ, **settings.env()}
    made = subprocess.run(
        [sys.executable, "-m", "baogong.cli", "responders", "keys", "create", "A-team/li", "--as", "ops"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    key = next(w for w in made.stdout.split() if w.startswith("bg_"))
    url = f"http://127.0.0.1:{settings.alerts_port}"

    def call(method: str, path: str, auth: bool = True) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if auth else {}
        return httpx.request(method, url + path, headers=headers, timeout=30)

    with baogong_process(["alerts", "serve"], settings.env(), tmp_path / "serve.log") as proc:
        wait_for(lambda: proc.poll() is not None or _up(url), 60, "the responder app")
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        acked = call("POST", f"/v1/alerts/{alert}/ack")
        assert acked.status_code == 200, acked.text
        assert call("GET", "/v1/tasks", auth=False).status_code == 401
        (task,) = call("GET", "/v1/tasks?open=true").json()["tasks"]
        assert (task["alert_id"], task["state"], task["target_quantity"], task["opened_by"]) == (
            alert, "open", 450, "A-team/li",
        )  # fmt: skip
        assert [(s["outlet_id"], s["quantity"]) for s in task["suggestions"]] == [("OB1", 300), ("OB2", 150)]

        early = call("POST", f"/v1/tasks/{task['id']}/deliver")
        assert early.status_code == 409 and "dispatch it first" in early.json()["error"]
        sent = call("POST", f"/v1/tasks/{task['id']}/dispatch")
        assert sent.status_code == 200 and sent.json()["dispatched_by"] == "A-team/li"
        assert call("POST", f"/v1/tasks/{task['id']}/dispatch").status_code == 409
        arrived = call("POST", f"/v1/tasks/{task['id']}/deliver").json()
        assert arrived["state"] == "delivered" and arrived["durations_s"]["ack_to_dispatched_s"] >= 0
        assert call("GET", f"/v1/tasks/{task['id']}").json()["delivered_by"] == "A-team/li"
        assert call("GET", "/v1/tasks/999999").status_code == 404


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
