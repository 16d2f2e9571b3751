"""The spine, end to end on real services: HTTP push -> Kafka -> Faust -> PostgreSQL -> webhook.

A supermarket chain pushes rice stock for a one-circle city; the circle
drops into a rice shortage, stays short for a while (more reports arrive),
then recovers. The webhook receiver must get exactly one firing and then
exactly one resolved notification, in the Alertmanager webhook format.
Runs on the configured broker (Apache Kafka under `make test`) and on Tansu.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from baogong.settings import Settings
from schema.db import connect
from tests.support import Receiver, baogong_process, free_port, read_topic, seed_tiny_city, wait_for

pytestmark = pytest.mark.e2e
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _rice(outlet: str, kg: float, at: datetime) -> dict[str, Any]:
    return {
        "outlet_id": outlet,
        "necessity": "rice",
        "quantity": kg,
        "unit": "kg",
        "reported_at": at.isoformat(timespec="seconds"),
    }


def _level(url: str) -> dict[str, Any] | None:
    with connect(url) as conn:
        return conn.execute(
            "SELECT status, days_of_supply FROM circle_levels_latest WHERE circle_id = 'T1' AND necessity = 'rice'"
        ).fetchone()


def test_stock_report_pages_once_and_resolves_once(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    keys = seed_tiny_city(database_url)
    receiver = Receiver()
    api_port = free_port()
    settings = Settings.from_env(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        topic_prefix=topic_prefix,
        worker_id=f"baogong-test-{topic_prefix.strip('.')}",
        worker_port=free_port(),
        api_port=api_port,
        level_interval_s=1.0,
        eval_interval_s=1.0,
        alert_for_s=2.0,
        alert_clear_for_s=2.0,
        webhook_urls=(receiver.url,),
        sink_max_wait_s=0.2,
    )
    env = settings.env()
    api = f"http://127.0.0.1:{api_port}"
    headers = {"Authorization": f"Bearer {keys['s1'].key}"}
    now = datetime.now(SHANGHAI)

    def push(kg: float, at: datetime) -> None:
        r = httpx.post(f"{api}/v1/inventory", json=[_rice("O1", kg, at), _rice("O2", kg, at)], headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 2

    try:
        with (
            baogong_process(["api"], env, tmp_path / "api.log"),
            baogong_process(["worker"], env, tmp_path / "worker.log"),
            baogong_process(["alerts", "run"], env, tmp_path / "alerts.log"),
        ):
            wait_for(lambda: _healthy(api), 60, "the API to answer")

            push(1000, now - timedelta(minutes=3))  # 2,000 kg for 250 kg/day: 8 days
            wait_for(lambda: (lv := _level(database_url)) and lv["status"] == "OK", 90, "rice OK in circle T1")

            push(200, now - timedelta(minutes=2))  # 400 kg: 1.6 days, a shortage
            wait_for(lambda: _level(database_url)["status"] == "SHORTAGE", 30, "rice SHORTAGE")
            firing = wait_for(lambda: [b for b in receiver.bodies if b["status"] == "firing"], 30, "the firing page")

            push(150, now - timedelta(minutes=1))  # still short, a newer report: must not page again
            time.sleep(4)

            push(1000, now)  # recovered: 8 days, far above 3 * 1.2
            wait_for(lambda: [b for b in receiver.bodies if b["status"] == "resolved"], 30, "the resolved page")
            time.sleep(4)  # a second page would arrive within a few evaluations
    except AssertionError:
        for name in ("api", "worker", "alerts"):
            print(f"----- {name}.log -----\n" + (tmp_path / f"{name}.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        receiver.close()

    statuses = [b["status"] for b in receiver.bodies]
    assert statuses == ["firing", "resolved"], statuses
    page = firing[0]
    assert page["version"] == "4"
    alert = page["alerts"][0]
    assert alert["labels"]["alertname"] == "SupplyShortage"
    assert alert["labels"]["circle"] == "T1" and alert["labels"]["necessity"] == "rice"
    assert alert["fingerprint"] == receiver.bodies[1]["alerts"][0]["fingerprint"]
    assert receiver.bodies[1]["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"

    with connect(database_url) as conn:
        rows = conn.execute("SELECT state FROM alerts WHERE rule = 'shortage'").fetchall()
        assert [r["state"] for r in rows] == ["resolved"]
        reports = conn.execute("SELECT count(*) AS n FROM outlet_reports").fetchone()
        assert reports["n"] == 8  # 4 pushes x 2 outlets, each exactly once

    levels = [json.loads(v) for k, v in read_topic(kafka_bootstrap, topic_prefix + "supply.circle-levels.v1")]
    assert levels and all(m["circle_id"] == "T1" for m in levels)
    assert {m["necessities"]["rice"]["status"] for m in levels} >= {"OK", "SHORTAGE"}


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
