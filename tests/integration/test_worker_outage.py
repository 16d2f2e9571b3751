"""A worker started while the broker and the database are down waits for them, creates its topics, and stores
everything produced meanwhile; a database outage under load loses nothing either.

The shared services stay up: the worker reaches Kafka's bootstrap and the
database through TCP forwarders (real network hops) that the test keeps
closed, then opens. The database stays away for 90 s after the worker
starts, longer than any connection or pool timeout, as issue 8 asks.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from tests.integration.worker_harness import (
    OUTLETS,
    TcpForwarder,
    assert_commits_never_past_writes,
    committed_offsets,
    create_topics,
    end_offsets,
    produce,
    recreate_topic,
    report,
    seed_stream_city,
    stored,
    supply_groups,
    via_port,
    wait_all_written,
    worker_settings,
)
from tests.support import baogong_process, free_port, wait_for

OUTAGE_S = 90.0


def test_worker_started_with_database_and_broker_down_waits_and_stores_everything(
    configured_kafka: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    seed_stream_city(database_url)
    db = conninfo_to_dict(database_url)
    db_forwarder = TcpForwarder(free_port(), (str(db.get("host", "127.0.0.1")), int(str(db.get("port", 5432)))))
    kafka_host, kafka_port = configured_kafka.split(",")[0].rsplit(":", 1)
    kafka_forwarder = TcpForwarder(free_port(), (kafka_host, int(kafka_port)))
    settings = worker_settings(
        f"127.0.0.1:{kafka_forwarder.port}",
        via_port(database_url, db_forwarder.port),
        topic_prefix,
        topic_prefix.strip("."),
    )
    names = [topic_prefix + "supply.inventory.v1", topic_prefix + "supply.prices.v1"]
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=50)
    outlets = sorted(OUTLETS)
    expected: set[tuple[str, str, float]] = set()

    def send(first: int, count: int) -> None:
        messages: list[tuple[bytes, bytes | None]] = []
        for i in range(first, first + count):
            outlet = outlets[i % len(outlets)]
            lines = [{"necessity": "rice", "quantity": i + 1, "unit": "kg", "message_id": f"o{i}"}]
            messages.append((outlet.encode(), report(OUTLETS[outlet], outlet, base + timedelta(seconds=i), lines)))
            expected.add((outlet, f"o{i}", float(i + 1)))
        produce(configured_kafka, names[0], messages)

    log = tmp_path / "worker.log"
    try:
        with baogong_process(["worker"], settings.env(), log) as worker:
            started = time.monotonic()
            wait_for(lambda: "cannot make sure the worker's topics exist" in log.read_text(), 60, "the broker wait")
            kafka_forwarder.open()  # the broker is back: the worker creates its topics and starts
            wait_for(lambda: len(end_offsets(configured_kafka, names)) == 2 * settings.partitions, 60, "its topics")
            send(0, 60)  # produced while the database is away
            wait_for(lambda: "waiting for the database" in log.read_text(), 60, "the worker to wait for the database")
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - started)))
            assert worker.poll() is None, "the worker must wait for the database, not exit"
            assert stored(database_url)["reports"] == []

            db_forwarder.open()  # the database is back
            send(60, 60)
            wait_all_written(database_url, configured_kafka, names[:1], 120, "what was produced during the outage")

            db_forwarder.close()  # an outage under load: connections cut mid-stream
            send(120, 60)
            time.sleep(3)
            db_forwarder.open()
            wait_all_written(database_url, configured_kafka, names[:1], 120, "what was produced during the 2nd outage")
            assert_commits_never_past_writes(configured_kafka, supply_groups(settings), database_url)
            assert worker.poll() is None
    except AssertionError:
        print(log.read_text(errors="replace")[-6000:])
        raise
    finally:
        db_forwarder.shutdown()
        kafka_forwarder.shutdown()

    rows = stored(database_url)
    assert {(r["outlet_id"], r["message_id"], r["quantity"]) for r in rows["reports"]} == expected
    health = {h["supplier_id"]: h for h in rows["health"]}
    s1 = sum(1 for i in range(180) if OUTLETS[outlets[i % len(outlets)]] == "s1")
    assert (health["s1"]["accepted"], health["s2"]["accepted"]) == (s1, 180 - s1)  # each line counted once
    assert health["s1"]["duplicates"] == 0 and health["s2"]["duplicates"] == 0


def test_worker_asked_to_stop_during_an_outage_stops_without_acknowledging(
    configured_kafka: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    """SIGTERM while a batch waits for the database: the worker exits promptly and the batch comes again."""
    seed_stream_city(database_url)
    db = conninfo_to_dict(database_url)
    db_forwarder = TcpForwarder(free_port(), (str(db.get("host", "127.0.0.1")), int(str(db.get("port", 5432)))))
    settings = worker_settings(
        configured_kafka, via_port(database_url, db_forwarder.port), topic_prefix, topic_prefix.strip(".")
    )
    name = topic_prefix + "supply.inventory.v1"
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    lines = [{"necessity": "rice", "quantity": 7, "unit": "kg", "message_id": "kept"}]
    log = tmp_path / "worker.log"
    try:
        with baogong_process(["worker"], settings.env(), log) as worker:
            wait_for(lambda: len(end_offsets(configured_kafka, [name])) == settings.partitions, 60, "its topics")
            produce(configured_kafka, name, [(b"O1", report("s1", "O1", at, lines))])
            wait_for(lambda: "waiting for the database" in log.read_text(), 60, "the worker to wait for the database")
            worker.terminate()
            assert worker.wait(timeout=60) == 75, "stopped without acknowledging (EX_TEMPFAIL)"
        assert "WITHOUT acknowledging" in log.read_text()
        assert all(off == 0 for off in committed_offsets(configured_kafka, supply_groups(settings)).values())
        db_forwarder.open()
        with baogong_process(["worker"], settings.env(), tmp_path / "worker2.log"):
            wait_all_written(database_url, configured_kafka, [name], 60, "the batch, redelivered and written")
    except AssertionError:
        print(log.read_text(errors="replace")[-6000:])
        raise
    finally:
        db_forwarder.shutdown()
    assert [(r["outlet_id"], r["message_id"], r["quantity"]) for r in stored(database_url)["reports"]] == [
        ("O1", "kept", 7.0)
    ]


def test_a_topic_recreated_under_the_same_name_is_written_not_skipped(
    configured_kafka: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    """The broker lost the topic's log (deleted and recreated, or an in-memory broker restarted) while the
    database kept its offsets: the new messages are written, not skipped as ones written before."""
    seed_stream_city(database_url)
    create_topics(configured_kafka, topic_prefix)
    name = topic_prefix + "supply.inventory.v1"
    settings = worker_settings(configured_kafka, database_url, topic_prefix, topic_prefix.strip("."))
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    outlets = sorted(OUTLETS)

    def messages(tag: str, count: int) -> list[tuple[bytes, bytes | None]]:
        out: list[tuple[bytes, bytes | None]] = []
        for i in range(count):
            outlet = outlets[i % len(outlets)]
            lines = [{"necessity": "rice", "quantity": 1, "unit": "kg", "message_id": f"{tag}{i}"}]
            at = base + timedelta(seconds=i if tag == "old" else 600 + i)
            out.append((outlet.encode(), report(OUTLETS[outlet], outlet, at, lines)))
        return out

    old_ms = int((datetime.now(UTC) - timedelta(minutes=30)).timestamp() * 1000)
    produce(configured_kafka, name, messages("old", 18), timestamp_ms=old_ms)  # produced half an hour ago
    try:
        with baogong_process(["worker"], settings.env(), tmp_path / "worker.log"):
            wait_all_written(database_url, configured_kafka, [name], 60, "the old log")
        recreate_topic(configured_kafka, name, settings.partitions)
        produce(configured_kafka, name, messages("new", 36))  # a longer log than the old one: offsets overlap
        with baogong_process(["worker"], settings.env(), tmp_path / "worker2.log"):
            wait_for(lambda: len(stored(database_url)["reports"]) == 54, 60, "the new log's reports")
            wait_all_written(database_url, configured_kafka, [name], 60, "the new log")
    except AssertionError:
        for log in ("worker.log", "worker2.log"):
            print(f"----- {log}\n" + (tmp_path / log).read_text(errors="replace")[-4000:])
        raise
    assert {r["message_id"] for r in stored(database_url)["reports"]} == {f"old{i}" for i in range(18)} | {
        f"new{i}" for i in range(36)
    }
    assert "the topic was recreated" in (tmp_path / "worker2.log").read_text()
