"""Delivery that cannot stall or reorder, against the real PostgreSQL and real HTTP receivers.

- a receiver that hangs delays neither another receiver's pages nor evaluation
  (a real `baogong alerts run`);
- a receiver down (503) for ten minutes gets every page exactly once once it
  is back, firing before resolved, with two dispatchers polling at once
  (time driven explicitly);
- a dispatcher killed with SIGKILL while a receiver holds its request open
  loses nothing: after the restart the page arrives again;
- a dead receiver's rows expire, visibly, in `baogong alerts log --undelivered`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import httpx
from psycopg.types.json import Jsonb

from alerts.dispatch import DeliveryPolicy, deliver_once, expire
from alerts.model import Alert, Event, fingerprint
from alerts.notify.webhook import WebhookNotifier, alertmanager_payload, receiver_name
from baogong.settings import Settings
from schema.db import QUERIES, connect, make_pool
from tests.support import baogong_process, free_port, wait_for

Answer = Literal["ok", "fail", "hold"]


class ScriptedReceiver:
    """A real webhook receiver whose answer to request n (0, 1, …) is `script(n)`.

    "ok" answers 200, "fail" 503, "hold" keeps the request open (the handler
    blocks) until `release` is set, then answers 200. `requests` has every
    body read, `accepted` those answered 200; `held` is set while a request
    is being held.
    """

    def __init__(self, script: Callable[[int], Answer]) -> None:
        self.requests: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self.held = threading.Event()
        self.release = threading.Event()
        self.holding = 0
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                answer = script(len(me.requests))
                me.requests.append(body)
                if answer == "hold":
                    me.holding += 1
                    me.held.set()
                    me.release.wait(60)
                    me.holding -= 1
                status = 503 if answer == "fail" else 200
                try:
                    self.send_response(status)
                    self.end_headers()
                except OSError:
                    return  # the dispatcher is gone (killed): it never saw this answer
                if status == 200:
                    me.accepted.append(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self.name = receiver_name(self.url)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def receivers(*scripts: Callable[[int], Answer]) -> Iterator[list[ScriptedReceiver]]:
    made = [ScriptedReceiver(s) for s in scripts]
    try:
        yield made
    finally:
        for r in made:
            r.close()


def statuses(bodies: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(b["alerts"][0]["fingerprint"], b["status"]) for b in bodies]


def queue(url: str, name: str, events: list[Event], receivers: list[str]) -> Alert:
    """Write an alert and its notifications the way evaluation does (the same statements)."""
    labels = {"alertname": "SupplyShortage", "circle": "T1", "necessity": name, "severity": "high"}
    at = datetime.now(UTC)
    alert = Alert(fingerprint(labels), "shortage", "high", "firing", labels, {"summary": name}, at, starts_at=at)
    with connect(url) as conn:
        row = conn.execute(
            QUERIES["insert_alert"],
            {
                "fingerprint": alert.fingerprint,
                "rule": alert.rule,
                "circle_id": "T1",
                "necessity": name,
                "severity": alert.severity,
                "state": alert.state,
                "labels": Jsonb(labels),
                "annotations": Jsonb(alert.annotations),
                "pending_since": at,
                "starts_at": at,
            },
        ).fetchone()
        assert row is not None
        for event in events:
            for receiver in receivers:
                conn.execute(
                    QUERIES["insert_notification"],
                    {
                        "alert_id": row["id"],
                        "receiver": receiver,
                        "status": event.value,
                        "payload": Jsonb(alertmanager_payload(alert, event, receiver)),
                    },
                )
    return alert


def rows(url: str, where: str = "true") -> list[dict[str, Any]]:
    with connect(url) as conn:
        return conn.execute(f"SELECT * FROM notifications WHERE {where} ORDER BY id").fetchall()


def attempts(url: str) -> list[dict[str, Any]]:
    with connect(url) as conn:
        return conn.execute("SELECT * FROM notification_attempts ORDER BY id").fetchall()


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "baogong.cli", "alerts", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def stalled_pipeline(url: str) -> None:
    """A level heartbeat an hour old: the dispatcher's own evaluation fires PipelineStalled at once."""
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO pipeline_status (id, levels_at, lag_reports, lag_s, worker) "
            "VALUES ('levels', now() - interval '1 hour', 0, 0, 'test')"
        )


def dispatcher_env(url: str, urls: tuple[str, ...], **overrides: Any) -> dict[str, str]:
    settings = Settings.from_env(
        database_url=url, webhook_urls=urls, eval_interval_s=0.5, stall_after_s=600, **overrides
    )
    return {**settings.env()}


def test_a_hanging_receiver_delays_neither_another_receiver_nor_evaluation(database_url: str, tmp_path: Path) -> None:
    stalled_pipeline(database_url)
    with receivers(lambda n: "hold", lambda n: "ok") as (hanging, ok):
        env = dispatcher_env(database_url, (hanging.url, ok.url), notify_timeout_s=60, notify_lease_s=120)
        log = tmp_path / "alerts.log"
        try:
            with baogong_process(["alerts", "run"], env, log):
                wait_for(lambda: hanging.held.is_set(), 60, "the hanging receiver to be holding the page")
                wait_for(lambda: ok.accepted, 10, "the other receiver's page")
                # evaluation goes on while the hanging receiver still holds its request
                with connect(database_url) as conn:
                    conn.execute("UPDATE pipeline_status SET levels_at = now() WHERE id = 'levels'")
                wait_for(lambda: len(ok.accepted) == 2, 10, "the other receiver's resolution")
                assert hanging.holding == 1 and len(hanging.requests) == 1, "still hanging on the firing page"
                assert [s for _, s in statuses(ok.accepted)] == ["firing", "resolved"]
                assert [s for _, s in statuses(hanging.requests)] == ["firing"]  # its resolution waits its turn

                hanging.release.set()
                wait_for(lambda: len(hanging.accepted) == 2, 10, "the hanging receiver's pages once it answers")
        except AssertionError:
            print(log.read_text(errors="replace")[-4000:])
            raise
    assert [s for _, s in statuses(hanging.accepted)] == ["firing", "resolved"]
    assert all(r["state"] == "delivered" and r["attempts"] == 1 for r in rows(database_url))


def test_a_receiver_down_for_ten_minutes_gets_every_page_once_in_order(database_url: str) -> None:
    down = True
    with receivers(lambda n: "fail" if down else "ok") as (flaky,):
        queue(database_url, "rice", [Event.FIRED, Event.RESOLVED], [flaky.name])
        queue(database_url, "oil", [Event.FIRED], [flaky.name])
        t0 = max(r["created_at"] for r in rows(database_url))
        policy = DeliveryPolicy(timeout_s=5, lease_s=30)
        now = t0

        async def scenario() -> None:
            nonlocal down, now
            pool = make_pool(database_url, max_size=4)
            await pool.open(wait=True)

            def clock() -> datetime:
                return now

            try:
                async with httpx.AsyncClient() as client:
                    notifier = WebhookNotifier(flaky.url, client)
                    for _ in range(40):
                        down = now < t0 + timedelta(minutes=10)
                        # two dispatchers poll the same receiver at the same moment: leases keep them apart
                        await asyncio.gather(
                            deliver_once(pool, notifier, "dispatcher-a", policy, clock),
                            deliver_once(pool, notifier, "dispatcher-b", policy, clock),
                        )
                        queued = rows(database_url, "state = 'queued'")
                        if not queued:
                            return
                        heads = {r["alert_id"]: r for r in reversed(queued)}.values()  # each alert's oldest
                        now = max(now, min(r["next_attempt_at"] for r in heads))
                    raise AssertionError("pages still queued after 40 rounds")
            finally:
                await pool.close()

        asyncio.run(scenario())

    rice, oil = fingerprint_of(database_url, "rice"), fingerprint_of(database_url, "oil")
    sent, got = statuses(flaky.requests), statuses(flaky.accepted)
    # the resolution was sent once, only after the receiver had taken the firing
    assert sent.count((rice, "resolved")) == 1
    assert sent.index((rice, "resolved")) > len(sent) - len(got)
    # once back, every request was taken: no duplicate (as multisets: two dispatchers' requests of one round are
    # concurrent, so the receiver's threads may log them in either order)
    assert sorted(sent[len(sent) - len(got) :]) == sorted(got)
    # once back: each page exactly once, firing before resolved
    assert sorted(got) == sorted([(rice, "firing"), (rice, "resolved"), (oil, "firing")]), got
    assert got.index((rice, "firing")) < got.index((rice, "resolved"))
    assert now >= t0 + timedelta(minutes=10)
    notes = rows(database_url)
    assert all(r["state"] == "delivered" and r["lease_owner"] is None for r in notes)
    log = attempts(database_url)
    assert [a["outcome"] for a in log].count("delivered") == 3
    failed = [a for a in log if a["outcome"] == "failed"]
    assert failed and all("HTTP 503" in a["error"] for a in failed)
    backoffs = sorted({(a["finished_at"] - t0).total_seconds() for a in failed})
    assert backoffs[:3] == [0.0, 1.0, 3.0], backoffs  # 1 s, then 2 s, … doubling, capped at 5 min


def fingerprint_of(url: str, necessity: str) -> str:
    with connect(url) as conn:
        row = conn.execute("SELECT fingerprint FROM alerts WHERE necessity = %s", (necessity,)).fetchone()
    assert row is not None
    return str(row["fingerprint"])


def test_a_dispatcher_killed_mid_delivery_loses_nothing(database_url: str, tmp_path: Path) -> None:
    """SIGKILL while the receiver holds the page open; the restarted dispatcher sends it again.

    A duplicate is not only possible here but certain: the receiver had read
    the page before the dispatcher died, and the dispatcher never learnt it.
    The receiver de-duplicates by fingerprint + status (as Alertmanager's
    receivers do), and that leaves exactly one page.
    """
    stalled_pipeline(database_url)
    with receivers(lambda n: "hold" if n == 0 else "ok") as (receiver,):
        env = dispatcher_env(database_url, (receiver.url,), notify_timeout_s=3, notify_lease_s=4)
        try:
            with baogong_process(["alerts", "run"], env, tmp_path / "alerts-1.log") as first:
                wait_for(lambda: receiver.held.is_set(), 60, "the page held open by the receiver", every_s=0.05)
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
            receiver.release.set()  # its answer goes nowhere
            (note,) = rows(database_url)
            assert note["state"] == "queued" and note["lease_owner"] is not None  # decided, not known to be sent

            killed_at = time.monotonic()
            with baogong_process(["alerts", "run"], env, tmp_path / "alerts-2.log"):
                wait_for(lambda: receiver.accepted, 60, "the page after the restart")
                wait_for(lambda: rows(database_url)[0]["state"] == "delivered", 10, "the page recorded delivered")
            assert time.monotonic() - killed_at < 30
        except AssertionError:
            for p in sorted(tmp_path.glob("*.log")):
                print(f"----- {p.name} -----\n" + p.read_text(errors="replace")[-3000:])
            raise

    pages = statuses(receiver.requests)
    assert len(pages) == 2 and pages[0] == pages[1] and pages[0][1] == "firing"  # sent twice: at-least-once
    assert len(set(pages)) == 1  # ... and one page once de-duplicated by fingerprint + status
    lost, delivered = attempts(database_url)
    assert lost["outcome"] == "lost" and lost["dispatcher"] == note["lease_owner"] and lost["attempt"] == 1
    assert delivered["outcome"] == "delivered" and delivered["dispatcher"] != lost["dispatcher"]
    assert delivered["attempt"] == 2
    shown = cli(dispatcher_env(database_url, ()), "log", "--attempts")
    assert "delivered" in shown and "lost by " + lost["dispatcher"] in shown, shown


def test_a_dead_receivers_pages_expire_visibly(database_url: str) -> None:
    dead_url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with receivers(lambda n: "ok") as (alive,):
        queue(database_url, "rice", [Event.FIRED], [receiver_name(dead_url), alive.name, "webhook-gone"])
        t0 = rows(database_url)[0]["created_at"]
        policy = DeliveryPolicy(timeout_s=5, lease_s=30, expire_after_s=24 * 3600)

        async def scenario() -> None:
            pool = make_pool(database_url, max_size=2)
            await pool.open(wait=True)
            try:
                async with httpx.AsyncClient() as client:
                    dead = WebhookNotifier(dead_url, client)
                    for n in (dead, WebhookNotifier(alive.url, client)):
                        assert await deliver_once(pool, n, "dispatcher-a", policy, lambda: t0) == 1
                    assert await expire(pool, t0 + timedelta(hours=23), policy) == []
                    expired = await expire(pool, t0 + timedelta(hours=25), policy, "dispatcher-a")
                    assert sorted(r["receiver"] for r in expired) == sorted([receiver_name(dead_url), "webhook-gone"])
                    later = t0 + timedelta(hours=26)
                    assert await deliver_once(pool, dead, "dispatcher-a", policy, lambda: later) == 0
            finally:
                await pool.close()

        asyncio.run(scenario())
    assert len(alive.accepted) == 1
    by_receiver = {r["receiver"]: r for r in rows(database_url)}
    dead = by_receiver[receiver_name(dead_url)]
    assert dead["state"] == "expired" and dead["attempts"] == 1 and "ConnectError" in dead["last_error"]
    assert by_receiver["webhook-gone"]["state"] == "expired" and by_receiver["webhook-gone"]["attempts"] == 0
    assert by_receiver[alive.name]["state"] == "delivered"

    env = dispatcher_env(database_url, ())
    shown = cli(env, "log", "--undelivered", "--attempts")
    assert alive.name not in shown
    assert f"-> {receiver_name(dead_url)}: EXPIRED" in shown and "ConnectError" in shown, shown
    assert "-> webhook-gone: EXPIRED" in shown and "never attempted (is the receiver configured?)" in shown, shown
    assert "not delivered within 24 h" in shown
    assert cli(env, "log", "--receiver", alive.name).count(f"-> {alive.name}: delivered") == 1
