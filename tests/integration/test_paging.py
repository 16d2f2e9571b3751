"""Paging the right team, grouped, escalated, and told the truth: real PostgreSQL, real HTTP receivers.

A two-circle city with a teams file (each circle's team, T1's owner, the
district and the city bureau, every channel a real local webhook receiver),
crafted `circle_levels_latest` rows, and the dispatcher's own pieces — the
teams loader and notifiers of `alerts.pipeline`, `evaluate_once`, delivery
by `deliver_once` — driven by an explicit clock, minute by minute. Nothing
sleeps.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from alerts import actions, links
from alerts.dispatch import DeliveryPolicy, deliver_once
from alerts.escalate import Timers
from alerts.evaluate import Lifecycle, evaluate_once
from alerts.model import Policy
from alerts.notify import Notifier, parse_channel
from alerts.pipeline import Teams, default_receivers
from alerts.rules import pipeline, shortage
from alerts.silence import SilenceMatcher
from baogong.settings import Settings
from schema.db import QUERIES, connect, make_pool
from schema.seed import seed_reference
from schema.teams_store import import_teams
from tests.support import Receiver

RECEIVERS = ("T1-team", "T2-team", "T1-owner", "district", "city", "default")
SECRET = SecretStr("paging-test-secret-0123456789")
APP = "https://baogong.example"


def seed_city(url: str) -> None:
    with connect(url) as conn:
        seed_reference(conn)
        for circle in ("T1", "T2"):
            conn.execute(
                "INSERT INTO circles (id, name, center_lat, center_lon, district) "
                "VALUES (%s, %s, 46.65, 126.97, '北林区')",
                (circle, f"{circle} 生活圈"),
            )


def teams_file(path: Path, urls: dict[str, str]) -> Path:
    def team(tid: str, kind: str, scope: str, nxt: str | None) -> str:
        lines = [f"  - id: {tid}", f"    name: {tid} 示例", f"    kind: {kind}"]
        lines += [f"    {scope}"] if scope else []
        lines += [f"    escalates_to: {nxt}"] if nxt else []
        lines += [f"    members: [{{id: m-{tid}, name: 成员}}]"]
        lines += [f'    channels: [{{name: hook, kind: webhook, url: "{urls[tid]}"}}]']
        return "\n".join(lines)

    text = "\n".join(
        [
            "teams:",
            team("T1-team", "circle_team", "circle: T1", "T1-owner"),
            team("T2-team", "circle_team", "circle: T2", "district"),
            team("T1-owner", "circle_owner", "circle: T1", "district"),
            team("district", "district_bureau", "district: 北林区", "city"),
            team("city", "city_bureau", "", None),
            'routes:\n  teams: ["@circle_team"]\n  fallback: [city]\n',
        ]
    )
    path.write_text(text, encoding="utf-8")
    return path


def set_levels(url: str, at: datetime, days: dict[tuple[str, str], float | None], status: str | None = None) -> None:
    """Every level of both circles computed at `at`: rice and flour at `days` (8 days, OK, when not given)."""
    with connect(url) as conn:
        for circle in ("T1", "T2"):
            for necessity in ("rice", "flour"):
                d = days.get((circle, necessity), 8.0)
                shown = status or ("STALE" if d is None else "CRITICAL" if d < 1 else "SHORTAGE" if d < 3 else "OK")
                conn.execute(
                    "INSERT INTO circle_levels_latest (circle_id, necessity, computed_at, stock, daily_demand,"
                    " days_of_supply, coverage, outlets_expected, outlets_fresh, status, lag_s, lag_reports)"
                    " VALUES (%s, %s, %s, %s, 250, %s, 1.0, 4, 4, %s, 0, 0)"
                    " ON CONFLICT (circle_id, necessity) DO UPDATE SET computed_at = EXCLUDED.computed_at,"
                    " stock = EXCLUDED.stock, days_of_supply = EXCLUDED.days_of_supply, status = EXCLUDED.status",
                    (circle, necessity, at, 250 * (d or 0), d, shown),
                )


def alert_row(url: str, circle: str, necessity: str) -> dict[str, Any]:
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT * FROM alerts WHERE circle_id = %s AND necessity = %s ORDER BY id", (circle, necessity)
        ).fetchall()
    assert len(rows) == 1, rows  # one alert per (rule, circle, necessity) while it lasts, reopened included
    return rows[0]


def events(url: str, alert_id: int) -> list[str]:
    with connect(url) as conn:
        rows = conn.execute("SELECT kind FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)).fetchall()
    return [r["kind"] for r in rows]


def acknowledge(url: str, alert_id: int, now: datetime) -> None:
    """As a responder does (alerts.actions: the state, the event, the supply task)."""
    with connect(url) as conn:
        actions.acknowledge(conn, alert_id, "T1-team/m-T1-team", now)


def page(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """A message as (necessity, status, notice) per alert listed."""
    return [(a["labels"]["necessity"], a["status"], a["annotations"].get("notice", "")) for a in body["alerts"]]


@pytest.mark.timeout(300)
def test_pages_reach_the_circles_team_grouped_escalated_and_truthful(database_url: str, tmp_path: Path) -> None:
    seed_city(database_url)
    hooks = {name: Receiver() for name in RECEIVERS}
    try:
        path = teams_file(tmp_path / "teams.yaml", {k: r.url for k, r in hooks.items()})
        result = import_teams(database_url, path, channel_check=parse_channel)
        assert not result.rejected and result.routes == "created", result.rejected
        asyncio.run(scenario(database_url, hooks))
    finally:
        for r in hooks.values():
            r.close()


async def scenario(url: str, hooks: dict[str, Receiver]) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)  # outbox rows are due from the db's now()
    settings = Settings.from_env({}, database_url=url, webhook_urls=(hooks["default"].url,))
    life = Lifecycle(
        Policy(for_s=60, clear_for_s=60),
        Timers({"critical": 10, "high": 30}, {"critical": 2, "high": 6}),
        reopen_window_s=3600,
        public_url=APP,
        action_secret=SECRET,
    )
    rules = [shortage.rule(0.2, pipeline.Currency(stall_after_s=120, max_lag_s=60))]
    got = {name: 0 for name in hooks}

    def new(name: str) -> list[dict[str, Any]]:
        """What `name` received since the last look."""
        bodies = hooks[name].bodies[got[name] :]
        got[name] = len(hooks[name].bodies)
        return bodies

    pool = make_pool(url, max_size=3)
    await pool.open(wait=True)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            notifiers: dict[str, Notifier] = {}
            defaults, fallback = default_receivers(settings, client)
            teams = Teams(pool, client, defaults, fallback, notifiers, reload_s=3600)
            policy = DeliveryPolicy(timeout_s=5, lease_s=30)

            async def tick(minute: float, days: dict[tuple[str, str], float | None], status: str | None = None) -> None:
                now = t0 + timedelta(minutes=minute)
                set_levels(url, now, days, status)
                await evaluate_once(pool, now, rules, await teams.routing(now), life)
                while sum([await deliver_once(pool, n, "test", policy, lambda: now) for n in notifiers.values()]):
                    pass

            short = {("T1", "rice"): 0.5, ("T1", "flour"): 2.0, ("T2", "flour"): 2.0}  # critical, high, high
            await tick(0, short)
            assert all(not new(n) for n in hooks)  # pending: nobody told yet
            await tick(1, short)

            # each circle's team only, one message per circle listing all its necessities
            (t1,) = new("T1-team")
            assert sorted(page(t1)) == [("flour", "firing", ""), ("rice", "firing", "")]
            assert t1["groupKey"] == '{}/{team="T1-team"}:{circle="T1"}'
            (t2,) = new("T2-team")
            assert page(t2) == [("flour", "firing", "")]
            assert t2["alerts"][0]["annotations"]["suggestions"].startswith("附近无富余库存")  # restock (no outlets)
            token = t2["externalURL"].removeprefix(APP + "/a/")  # one alert: the message's link acknowledges it
            assert token != t2["externalURL"] and t2["alerts"][0]["generatorURL"] == t2["externalURL"]
            assert (
                links.verify(token, SECRET, t0 + timedelta(minutes=2)).alert_id == alert_row(url, "T2", "flour")["id"]
            )
            assert t1["externalURL"] == APP and all(a["generatorURL"].startswith(APP + "/a/") for a in t1["alerts"])
            assert not new("T1-owner") and not new("district") and not new("default")

            rice, flour = alert_row(url, "T1", "rice"), alert_row(url, "T1", "flour")
            t2_flour = alert_row(url, "T2", "flour")
            with connect(url) as conn:  # T2's team acknowledges by writing the acknowledgement directly
                conn.execute(
                    "UPDATE alerts SET state = 'acknowledged', acknowledged_at = %s, acknowledged_by = 'T2' "
                    "WHERE id = %s",
                    (t0 + timedelta(minutes=5), t2_flour["id"]),
                )

            # unacknowledged critical rice climbs the chain every 10 minutes; high flour after 30
            await tick(10.5, short)
            assert not new("T1-owner")
            await tick(11, short)
            (owner,) = new("T1-owner")
            assert [(n, s) for n, s, _ in page(owner)] == [("rice", "firing")]
            assert page(owner)[0][2].startswith("升级：已告警 10 分钟") and "T1-team 示例仍未确认" in page(owner)[0][2]
            await tick(21, short)
            assert [n for n, _, _ in page(new("district")[0])] == ["rice"]
            await tick(31, short)
            assert [n for n, _, _ in page(new("city")[0])] == ["rice"]
            assert [n for n, _, _ in page(new("T1-owner")[0])] == ["flour"]  # flour's own 30 minutes
            assert alert_row(url, "T1", "rice")["escalation_level"] == 3
            assert not new("T2-team") and not new("district")  # T2's flour was acknowledged: never escalates

            acknowledge(url, flour["id"], t0 + timedelta(minutes=32))
            await tick(62, short)  # flour would have reached the district at 61
            assert not new("district") and not new("T1-team")

            # high -> critical pages again (flour, acknowledged, stays acknowledged)
            worse = {**short, ("T1", "flour"): 0.5}
            await tick(63, worse)
            (raised,) = new("T1-team")
            assert page(raised) == [("flour", "firing", "级别升高：紧张 → 严重")]
            assert [n for n, _, _ in page(new("T1-owner")[0])] == ["flour"]
            assert alert_row(url, "T1", "flour")["state"] == "acknowledged"

            # T1's data goes stale: "data missing" once after the hold, never a resolution
            stale = {**worse, ("T1", "rice"): None, ("T1", "flour"): None}
            await tick(64, stale)
            await tick(64.5, stale)
            assert not new("T1-team")
            await tick(65, stale)
            (missing,) = new("T1-team")
            assert sorted(n for n, _, _ in page(missing)) == ["flour", "rice"]
            assert all(s == "firing" and note.startswith("数据缺失") for _, s, note in page(missing))
            await tick(70, stale)
            assert not new("T1-team")
            assert alert_row(url, "T1", "rice")["state"] == "firing"

            # recovery: one resolved message listing both (T2's, silenced meanwhile, pages nobody)
            with connect(url) as conn:
                at = t0 + timedelta(minutes=79)
                actions.create_silence(
                    conn, [SilenceMatcher("circle", "T2")], at, at + timedelta(hours=2), "test", "T2 restocking", at
                )
            fine: dict[tuple[str, str], float | None] = {}
            await tick(80, fine)
            assert not new("T1-team")
            await tick(81, fine)
            (resolved,) = new("T1-team")
            assert resolved["status"] == "resolved"
            assert sorted(page(resolved)) == [("flour", "resolved", ""), ("rice", "resolved", "")]
            await tick(82, fine)
            assert not new("T1-team") and not new("T2-team")
            t2_flour = alert_row(url, "T2", "flour")
            assert t2_flour["state"] == "resolved" and events(url, t2_flour["id"])[-2:] == ["resolved", "silenced"]

            # an alert of a circle that no longer exists is closed, and whoever answers for it told
            gone = {"alertname": "SupplyShortage", "circle": "T9", "necessity": "rice", "severity": "high"}
            with connect(url) as conn:
                started = t0 + timedelta(minutes=50)
                conn.execute(
                    QUERIES["insert_alert"],
                    {
                        "fingerprint": "gone-T9",
                        "rule": "shortage",
                        "circle_id": "T9",
                        "necessity": "rice",
                        "severity": "high",
                        "state": "firing",
                        "labels": Jsonb(gone),
                        "annotations": Jsonb({}),
                        "pending_since": started,
                        "starts_at": started,
                    },
                )
            # the city was told of rice (escalated there), so it heard that data went missing and that rice recovered
            assert [(b["status"], page(b)[0][2][:4]) for b in new("city")] == [("firing", "数据缺失"), ("resolved", "")]
            await tick(83, fine)
            (closed,) = new("city")  # T9 has no team: the tree's fallback, the city bureau
            assert closed["status"] == "resolved" and page(closed) == [("rice", "resolved", "该生活圈已撤销，告警关闭")]

            # recurrence within the reopen window: the same alert, reopened
            await tick(90, {("T1", "rice"): 2.0})
            await tick(91, {("T1", "rice"): 2.0})
            (again,) = new("T1-team")
            assert page(again) == [("rice", "firing", "恢复后再次出现（第 1 次重新告警）")]
            rice = alert_row(url, "T1", "rice")
            assert rice["state"] == "firing" and rice["reopen_count"] == 1 and rice["escalation_level"] == 0
            history = events(url, rice["id"])
            assert history[:2] == ["pending", "fired"]
            assert history.count("escalated") == 3 and "data_missing" in history
            assert history[-3:] == ["resolved", "pending", "reopened"]
            assert not new("default")  # every alert had a team: the default receivers heard nothing
    finally:
        await pool.close()
