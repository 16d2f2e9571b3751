"""Exactly once in effect: a worker killed with -9 in the middle of a write, two workers sharing the stream, or
a worker whose Kafka offsets lag the database's, store the same rows, feed-health counts and circle levels as
one undisturbed worker.

One stream is produced once per module (own topics): 300 inventory reports
from two suppliers over nine outlets (two pack sizes of rice per report, a
report split over two messages, supplier re-sends that are duplicates) and
some prices. An undisturbed worker writes it into a reference database; each
test runs its own consumer group over the same topics into its own database
and compares everything stored, and the levels computed after the last
write, with the reference. Real broker, real worker processes, real database.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from schema.db import connect
from streams.supply_consumer import supply_group
from tests.integration.worker_harness import (
    OUTLETS,
    assert_commits_never_past_writes,
    committed_offsets,
    create_topics,
    fresh_database,
    levels_after,
    produce,
    report,
    seed_stream_city,
    stored,
    supply_groups,
    wait_all_committed,
    wait_all_written,
    worker_settings,
)
from tests.support import baogong_process, wait_for


@dataclass(frozen=True)
class Stream:
    bootstrap: str
    prefix: str
    topics: list[str]
    base: datetime
    reference: dict[str, Any]
    reference_levels: list[dict[str, Any]]


def _messages(base: datetime) -> tuple[list[tuple[bytes, bytes | None]], list[tuple[bytes, bytes | None]]]:
    outlets = sorted(OUTLETS)
    inventory: list[tuple[bytes, bytes | None]] = []
    for i in range(300):
        outlet = outlets[i % len(outlets)]
        at = base + timedelta(seconds=i)
        lines = [
            {"necessity": "rice", "quantity": 5 * (i % 7 + 1), "unit": "kg", "message_id": f"r{i}-5kg"},
            {"necessity": "rice", "quantity": 10 * (i % 3 + 1), "unit": "kg", "message_id": f"r{i}-10kg"},
            {"necessity": "flour", "quantity": i % 11 + 1, "unit": "kg"},
            {"necessity": "eggs", "quantity": i % 5 + 2, "unit": "斤"},
        ]
        inventory.append((outlet.encode(), report(OUTLETS[outlet], outlet, at, lines)))
        if i % 10 == 3:  # a supplier re-sends an earlier report: duplicates, counted as such
            inventory.append(inventory[-3])
        if i % 50 == 7:  # a report split over two messages adds up
            more = [{"necessity": "rice", "quantity": 1000, "unit": "kg", "message_id": f"r{i}-bulk"}]
            inventory.append((outlet.encode(), report(OUTLETS[outlet], outlet, at, more)))
    prices: list[tuple[bytes, bytes | None]] = [
        (
            o.encode(),
            report(
                OUTLETS[o],
                o,
                base + timedelta(seconds=i),
                [{"necessity": "rice", "price": 5 + i % 4, "unit": "kg"}],
                kind="price",
            ),
        )
        for i, o in enumerate(outlets * 3)
    ]
    return inventory, prices


@pytest.fixture(scope="module")
def stream(
    configured_kafka: str, admin_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stream]:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    create_topics(configured_kafka, prefix)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    inventory, prices = _messages(base)
    names = [prefix + "supply.inventory.v1", prefix + "supply.prices.v1"]
    produce(configured_kafka, names[0], inventory)
    produce(configured_kafka, names[1], prices)
    log = tmp_path_factory.mktemp("reference") / "worker.log"
    with fresh_database(admin_url) as url:
        seed_stream_city(url)
        settings = worker_settings(configured_kafka, url, prefix, f"{prefix.strip('.')}-reference")
        try:
            with baogong_process(["worker"], settings.env(), log):
                wait_all_written(url, configured_kafka, names, 120, "the reference run to write everything")
                written_at = datetime.now(UTC)
                levels = levels_after(url, written_at, 60)
        except AssertionError:
            print(log.read_text(errors="replace")[-6000:])
            raise
        yield Stream(configured_kafka, prefix, names, base, stored(url), levels)


def _same_as_reference(stream: Stream, url: str, levels: list[dict[str, Any]]) -> None:
    got = stored(url)
    for part in ("reports", "stock", "prices", "health"):
        assert got[part] == stream.reference[part], part
    assert levels == stream.reference_levels


#: The report the tests hold up: message 135 of the stream (outlet O1, since 135 % 9 == 0).
HELD = 135


@contextmanager
def holding_a_report(url: str, base: datetime) -> Iterator[psycopg.Connection[Any]]:
    """Insert (uncommitted) the key of report HELD's first line: a worker writing it waits, mid-write, for us."""
    with psycopg.connect(url, autocommit=False) as blocker:
        blocker.execute(
            "INSERT INTO outlet_reports (reported_at, outlet_id, necessity, line_key, quantity, supplier_id, "
            "received_at) VALUES (%s, 'O1', 'rice', %s, 0, 's1', now())",
            (base + timedelta(seconds=HELD), f"r{HELD}-5kg"),
        )
        yield blocker
        blocker.rollback()


def test_kill_9_in_the_middle_of_a_write_then_restart_stores_what_an_undisturbed_run_does(
    stream: Stream, database_url: str, tmp_path: Path
) -> None:
    seed_stream_city(database_url)
    settings = worker_settings(stream.bootstrap, database_url, stream.prefix, f"{stream.prefix.strip('.')}-kill")
    try:
        with (
            holding_a_report(database_url, stream.base),
            baogong_process(["worker"], settings.env(), tmp_path / "worker.log") as worker,
        ):
            wait_for(lambda: _waiting_on_lock(database_url), 60, "the worker to block in the middle of a write")
            # The price agent is not held and keeps writing: let it finish, so the offsets stand still.
            wait_all_written(database_url, stream.bootstrap, stream.topics[1:], 120, "the price reports")
            written_before = _offsets(database_url)
            assert written_before, "batches before the held report were written"
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            assert_commits_never_past_writes(stream.bootstrap, supply_groups(settings), database_url)
        assert _offsets(database_url) == written_before  # the killed write committed nothing
        with baogong_process(["worker"], settings.env(), tmp_path / "worker2.log"):
            wait_all_written(database_url, stream.bootstrap, stream.topics, 120, "the restarted worker to finish")
            levels = levels_after(database_url, datetime.now(UTC), 60)
            wait_all_committed(stream.bootstrap, supply_groups(settings), stream.topics, 60)
            assert_commits_never_past_writes(stream.bootstrap, supply_groups(settings), database_url)
    except AssertionError:
        _print_logs(tmp_path, "worker.log", "worker2.log")
        raise
    _same_as_reference(stream, database_url, levels)


def test_two_workers_in_one_group_store_what_one_does(stream: Stream, database_url: str, tmp_path: Path) -> None:
    seed_stream_city(database_url)
    group = f"{stream.prefix.strip('.')}-pair"
    first = worker_settings(stream.bootstrap, database_url, stream.prefix, group)
    second = worker_settings(stream.bootstrap, database_url, stream.prefix, group)
    try:
        with ExitStack() as workers:
            one = workers.enter_context(baogong_process(["worker"], first.env(), tmp_path / "worker1.log"))
            with holding_a_report(database_url, stream.base):
                # the first worker is in the middle of a write when the second joins and takes partitions
                wait_for(lambda: _waiting_on_lock(database_url), 60, "the first worker to block mid-write")
                two = workers.enter_context(baogong_process(["worker"], second.env(), tmp_path / "worker2.log"))
                wait_for(lambda: _members(stream.bootstrap, first.worker_id) == 2, 60, "the second worker to join")
            wait_all_written(database_url, stream.bootstrap, stream.topics, 120, "the two workers to finish")
            levels = levels_after(database_url, datetime.now(UTC), 60)
            wait_all_committed(stream.bootstrap, supply_groups(first), stream.topics, 60)
            assert_commits_never_past_writes(stream.bootstrap, supply_groups(first), database_url)
            assert one.poll() is None and two.poll() is None
    except AssertionError:
        _print_logs(tmp_path, "worker1.log", "worker2.log")
        raise
    _same_as_reference(stream, database_url, levels)


def _waiting_on_lock(url: str) -> bool:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ~* '(INSERT INTO|COPY) outlet_reports'"
        ).fetchone()
    return bool(row and row["n"])


def _offsets(url: str) -> dict[tuple[str, int], int]:
    with connect(url) as conn:
        rows = conn.execute("SELECT topic, partition, next_offset FROM stream_offsets WHERE next_offset > 0").fetchall()
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


def _members(bootstrap: str, group: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_groups([group])[group]
    finally:
        admin.close()
    return len(described.get("members") or ())


def _print_logs(tmp_path: Path, *names: str) -> None:
    for name in names:
        if (tmp_path / name).exists():
            print(f"----- {name}\n" + (tmp_path / name).read_text(errors="replace")[-5000:])


def test_a_worker_whose_kafka_offsets_lag_the_database_starts_where_the_database_says(
    stream: Stream, database_url: str, tmp_path: Path
) -> None:
    """The database's offsets, written with the rows, are the truth: a worker whose group's Kafka offsets were
    put back to 0 (lost commits, an old group) starts each partition at the database's next_offset, so it
    neither re-reads nor writes nor counts anything twice."""
    seed_stream_city(database_url)
    settings = worker_settings(
        stream.bootstrap, database_url, stream.prefix, f"{stream.prefix.strip('.')}-seek", worker_instance_id="none"
    )
    groups = supply_groups(settings)
    try:
        with baogong_process(["worker"], settings.env(), tmp_path / "worker.log"):
            wait_all_written(database_url, stream.bootstrap, stream.topics, 120, "the first run to write everything")
            wait_all_committed(stream.bootstrap, groups, stream.topics, 60)
        written = _offsets(database_url)
        for topic in {t for t, _ in written}:  # the groups left: Kafka takes it
            zero = {tp: 0 for tp in written if tp[0] == topic}
            _commit_offsets(stream.bootstrap, supply_group(settings, topic), zero)
        assert set(committed_offsets(stream.bootstrap, groups).values()) == {0}
        log = tmp_path / "worker2.log"
        with baogong_process(["worker"], settings.env(), log):
            wait_for(
                lambda: log.read_text().count("written in the database (Kafka had 0)") == len(written),
                60,
                "the restarted worker to start every partition at the database's offset",
            )
            levels = levels_after(database_url, datetime.now(UTC), 60)
        assert _offsets(database_url) == written
        assert "skipped as written before" not in log.read_text(), "nothing written before is read again"
    except AssertionError:
        _print_logs(tmp_path, "worker.log", "worker2.log")
        raise
    _same_as_reference(stream, database_url, levels)  # every row and feed-health count once


def _commit_offsets(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tps = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        consumer.assign(list(tps))
        consumer.commit(tps)
    finally:
        consumer.close()
