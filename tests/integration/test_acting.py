"""Acting on alerts against the real PostgreSQL and the real responder app (`baogong alerts serve`, a child process).

Responder keys made with the real CLI; acknowledge / resolve / comment over
HTTP (401 without a key, 403 once revoked); signed links (a GET shows the
page and acts on nothing, a POST acts once, an expired or altered link is
refused); silences over HTTP and the CLI; the operator's CLI actions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts import links
from baogong.settings import Settings
from schema.db import connect
from tests.support import baogong_process, free_port, seed_tiny_city, wait_for

SECRET = "integration-test-action-secret"


def seed_team(url: str) -> None:
    """The tiny city (circle T1) and its emergency supply team of two."""
    seed_tiny_city(url)
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO teams (id, name, kind, circle_id) VALUES ('T1-team', '测试保供队', 'circle_team', 'T1')"
        )
        conn.execute(
            "INSERT INTO team_members (team_id, member_id, position, name) "
            "VALUES ('T1-team', 'amy', 0, '艾米'), ('T1-team', 'bo', 1, '薄波')"
        )


def firing_alert(url: str, necessity: str = "rice", rule: str = "shortage") -> int:
    """A firing alert as the dispatcher stores one (the lifecycle itself is tested elsewhere)."""
    labels = {"alertname": "SupplyShortage", "circle": "T1", "necessity": necessity, "severity": "high"}
    annotations = {
        "summary": f"Test circle: {necessity} 1.6 days of supply",
        "circle_name": "测试圈",
        "necessity_name": "大米",
        "days_of_supply": "1.6",
        "shortage_days": "3",
    }
    with connect(url) as conn:
        row = conn.execute(
            "INSERT INTO alerts (fingerprint, rule, circle_id, necessity, severity, state, labels, annotations, "
            "pending_since, starts_at) VALUES (%s, %s, 'T1', %s, 'high', 'firing', %s::jsonb, %s::jsonb, "
            "now() - interval '10 minutes', now() - interval '9 minutes') RETURNING id",
            (f"fp-{necessity}-{rule}", rule, necessity, _json(labels), _json(annotations)),
        ).fetchone()
    assert row is not None
    return int(row["id"])


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def events(url: str, alert_id: int) -> list[tuple[str, str]]:
    with connect(url) as conn:
        rows = conn.execute("SELECT kind, actor FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,))
        return [(r["kind"], r["actor"]) for r in rows.fetchall()]


def alert_row(url: str, alert_id: int) -> dict[str, Any]:
    with connect(url) as conn:
        row = conn.execute("SELECT * FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row is not None
    return row


def cli(env: dict[str, str], *args: str, status: int = 0) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "baogong.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == status, (done.stdout, done.stderr)
    return done.stdout + done.stderr


def new_key(env: dict[str, str], member: str) -> str:
    out = cli(env, "responders", "keys", "create", member, "--as", "ops")
    return next(line.strip() for line in out.splitlines() if line.strip().startswith("bg_"))


@dataclass
class App:
    url: str
    env: dict[str, str]
    database_url: str

    def call(self, method: str, path: str, key: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kw)


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    seed_team(database_url)
    settings = Settings.from_env(
        database_url=database_url, alerts_port=free_port(), action_secret=SECRET, alerts_db_connections=2
    )
    return settings.env()


@pytest.fixture
def app(env: dict[str, str], database_url: str, tmp_path: Path) -> Iterator[App]:
    url = f"http://127.0.0.1:{env['BAOGONG_ALERTS_PORT']}"
    with baogong_process(["alerts", "serve"], env, tmp_path / "serve.log") as proc:
        wait_for(lambda: proc.poll() is not None or _up(url), 60, "the responder app")
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        yield App(url, env, database_url)
    assert "bg_" not in (tmp_path / "serve.log").read_text()  # no key ever logged


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_responders_act_over_http_with_their_own_keys(app: App) -> None:
    alert_id = firing_alert(app.database_url)
    amy, bo = new_key(app.env, "T1-team/amy"), new_key(app.env, "bo")

    assert app.call("GET", "/v1/alerts").status_code == 401
    assert app.call("POST", f"/v1/alerts/{alert_id}/ack").status_code == 401
    assert app.call("GET", "/v1/alerts", key=amy[:-4] + "XXXX").status_code == 401  # a forged secret
    listed = app.call("GET", "/v1/alerts?circle=T1&necessity=rice", key=amy).json()["alerts"]
    assert [a["id"] for a in listed] == [alert_id]
    assert app.call("GET", "/v1/alerts?circle=T9", key=amy).json()["alerts"] == []

    first = app.call("POST", f"/v1/alerts/{alert_id}/ack", key=amy, json={"comment": "我去看看"})
    assert first.status_code == 200, first.text
    assert first.json()["changed"] is True and first.json()["state"] == "acknowledged"
    again = app.call("POST", f"/v1/alerts/{alert_id}/ack", key=bo)  # no body at all is fine
    assert again.status_code == 200 and again.json()["changed"] is False
    assert "already acknowledged by T1-team/amy" in again.json()["message"]

    said = app.call("POST", f"/v1/alerts/{alert_id}/comment", key=bo, json={"text": "粮店下午补货"})
    assert said.status_code == 200 and said.json()["changed"] is True
    assert app.call("POST", f"/v1/alerts/{alert_id}/comment", key=bo, json={"text": ""}).status_code == 422
    done = app.call("POST", f"/v1/alerts/{alert_id}/resolve", key=bo, json={"comment": "已到货"})
    assert done.status_code == 200 and done.json()["state"] == "resolved"
    refused = app.call("POST", f"/v1/alerts/{alert_id}/ack", key=amy)
    assert refused.status_code == 409 and "already resolved" in refused.json()["error"]
    assert app.call("POST", "/v1/alerts/999999/ack", key=amy).status_code == 404

    shown = app.call("GET", f"/v1/alerts/{alert_id}", key=amy).json()
    assert shown["alert"]["resolved_by"] == "T1-team/bo"
    kinds = [(e["kind"], e["actor"]) for e in shown["history"]]
    assert ("acknowledged", "T1-team/amy") in kinds and ("commented", "T1-team/bo") in kinds
    assert kinds[-1] == ("resolved", "T1-team/bo")
    assert shown["history"][0]["detail"]["via"] == "http"
    assert alert_row(app.database_url, alert_id)["acknowledged_by"] == "T1-team/amy"

    prefix = amy.split("_")[1]
    assert prefix in cli(app.env, "responders", "keys", "list")
    cli(app.env, "responders", "keys", "revoke", prefix)
    revoked = app.call("GET", "/v1/alerts", key=amy)
    assert revoked.status_code == 403 and "revoked" in revoked.json()["error"]
    assert app.call("GET", "/v1/alerts", key=bo).status_code == 200
    with connect(app.database_url) as conn:  # taken out of the team (a teams import without them)
        conn.execute("DELETE FROM team_members WHERE member_id = 'bo'")
    gone = app.call("GET", "/v1/alerts", key=bo)
    assert gone.status_code == 403 and "no longer a member" in gone.json()["error"]


def test_a_responder_acts_only_on_alerts_for_their_team_or_circle(app: App) -> None:
    alert_id = firing_alert(app.database_url)
    with connect(app.database_url) as conn:
        conn.execute(
            "INSERT INTO circles (id, name, center_lat, center_lon) VALUES ('T2', 'Other circle', 46.70, 126.90)"
        )
        conn.execute(
            "INSERT INTO teams (id, name, kind, circle_id) VALUES ('T2-team', '别圈保供队', 'circle_team', 'T2'), "
            "('T2-owner', '别圈圈主', 'circle_owner', 'T2')"
        )
        conn.execute("INSERT INTO teams (id, name, kind) VALUES ('city', '市商务局', 'city_bureau')")
        conn.execute(
            "INSERT INTO team_members (team_id, member_id, position, name) VALUES ('T2-team', 'cai', 0, '蔡'), "
            "('T2-owner', 'du', 0, '杜'), ('city', 'fan', 0, '范')"
        )
    other, owner, city = (new_key(app.env, m) for m in ("T2-team/cai", "T2-owner/du", "city/fan"))

    refused = app.call("POST", f"/v1/alerts/{alert_id}/ack", key=other)
    assert refused.status_code == 403 and "not for 别圈保供队" in refused.json()["error"]
    assert app.call("POST", f"/v1/alerts/{alert_id}/comment", key=other, json={"text": "x"}).status_code == 403
    assert alert_row(app.database_url, alert_id)["state"] == "firing"
    with connect(app.database_url) as conn:  # the page escalated to T2's owner (say, a shared owner): now told
        conn.execute("UPDATE alerts SET teams = '{T1-team,T2-owner}' WHERE id = %s", (alert_id,))
    assert app.call("POST", f"/v1/alerts/{alert_id}/comment", key=owner, json={"text": "我来协调"}).status_code == 200
    acked = app.call("POST", f"/v1/alerts/{alert_id}/ack", key=city)  # the city bureau oversees every circle
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"


def test_a_signed_link_shows_a_page_and_acts_only_when_posted(app: App) -> None:
    alert_id = firing_alert(app.database_url)
    now = datetime.now(UTC)
    url = links.action_url(app.url, alert_id, "ack", now + timedelta(hours=1), SECRET)

    for _ in range(2):  # a link scanner's prefetch, then the person opening it
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200 and "确认收到" in page.text and "<form" in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
    assert alert_row(app.database_url, alert_id)["state"] == "firing"  # looking acted on nothing

    acted = httpx.post(url, data={"name": "张三", "comment": "马上处理"}, timeout=30)
    assert acted.status_code == 200 and "已确认预警" in acted.text
    row = alert_row(app.database_url, alert_id)
    assert (row["state"], row["acknowledged_by"]) == ("acknowledged", "link:张三")
    twice = httpx.post(url, data={}, timeout=30)
    assert twice.status_code == 200 and "本次未做更改" in twice.text
    assert [k for k, _ in events(app.database_url, alert_id) if k == "acknowledged"] == ["acknowledged"]
    assert "无需重复确认" in httpx.get(url, timeout=30).text

    expired = links.action_url(app.url, alert_id, "resolve", now - timedelta(seconds=1), SECRET)
    assert httpx.get(expired, timeout=30).status_code == 410
    assert httpx.post(expired, timeout=30).status_code == 410
    token = url.rsplit("/", 1)[1]
    other = firing_alert(app.database_url, necessity="flour")
    tampered = f"{app.url}/a/{token.replace(f'{alert_id}.', f'{other}.', 1)}"
    assert httpx.post(tampered, timeout=30).status_code == 403
    foreign = links.action_url(app.url, other, "resolve", now + timedelta(hours=1), "someone-elses-secret-key")
    assert httpx.post(foreign, timeout=30).status_code == 403
    assert alert_row(app.database_url, other)["state"] == "firing"

    resolve = links.action_url(app.url, other, "resolve", now + timedelta(hours=1), SECRET)
    assert "已解决预警" in httpx.post(resolve, timeout=30).text
    assert alert_row(app.database_url, other)["resolved_by"] == "link"


def test_silences_over_http_and_the_cli(app: App) -> None:
    amy = new_key(app.env, "T1-team/amy")
    body = {
        "matchers": ["circle=T1", {"name": "necessity", "value": "rice|flour", "is_regex": True}],
        "duration": "2h",
        "comment": "粮车已在路上",
    }
    created = app.call("POST", "/v1/silences", key=amy, json=body)
    assert created.status_code == 201, created.text
    silence = created.json()
    assert (silence["created_by"], silence["state"]) == ("T1-team/amy", "active")
    assert app.call("POST", "/v1/silences", json=body).status_code == 401
    bad = app.call("POST", "/v1/silences", key=amy, json=body | {"matchers": ["circle=~.*"]})
    assert bad.status_code == 422 and "every alert" in bad.json()["error"]
    assert app.call("POST", "/v1/silences", key=amy, json=body | {"comment": ""}).status_code == 422

    out = cli(
        app.env,
        "alerts",
        "silence",
        "add",
        "circle=T1",
        "rule=feed",
        "--for",
        "30m",
        "--comment",
        "供应商接口维护",
        "--as",
        "ops",
    )
    cli_id = int(out.split()[1])
    listed = app.call("GET", "/v1/silences", key=amy).json()["silences"]
    assert {s["id"] for s in listed} == {silence["id"], cli_id}
    assert "necessity=~rice|flour" in cli(app.env, "alerts", "silence", "list")

    gone = app.call("DELETE", f"/v1/silences/{silence['id']}", key=amy).json()
    assert gone["changed"] is True and gone["silence"]["expired_by"] == "T1-team/amy"
    assert app.call("DELETE", f"/v1/silences/{silence['id']}", key=amy).json()["changed"] is False
    assert "expired" in cli(app.env, "alerts", "silence", "expire", str(cli_id), "--as", "ops")
    assert app.call("GET", "/v1/silences", key=amy).json()["silences"] == []
    everything = app.call("GET", "/v1/silences?all=true", key=amy).json()["silences"]
    assert {s["state"] for s in everything} == {"expired"}
    assert "no silences active" in cli(app.env, "alerts", "silence", "list")
    assert app.call("DELETE", "/v1/silences/999999", key=amy).status_code == 404


def test_the_operator_acts_from_the_cli(env: dict[str, str], database_url: str) -> None:
    alert_id = firing_alert(database_url)
    assert "acknowledged by ops1" in cli(env, "alerts", "ack", str(alert_id), "--as", "ops1", "--comment", "看到了")
    assert "already acknowledged by ops1" in cli(env, "alerts", "ack", str(alert_id), "--as", "ops2")
    cli(env, "alerts", "comment", str(alert_id), "区商务局已通知", "--as", "ops2")
    assert "resolved by ops2" in cli(env, "alerts", "resolve", str(alert_id), "--as", "ops2")
    assert "already resolved" in cli(env, "alerts", "ack", str(alert_id), status=3)
    assert "no alert 999999" in cli(env, "alerts", "ack", "999999", status=2)
    pending = firing_alert(database_url, "flour")
    with connect(database_url) as conn:
        conn.execute("UPDATE alerts SET state = 'pending', starts_at = NULL WHERE id = %s", (pending,))
    assert "has not fired yet" in cli(env, "alerts", "ack", str(pending), status=3)

    shown = cli(env, "alerts", "show", str(alert_id))
    assert "acknowledged" in shown and "ops1 via cli" in shown and '"看到了"' in shown
    assert shown.index("commented") < shown.rindex("resolved")
    assert [k for k, _ in events(database_url, alert_id)].count("acknowledged") == 1
    assert f"{alert_id:>5} resolved" in cli(env, "alerts", "list")  # the existing commands still work
    cli(env, "alerts", "log", "--alert", str(alert_id))


@contextmanager
def served(settings: Settings, clock: Callable[[], datetime]) -> Iterator[str]:
    """The responder app in this process (uvicorn in a thread, a real socket), judging links at `clock`."""
    import threading

    import uvicorn

    from alerts.http import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, clock), port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 30, "the in-process responder app", every_s=0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_link_expiry_follows_the_apps_clock_and_links_can_be_off(database_url: str) -> None:
    seed_team(database_url)
    alert_id = firing_alert(database_url)
    t0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    now = [t0]
    token = links.sign(alert_id, "ack", t0 + timedelta(hours=1), SECRET)
    with served(Settings.from_env(database_url=database_url, action_secret=SECRET), lambda: now[0]) as url:
        assert httpx.get(f"{url}/a/{token}", timeout=30).status_code == 200
        now[0] = t0 + timedelta(hours=1)  # the expiry second itself is too late
        assert httpx.post(f"{url}/a/{token}", timeout=30).status_code == 410
    assert alert_row(database_url, alert_id)["state"] == "firing"
    with served(Settings.from_env(database_url=database_url), lambda: t0) as url:
        off = httpx.post(f"{url}/a/{token}", timeout=30)
        assert off.status_code == 404 and "未启用" in off.text
    assert alert_row(database_url, alert_id)["state"] == "firing"
