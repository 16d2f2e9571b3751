"""Live levels on the real broker and database: a pushed report shows in its circle's level without the full pass.

The worker runs with a level interval of an hour, so its periodic full pass never runs during the test (Faust's
timer waits one interval before its first tick): every level seen here was computed by the live path, woken by
PostgreSQL's notification when the worker committed the batch. History gets a row per change, not per pass.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer

from schema.db import connect
from streams.circles import HISTORY_EVERY
from tests.integration.worker_harness import (
    OUTLETS,
    create_topics,
    produce,
    report,
    seed_stream_city,
    worker_settings,
)
from tests.support import baogong_process, wait_for

pytestmark = pytest.mark.timeout(300)


def _rice(url: str) -> dict[str, Any] | None:
    with connect(url) as conn:
        return conn.execute(
            "SELECT stock, computed_at, recorded_at, status FROM circle_levels_latest "
            "WHERE circle_id = 'T1' AND necessity = 'rice'"
        ).fetchone()


def rice(supplier: str, outlet: str, at: datetime, kg: float) -> bytes:
    return report(supplier, outlet, at, [{"necessity": "rice", "quantity": kg, "unit": "kg"}])


def test_a_pushed_report_reaches_its_circle_level_without_the_full_pass(
    configured_kafka: str, database_url: str, tmp_path: Path
) -> None:
    seed_stream_city(database_url)
    prefix = f"t{uuid.uuid4().hex[:8]}."
    create_topics(configured_kafka, prefix)
    settings = worker_settings(
        configured_kafka, database_url, prefix, prefix.strip("."), level_interval_s=3600.0, live_interval_s=0.1
    )
    inventory = prefix + "supply.inventory.v1"
    log = tmp_path / "worker.log"
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    try:
        with baogong_process(["worker"], settings.env(), log):
            # Every outlet of the circle says 50 kg: 450 kg / 250 kg a day = 1.8 days.
            produce(configured_kafka, inventory, [(o.encode(), rice(s, o, at, 50)) for o, s in OUTLETS.items()])
            first = wait_for(lambda: (r := _rice(database_url)) and r["stock"] == 450.0 and r, 90, "the first level")
            assert first["status"] == "SHORTAGE"

            sent = datetime.now(UTC)  # O1 restocked: 8 x 50 + 2,100 = 2,500 kg, 10 days
            produce(configured_kafka, inventory, [(b"O1", rice("s1", "O1", at + timedelta(minutes=1), 2100))])
            second = wait_for(lambda: (r := _rice(database_url)) and r["stock"] == 2500.0 and r, 60, "the live level")
            assert second["computed_at"] > sent and second["status"] == "OK"
            assert second["recorded_at"] == second["computed_at"]  # a change: a history row
    except AssertionError:
        print(log.read_text(errors="replace")[-6000:])
        raise

    with connect(database_url) as conn:
        passes = conn.execute("SELECT count(*) AS n FROM pipeline_status WHERE id = 'levels'").fetchone()
        history = conn.execute(
            "SELECT stock, computed_at FROM circle_levels WHERE circle_id = 'T1' AND necessity = 'rice' "
            "ORDER BY computed_at"
        ).fetchall()
    assert passes is not None and passes["n"] == 0  # the full pass never ran: these levels are live ones
    stocks = [h["stock"] for h in history]
    assert stocks[-1] == 2500.0 and 450.0 in stocks
    for a, b in itertools.pairwise(history):  # a row per change, or a minute after the last one: not per pass
        assert a["stock"] < b["stock"] or b["computed_at"] - a["computed_at"] >= HISTORY_EVERY, history

    consumer = KafkaConsumer(
        prefix + "supply.circle-levels.v1",
        bootstrap_servers=configured_kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    try:
        published = [orjson.loads(m.value) for m in consumer]
    finally:
        consumer.close()
    # the live level was published too
    assert 2500.0 in [m["necessities"]["rice"]["stock"] for m in published if m["circle_id"] == "T1"]
