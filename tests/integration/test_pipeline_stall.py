"""Current, or it says so: a stopped worker pages the operators, holds shortage alerts still, and recovers.

Real broker (the configured one), real PostgreSQL, real `baogong worker` and
`baogong alerts run` processes, real webhook receivers for responders and
operators, `baogong status` run as a person runs it, and `/metrics` scraped
over HTTP from the running worker.

The shortage hold (`alert_for_s`, 20 s) is much longer than the stall bound
(3 s: three level intervals of 1 s), so a shortage computed just before the
worker stops would fire on frozen numbers if stale levels were not unknown.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaProducer

from baogong.settings import Settings
from schema.db import connect
from tests.support import Receiver, baogong_process, free_port, seed_tiny_city, wait_for

ALERT_FOR_S = 20.0


def _report(outlet: str, kg: float, at: datetime) -> bytes:
    return json.dumps(
        {
            "kind": "inventory",
            "v": 1,
            "supplier_id": "s1",
            "outlet_id": outlet,
            "reported_at": at.isoformat(),
            "lines": [{"necessity": "rice", "quantity": kg, "unit": "kg"}],
        }
    ).encode()


def _one(url: str, query: str) -> dict[str, Any] | None:
    with connect(url) as conn:
        return conn.execute(query).fetchone()


def _status(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baogong.cli", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _metrics(port: int) -> str:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.HTTPError:
        return ""
    return response.text if response.status_code == 200 else ""


def _pages(receiver: Receiver, alertname: str, status: str) -> list[dict[str, Any]]:
    return [b for b in receiver.bodies if b["status"] == status and b["commonLabels"].get("alertname") == alertname]


def test_a_stopped_worker_pages_operators_and_holds_shortages_still(
    configured_kafka: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    seed_tiny_city(database_url)
    responders, operators = Receiver(), Receiver()
    worker_port = free_port()
    settings = Settings.from_env(
        kafka_bootstrap=configured_kafka,
        database_url=database_url,
        topic_prefix=topic_prefix,
        worker_id=f"baogong-test-{topic_prefix.strip('.')}",
        worker_port=worker_port,
        partitions=2,
        level_interval_s=1.0,
        eval_interval_s=1.0,
        alert_for_s=ALERT_FOR_S,
        alert_clear_for_s=1.0,
        sink_max_wait_s=0.2,
        webhook_urls=(responders.url,),
        operator_webhook_urls=(operators.url,),
    )
    assert settings.stall_bound_s == 3.0
    env = {**settings.env()}
    producer = KafkaProducer(bootstrap_servers=configured_kafka, acks="all")
    topic = settings.topic("supply.inventory.v1")
    now = datetime.now(UTC)

    def publish(kg: float, at: datetime) -> None:
        for outlet in ("O1", "O2"):
            producer.send(topic, key=outlet.encode(), value=_report(outlet, kg, at))
        producer.flush()

    def logs() -> str:
        return "\n".join(
            f"----- {p.name} -----\n" + p.read_text(errors="replace")[-4000:] for p in sorted(tmp_path.glob("*.log"))
        )

    try:
        with baogong_process(["alerts", "run"], env, tmp_path / "alerts.log"):
            with baogong_process(["worker"], env, tmp_path / "worker-1.log") as worker:
                publish(1000, now - timedelta(minutes=3))  # 2,000 kg for 250 kg a day: 8 days, OK
                wait_for(
                    lambda: (
                        (
                            lv := _one(
                                database_url,
                                "SELECT status, lag_reports FROM circle_levels_latest "
                                "WHERE circle_id = 'T1' AND necessity = 'rice'",
                            )
                        )
                        and lv["status"] == "OK"
                        and lv["lag_reports"] == 0
                    ),
                    120,
                    "rice OK in T1, computed with the lag measured and caught up",
                )
                current = wait_for(lambda: (r := _status(env)).returncode == 0 and r, 30, "`baogong status` current")
                assert "Circle levels: CURRENT" in current.stdout, current.stdout
                assert "0 reports" in current.stdout and topic in current.stdout, current.stdout

                scraped = wait_for(
                    lambda: (m := _metrics(worker_port)) and "baogong_levels_computed_timestamp_seconds " in m and m,
                    30,
                    "/metrics from the worker",
                )
                assert f'baogong_stream_lag_reports{{topic="{topic}"}} 0.0' in scraped, scraped[-3000:]
                assert f'baogong_stream_lag_seconds{{topic="{topic}"}}' in scraped
                assert 'baogong_report_lines_written_total{kind="inventory"}' in scraped
                assert "baogong_levels_computed_timestamp_seconds 0.0" not in scraped

                publish(200, now - timedelta(minutes=2))  # 400 kg: 1.6 days, a shortage
                wait_for(
                    lambda: _one(database_url, "SELECT state FROM alerts WHERE rule = 'shortage'"),
                    60,
                    "the shortage alert pending",
                )
                worker.terminate()  # the worker stops with the shortage computed but not yet fired
                worker.wait(timeout=60)

            stalled = wait_for(
                lambda: _pages(operators, "PipelineStalled", "firing"), 60, "PipelineStalled to the operators"
            )
            alert = stalled[0]["alerts"][0]
            assert "not current" in alert["annotations"]["summary"]
            assert "baogong worker" in alert["annotations"]["description"]
            pending = _one(database_url, "SELECT state, pending_since FROM alerts WHERE rule = 'shortage'")
            assert pending is not None and pending["state"] == "pending"
            # the dispatcher keeps evaluating past the moment the shortage would have fired on frozen numbers
            fire_time = pending["pending_since"] + timedelta(seconds=ALERT_FOR_S + 2)
            wait_for(
                lambda: (
                    (a := _one(database_url, "SELECT updated_at FROM alerts WHERE rule = 'pipeline'"))
                    and a["updated_at"] > fire_time
                ),
                90,
                "an evaluation after the shortage's hold time",
            )
            held = _one(database_url, "SELECT state, starts_at FROM alerts WHERE rule = 'shortage'")
            assert held is not None and held["state"] == "pending" and held["starts_at"] is None
            assert responders.bodies == []

            stalled_status = _status(env)
            assert stalled_status.returncode == 1, stalled_status.stdout + stalled_status.stderr
            assert "Circle levels: STALLED" in stalled_status.stdout
            assert "Is `baogong worker` running?" in stalled_status.stdout

            publish(1000, now - timedelta(minutes=1))  # recovered while nobody was computing: 8 days
            with baogong_process(["worker"], env, tmp_path / "worker-2.log"):
                wait_for(lambda: _pages(operators, "PipelineStalled", "resolved"), 120, "PipelineStalled resolved")
                wait_for(
                    lambda: (
                        (a := _one(database_url, "SELECT state FROM alerts WHERE rule = 'shortage'"))
                        and a["state"] == "resolved"
                    ),
                    60,
                    "the shortage closed on current levels",
                )
                back = wait_for(lambda: (r := _status(env)).returncode == 0 and r, 30, "`baogong status` current again")
                assert "Circle levels: CURRENT" in back.stdout
    except AssertionError:
        print(logs())
        raise
    finally:
        producer.close()
        responders.close()
        operators.close()

    assert responders.bodies == []  # never fired on numbers nobody was computing, so nothing to resolve
    assert [b["status"] for b in operators.bodies] == ["firing", "resolved"], [
        (b["status"], b["alerts"][0]["startsAt"], b["alerts"][0]["endsAt"], b["commonAnnotations"]["summary"])
        for b in operators.bodies
    ]
    resolved = operators.bodies[1]["alerts"][0]
    assert resolved["annotations"]["summary"] == "Circle levels are current"
    assert resolved["fingerprint"] == alert["fingerprint"]
