"""Poison among valid reports: the valid ones are stored, each poison is dead-lettered alone with its reason,
and Kafka's committed offsets never pass a report the database does not hold.

Poison: a NUL byte in a text field (PostgreSQL text cannot hold it), a
tombstone (no value), a line the database refuses (a CHECK constraint this
test adds to its own database), and a price with a zero-size pack (a division
by zero in the conversion). Real broker, real worker process, real database.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schema.db import connect
from tests.integration.worker_harness import (
    OUTLETS,
    assert_commits_never_past_writes,
    create_topics,
    produce,
    report,
    seed_stream_city,
    stored,
    supply_groups,
    wait_all_committed,
    wait_all_written,
    worker_settings,
)
from tests.support import baogong_process, read_topic


def test_poison_is_dead_lettered_alone_and_everything_else_is_stored(
    configured_kafka: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    seed_stream_city(database_url)
    with connect(database_url) as conn:
        conn.execute(
            "ALTER TABLE outlet_reports ADD CONSTRAINT test_refuses CHECK (message_id <> 'refused-by-the-database')"
        )
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    inventory, prices = topic_prefix + "supply.inventory.v1", topic_prefix + "supply.prices.v1"
    outlets = sorted(OUTLETS)

    valid: list[tuple[bytes, bytes | None]] = []
    expected: set[tuple[str, str, str, float]] = set()
    for i in range(40):
        outlet = outlets[i % len(outlets)]
        at = base + timedelta(seconds=i)
        lines = [
            {"necessity": "rice", "quantity": i + 1, "unit": "kg", "message_id": f"v{i}-rice"},
            {"necessity": "eggs", "quantity": 2, "unit": "kg", "message_id": f"v{i}-eggs"},
        ]
        valid.append((outlet.encode(), report(OUTLETS[outlet], outlet, at, lines)))
        expected |= {(outlet, "rice", f"v{i}-rice", float(i + 1)), (outlet, "eggs", f"v{i}-eggs", 2.0)}

    def rice(message_id: str) -> bytes:
        return report("s1", "O1", base, [{"necessity": "rice", "quantity": 1, "unit": "kg", "message_id": message_id}])

    poison: list[tuple[bytes, bytes | None]] = [
        (b"O1", rice("nul\x00")),  # PostgreSQL text cannot hold a NUL byte
        (b"O1", None),  # a tombstone
        (b"O1", rice("refused-by-the-database")),  # the test's CHECK constraint refuses it
    ]
    messages = valid[:10] + poison[:1] + valid[10:20] + poison[1:2] + valid[20:30] + poison[2:] + valid[30:]
    create_topics(configured_kafka, topic_prefix)
    produce(configured_kafka, inventory, messages)

    price_lines = [
        (b"O2", report("s1", "O2", base, [{"necessity": "rice", "price": 6.0, "unit": "kg"}], kind="price")),
        (b"O1", report("s1", "O1", base, [{"necessity": "rice", "price": 10.0, "unit": "0kg"}], kind="price")),
        (b"O3", report("s2", "O3", base, [{"necessity": "rice", "price": 5.0, "unit": "kg"}], kind="price")),
    ]
    produce(configured_kafka, prices, price_lines)

    settings = worker_settings(configured_kafka, database_url, topic_prefix, topic_prefix.strip("."))
    log = tmp_path / "worker.log"
    try:
        with baogong_process(["worker"], settings.env(), log) as worker:
            deadline = time.monotonic() + 90
            done = False
            while not done:  # commits are checked against writes all along the way
                assert_commits_never_past_writes(configured_kafka, supply_groups(settings), database_url)
                try:
                    wait_all_written(database_url, configured_kafka, [inventory, prices], 0.5, "all written")
                    done = True
                except AssertionError:
                    assert time.monotonic() < deadline, "the worker did not write every partition to its end"
            wait_all_committed(configured_kafka, supply_groups(settings), [inventory, prices], 60)
            assert_commits_never_past_writes(configured_kafka, supply_groups(settings), database_url)
            assert worker.poll() is None, "the worker must keep running after poison"
    except AssertionError:
        print(log.read_text(errors="replace")[-6000:])
        raise

    rows = stored(database_url)
    got = {(r["outlet_id"], r["necessity"], r["message_id"], r["quantity"]) for r in rows["reports"]}
    assert got == expected  # every valid line, and nothing of the poison
    assert {(r["outlet_id"], r["price"]) for r in rows["prices"]} == {("O2", 6.0), ("O3", 5.0)}
    s1_lines = sum(2 for i in range(40) if OUTLETS[outlets[i % len(outlets)]] == "s1")
    health = {h["supplier_id"]: h for h in rows["health"]}
    assert health["s1"]["accepted"] == s1_lines + 1  # + its good price
    assert health["s2"]["accepted"] == 80 - s1_lines + 1
    assert health["s1"]["duplicates"] == 0 and health["s2"]["duplicates"] == 0

    letters = [json.loads(v) for _, v in read_topic(configured_kafka, topic_prefix + "supply.deadletter.v1")]
    assert len(letters) == 4, letters  # one per poison, none for a valid report

    def letter(marker: str | None) -> dict[str, object]:
        found = [d for d in letters if (d["payload"] is None if marker is None else marker in str(d["payload"]))]
        assert len(found) == 1, (marker, letters)
        assert found[0]["reason"] and found[0]["source"] == "kafka", found[0]
        return found[0]

    letter("nul\\u0000")
    assert letter(None)["field"] == "message"  # the tombstone
    refused = letter("refused-by-the-database")
    assert refused["supplier_id"] == "s1" and "test_refuses" in str(refused["reason"])
    assert letter("0kg")["kind"] == "price"
