"""A supplier's own Kafka producer: the worker validates with the API's rules, dead-letters, keeps going.

Real broker (the configured one), real worker and alert dispatcher processes,
a real operator webhook receiver.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaProducer

from baogong.settings import Settings
from schema.db import connect
from tests.support import Receiver, baogong_process, free_port, read_topic, seed_tiny_city, wait_for


def report(supplier: str, outlet: str, at: datetime, lines: list[dict[str, object]]) -> bytes:
    return json.dumps(
        {
            "kind": "inventory",
            "v": 1,
            "supplier_id": supplier,
            "outlet_id": outlet,
            "reported_at": at.isoformat(),
            "lines": lines,
        }
    ).encode()


def test_raw_topic_reports_are_validated_dead_lettered_and_counted_once(
    configured_kafka: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    seed_tiny_city(database_url)
    operators = Receiver()
    settings = Settings.from_env(
        kafka_bootstrap=configured_kafka,
        database_url=database_url,
        topic_prefix=topic_prefix,
        worker_id=f"baogong-test-{topic_prefix.strip('.')}",
        worker_port=free_port(),
        sink_max_wait_s=0.2,
        deadletter_per_minute=5,
        feed_min_rejects=10,
        feed_reject_ratio=0.5,
        alert_for_s=0,
        eval_interval_s=1,
        operator_webhook_urls=(operators.url,),
        level_interval_s=1,
    )
    topic = topic_prefix + "supply.inventory.v1"
    at = datetime.now(UTC) - timedelta(minutes=5)
    rice = {"necessity": "rice", "quantity": 1000, "unit": "kg"}
    producer = KafkaProducer(bootstrap_servers=configured_kafka, acks="all")
    messages = [
        (b"O1", report("s1", "O1", at, [rice, {"necessity": "eggs", "quantity": 10, "unit": "斤"}])),
        (b"O1", b"this is not a report"),
        (b"O1", report("s2", "O1", at + timedelta(minutes=1), [rice])),  # s2 does not own O1
        (b"O1", report("s1", "O1", at, [rice])),  # a redelivery of the first report's rice line
        (b"O2", report("s1", "O2", at, [{"sku": "UNMAPPED", "quantity": 1, "unit": "bag"}, rice])),
    ]
    # s2 sends a feed that is mostly garbage: 20 bad lines for its own outlet
    messages += [
        (b"O3", report("s2", "O3", at + timedelta(seconds=i), [{"necessity": "rice", "quantity": 1, "unit": "barrel"}]))
        for i in range(20)
    ]
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()
    try:
        with (
            baogong_process(["worker"], settings.env(), tmp_path / "worker.log") as worker,
            baogong_process(["alerts", "run"], settings.env(), tmp_path / "alerts.log"),
        ):
            wait_for(
                lambda: _count(database_url, "SELECT count(*) AS n FROM outlet_reports") >= 3,
                90,
                "the good lines in outlet_reports",
            )
            feed_page = wait_for(
                lambda: [b for b in operators.bodies if b["status"] == "firing"],
                60,
                "the feed-quality page to operators",
            )
            assert worker.poll() is None, "the worker must keep running after bad messages"
    except AssertionError:
        print((tmp_path / "worker.log").read_text(errors="replace")[-5000:])
        raise
    finally:
        operators.close()

    with connect(database_url) as conn:
        rows = conn.execute("SELECT outlet_id, necessity, quantity FROM outlet_reports ORDER BY 1, 2").fetchall()
        health = conn.execute(
            "SELECT supplier_id, sum(accepted) AS a, sum(rejected) AS r, sum(dead_lettered) AS d, "
            "sum(duplicates) AS dup FROM feed_health GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [(r["outlet_id"], r["necessity"], r["quantity"]) for r in rows] == [
        ("O1", "eggs", 5.0),
        ("O1", "rice", 1000.0),
        ("O2", "rice", 1000.0),
    ]  # the redelivered rice line is stored once
    by_supplier = {h["supplier_id"]: h for h in health}
    assert by_supplier["s2"]["r"] == 21 and by_supplier["s2"]["d"] == 5  # capped dead letters, all counted
    # s1: three new lines, the repeated rice line counted as a duplicate (not as accepted), its SKU line rejected
    assert (by_supplier["s1"]["a"], by_supplier["s1"]["dup"], by_supplier["s1"]["r"]) == (3, 1, 1)
    assert by_supplier["s2"]["a"] == 0 and by_supplier["s2"]["dup"] == 0

    letters = [json.loads(v) for _, v in read_topic(configured_kafka, topic_prefix + "supply.deadletter.v1")]
    reasons = {(d["supplier_id"], d["field"], d["code"]) for d in letters}
    assert ("unknown", "record", "invalid") in reasons or any(d["index"] == -1 for d in letters)
    assert ("s1", "sku", "invalid") in reasons
    assert any(d["code"] == "forbidden" and d["supplier_id"] == "s2" for d in letters)
    assert all("payload" in d for d in letters)
    assert sum(1 for d in letters if d["supplier_id"] == "s2") == 5

    alert = feed_page[0]["alerts"][0]
    assert alert["labels"]["alertname"] == "SupplierFeedQuality" and alert["labels"]["supplier"] == "s2"


def _count(url: str, query: str) -> int:
    with connect(url) as conn:
        row = conn.execute(query).fetchone()
    return int(row["n"]) if row else 0
