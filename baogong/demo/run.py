"""`baogong demo`: services, schema, demo city, API, worker, dispatcher, simulator, live table.

Blocks until Ctrl-C (or `duration_s`), writes the day's situation report
(`baogong report`, into `<state_dir>/reports/`) and prints where, then stops
every process it started and the local services. Child logs go to `<state_dir>/logs/demo-*.log`; the
terminal shows a live status table and every page the demo's own webhook
receiver gets, so a person sees a shortage fire and resolve.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from baogong import services
from baogong.demo.emergency import DemoEmergency, lift_demo_emergencies
from baogong.demo.prices import DemoPrices, price_history
from baogong.demo.responder import DemoResponder
from baogong.demo.simulator import Scenario, Simulator
from baogong.settings import Settings
from schema.db import connect
from schema.demo_city import build_demo_city
from schema.migrate import migrate
from schema.seed import seed_demo

SHANGHAI = ZoneInfo("Asia/Shanghai")
COLOURS = {"OK": "\033[32m", "WATCH": "\033[33m", "SHORTAGE": "\033[31m", "CRITICAL": "\033[1;31m", "STALE": "\033[90m"}
RESET = "\033[0m"
SHORT = {
    "rice": "rice",
    "flour": "flour",
    "cooking_oil": "oil",
    "pork": "pork",
    "eggs": "eggs",
    "leafy_vegetables": "leafy",
    "root_vegetables": "root",
    "milk": "milk",
    "bottled_water": "water",
    "instant_noodles": "noodl",
    "salt": "salt",
    "fever_medicine": "medic",
}
BATCH = 500
DEMO_TEAMS_PORT = 8099


class PageLog:
    """The demo's own webhook receiver: a real HTTP server that remembers what it was sent."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        lines = self.lines

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                team = self.path.rsplit("/", 1)[-1] if self.path.startswith("/demo/") else ""  # demo_teams.yaml
                for a in body.get("alerts", []):
                    stamp = datetime.now(SHANGHAI).strftime("%H:%M:%S")
                    notes = a.get("annotations", {})
                    said = " ".join(x for x in (notes.get("summary", ""), notes.get("notice", "")) if x)
                    lines.append(f"{stamp} {a.get('status', body['status']).upper():8} {team:>15} {said}")
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        try:  # the demo teams' channels (schema/demo_teams.yaml) post to 127.0.0.1:8099/demo/<team>
            self.server = ThreadingHTTPServer(("127.0.0.1", DEMO_TEAMS_PORT), Handler)
        except OSError:
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/demo-pages"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run_demo(base: Settings, duration_s: float | None = None) -> int:
    pages = PageLog()
    settings = base.model_copy(
        update={
            "webhook_urls": (*base.webhook_urls, pages.url),
            "level_interval_s": 2.0,
            "eval_interval_s": 2.0,
            "alert_for_s": 10.0,
            "alert_clear_for_s": 10.0,
            "escalate_after_min": {"critical": 0.5, "high": 0.5},  # unacknowledged: the next team after 30 s
            "teams_reload_s": 5.0,
            "price_every_s": 10.0,  # C05's rice spike is graded within seconds (baogong/demo/prices.py)
        }
    )
    url = settings.database_url.get_secret_value()
    print("Baogong demo — SYNTHETIC city sized from Suihua's Beilin pilot (10 circles, 316,000 residents)")
    services.up(settings)
    migrate(url, on_apply=lambda m: print(f"  migration {m.version:04d}_{m.name} applied"))
    seeded = seed_demo(url)
    keys = {k.supplier_id: k.key for k in seeded.keys}
    print(f"  {price_history(url, datetime.now(SHANGHAI), settings.price_min_history_days)}")
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **settings.env()}
    procs: list[subprocess.Popen[bytes]] = []
    for name, args in (("api", ["api"]), ("worker", ["worker"]), ("alerts", ["alerts", "run"])):
        log = open(logs / f"demo-{name}.log", "wb")  # noqa: SIM115 - lives as long as the child
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "baogong.cli", *args], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        )
        print(f"  started {name} (log: {logs / f'demo-{name}.log'})")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        return _loop(settings, keys, pages, procs, stop, duration_s)
    except KeyboardInterrupt:
        print("\nstopping…")
        return 0
    finally:
        _write_report(settings)
        try:
            lift_demo_emergencies(url, "the demo stopped")
        except Exception as exc:  # never fails the shutdown
            print(f"the demo's emergency was not lifted: {exc}")
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        pages.server.shutdown()
        services.down(settings)  # only what `services up` started here; a server that was already running stays
        print("demo stopped (services it started are stopped; ones already running were left as they were).")


def _write_report(settings: Settings) -> None:
    """The day's situation report, while the database is still up; says where it is (never fails the demo)."""
    from baogong.report import write_report

    try:
        day = datetime.now(SHANGHAI).date()
        path = write_report(settings.database_url.get_secret_value(), day, settings.state_dir / "reports")
        print(f"daily situation report (open in a browser, prints on A4): {path.resolve()}")
    except KeyboardInterrupt:
        print("daily situation report skipped (interrupted)")
    except Exception as exc:
        print(f"daily situation report not written: {exc}")


def _loop(
    settings: Settings,
    keys: dict[str, str],
    pages: PageLog,
    procs: list[subprocess.Popen[bytes]],
    stop: threading.Event,
    duration_s: float | None,
) -> int:
    api = f"http://{settings.api_host}:{settings.api_port}"
    with httpx.Client(timeout=30) as client:
        _wait_api(client, api, procs)
        # Long enough for the page to escalate, the team to acknowledge and the goods to be dispatched.
        scenario = Scenario(short_until_s=130.0)
        city = build_demo_city()
        sim = Simulator(city, scenario)
        team = DemoResponder(settings.database_url.get_secret_value(), scenario)
        emergency = DemoEmergency(settings.database_url.get_secret_value())  # grade III over C05 at t=40 s
        prices = DemoPrices(settings.database_url.get_secret_value(), city, keys)  # C05's rice +45 % at t=40 s
        started = time.monotonic()
        next_push = 0.0
        pushed = 0
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if duration_s is not None and elapsed > duration_s:
                return 0
            for p in procs:
                if p.poll() is not None:
                    print(f"a demo process exited with {p.returncode}; see {settings.state_dir / 'logs'}")
                    return 1
            if elapsed >= next_push:
                next_push = elapsed + 5.0
                pushed += _push(client, api, keys, sim.records(elapsed, datetime.now(SHANGHAI)))
            team.act(elapsed)
            emergency.act(elapsed)
            prices.act(client, api, elapsed, datetime.now(SHANGHAI))
            _draw(settings, scenario, elapsed, pushed, pages, [*team.lines(), *emergency.lines(), *prices.lines()])
            stop.wait(2.0)
    return 0


def _wait_api(client: httpx.Client, api: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if client.get(f"{api}/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.5)
    raise SystemExit("the demo API did not come up; read .baogong/logs/demo-api.log")


def _push(client: httpx.Client, api: str, keys: dict[str, str], by_supplier: dict[str, list[dict[str, Any]]]) -> int:
    accepted = 0
    for supplier, records in by_supplier.items():
        key = keys.get(supplier)
        if key is None:
            continue
        for i in range(0, len(records), BATCH):
            r = client.post(f"{api}/v1/inventory", json=records[i : i + BATCH], headers={"X-API-Key": key})
            if r.status_code == 200:
                accepted += int(r.json()["accepted"])
    return accepted


def _draw(settings: Settings, scenario: Scenario, elapsed: float, pushed: int, pages: PageLog, team: list[str]) -> None:
    with connect(settings.database_url.get_secret_value()) as conn:
        levels = conn.execute(
            "SELECT circle_id, necessity, days_of_supply, status FROM circle_levels_latest ORDER BY 1, 2"
        ).fetchall()
        open_alerts = conn.execute(
            "SELECT state, rule, circle_id, necessity, severity, escalation_level FROM alerts "
            "WHERE state <> 'resolved' ORDER BY id"
        ).fetchall()
    table: dict[str, dict[str, tuple[float | None, str]]] = {}
    for r in levels:
        table.setdefault(str(r["circle_id"]), {})[str(r["necessity"])] = (r["days_of_supply"], str(r["status"]))  # type: ignore[assignment]
    out = ["\033[2J\033[H"]
    phase = (
        "normal"
        if elapsed < scenario.short_from_s
        else f"{scenario.necessity} deliveries to {scenario.circle_id} stopped"
        if elapsed < scenario.short_until_s
        else f"{scenario.necessity} restocked in {scenario.circle_id}"
    )
    out.append(f"Baogong demo  t={elapsed:5.0f}s  records accepted: {pushed:,}  scenario: {phase}   (Ctrl-C stops)")
    out.append("days of supply per living circle (status colour: OK WATCH SHORTAGE CRITICAL STALE)")
    out.append("circle " + " ".join(f"{SHORT[n]:>6}" for n in SHORT))
    for circle, row in sorted(table.items()):
        cells = []
        for n in SHORT:
            days, status = row.get(n, (None, "STALE"))
            text = "   ?" if days is None else f"{days:6.1f}"
            cells.append(f"{COLOURS.get(status, '')}{text:>6}{RESET}")
        out.append(f"{circle:6} " + " ".join(cells))
    out.append("")
    out.append(
        "open alerts: "
        + (
            ", ".join(
                f"{_subject(a)} {a['state']} ({a['severity']}"
                + (f", escalated {a['escalation_level']}x" if a["escalation_level"] else "")
                + ")"
                for a in open_alerts
            )
            or "none"
        )
    )
    out.extend(team)
    out.append("pages received by the demo teams' channels:")
    out.extend(f"  {line}" for line in pages.lines[-8:]) if pages.lines else out.append("  (none yet)")
    print("\n".join(out), flush=True)


def _subject(alert: dict[str, Any]) -> str:
    """'C03/rice' for a shortage; the rule first for any other ('price_spike C05/rice', 'pipeline_stalled')."""
    where = f"{alert['circle_id']}/{alert['necessity'] or '-'}" if alert["circle_id"] else ""
    return where if alert["rule"] == "shortage" else f"{alert['rule']} {where}".strip()
