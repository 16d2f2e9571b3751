"""Shared pieces of the stream-worker fault tests (tests/integration/test_worker_*.py).

Everything is real: the configured Kafka, PostgreSQL databases copied from the
migrated template, `baogong worker` child processes, and a TCP forwarder
(an asyncio server on a socket, a real network hop) that the tests open and
close to take "the database" away from a worker without touching the shared
server.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from baogong.settings import Settings
from schema import topics
from schema.db import connect
from streams.supply_consumer import supply_group
from tests.conftest import copy_template, drop_database
from tests.support import free_port, seed_tiny_city, wait_for

#: Outlets added to the tiny city so that reports spread over the partitions.
EXTRA_OUTLETS = {f"O{i}": ("s1" if i % 2 else "s2") for i in range(4, 10)}
OUTLETS = {"O1": "s1", "O2": "s1", "O3": "s2", **EXTRA_OUTLETS}


def seed_stream_city(url: str) -> None:
    """The tiny city (tests/support.py) with outlets O4..O9 added (odd ones s1's, even ones s2's)."""
    seed_tiny_city(url)
    with connect(url) as conn:
        for outlet, supplier in EXTRA_OUTLETS.items():
            conn.execute(
                "INSERT INTO outlets (id, name, business_type, supplier_id, community_id, lat, lon) "
                "VALUES (%s, %s, 'supermarket', %s, 'T1-1', 46.65, 126.97)",
                (outlet, outlet, supplier),
            )
            conn.execute("INSERT INTO outlet_circles (outlet_id, circle_id) VALUES (%s, 'T1')", (outlet,))


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """Another fresh, migrated, empty database (the `database_url` fixture gives one per test)."""
    name = f"baogong_test_{uuid.uuid4().hex[:10]}"
    url = copy_template(admin_url, name)
    try:
        yield url
    finally:
        drop_database(admin_url, name)


def via_port(url: str, port: int) -> str:
    """`url` with its host and port replaced by 127.0.0.1:`port` (where a forwarder listens, or nothing)."""
    params = conninfo_to_dict(url)
    params.update(host="127.0.0.1", port=str(port))
    return make_conninfo(**params)  # type: ignore[arg-type]


def worker_settings(bootstrap: str, database_url: str, prefix: str, group: str, **more: Any) -> Settings:
    return Settings.from_env(
        kafka_bootstrap=bootstrap,
        database_url=database_url,
        topic_prefix=prefix,
        worker_id=f"baogong-test-{group}",
        worker_port=free_port(),
        sink_batch_size=more.pop("sink_batch_size", 20),
        sink_max_wait_s=0.2,
        level_interval_s=more.pop("level_interval_s", 1.0),
        **more,
    )


def report(
    supplier: str,
    outlet: str,
    at: datetime,
    lines: Sequence[dict[str, Any]],
    *,
    kind: str = "inventory",
) -> bytes:
    return json.dumps(
        {
            "kind": kind,
            "v": 1,
            "supplier_id": supplier,
            "outlet_id": outlet,
            "reported_at": at.isoformat(),
            "received_at": at.isoformat(),  # fixed, so two runs store identical rows
            "lines": list(lines),
        }
    ).encode()


def create_topics(bootstrap: str, prefix: str, partitions: int = 4) -> None:
    """The supply, dead-letter and level topics under `prefix`, as a worker or the API would create them."""
    names = [prefix + t.name for t in (topics.INVENTORY, topics.PRICES, topics.DEADLETTER, topics.CIRCLE_LEVELS)]
    topics.ensure_topics(bootstrap, names, partitions)


def produce(
    bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes | None]], timestamp_ms: int | None = None
) -> None:
    """Send `messages` (key, value) in order and wait for the broker; `timestamp_ms` overrides their time."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value, timestamp_ms=timestamp_ms)
        producer.flush()
    finally:
        producer.close()


def recreate_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Delete topic `name` and create it again, empty (what a broker that lost its log looks like)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([name])
        wait_for(lambda: name not in admin.list_topics(), 60, f"{name} to be deleted")
    finally:
        admin.close()

    def created() -> bool:
        try:
            topics.ensure_topics(bootstrap, [name], partitions)
        except Exception:  # still being deleted
            return False
        return len(end_offsets(bootstrap, [name])) == partitions

    wait_for(created, 60, f"{name} to be created again")


def end_offsets(bootstrap: str, names: Sequence[str]) -> dict[tuple[str, int], int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        tps = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        return {(tp.topic, tp.partition): off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def supply_groups(settings: Settings) -> list[str]:
    """The consumer groups of a worker's supply consumers (`streams.supply_consumer.supply_group`), one per topic."""
    return [supply_group(settings, settings.topic(spec.name)) for spec in (topics.INVENTORY, topics.PRICES)]


def committed_offsets(bootstrap: str, groups: Sequence[str]) -> dict[tuple[str, int], int]:
    """The consumer groups' committed offsets (what Kafka would redeliver from), all topics together."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    out: dict[tuple[str, int], int] = {}
    try:
        for group in groups:
            found = admin.list_group_offsets({group: None}).get(group, {})
            out.update({(tp.topic, tp.partition): meta.offset for tp, meta in found.items() if meta.offset >= 0})
    finally:
        admin.close()
    return out


def written_offsets(url: str) -> dict[tuple[str, int], int]:
    with connect(url) as conn:
        rows = conn.execute("SELECT topic, partition, next_offset FROM stream_offsets").fetchall()
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


def assert_commits_never_past_writes(bootstrap: str, groups: Sequence[str], url: str) -> dict[tuple[str, int], int]:
    """Kafka's committed offset of every partition is at or below what the database holds as written.

    Committed offsets are read first: a commit always follows the write it
    covers, so an offset committed before the database is read must be covered
    by what the database holds then.
    """
    committed = committed_offsets(bootstrap, groups)
    written = written_offsets(url)
    for tp, offset in committed.items():
        if tp[0].endswith(("supply.inventory.v1", "supply.prices.v1")):
            assert offset <= written.get(tp, 0), f"{tp}: Kafka committed {offset}, only {written.get(tp, 0)} written"
    return committed


def wait_all_written(url: str, bootstrap: str, names: Sequence[str], timeout_s: float, what: str) -> None:
    """Wait until stream_offsets reaches the broker's end offset on every partition that has messages."""
    ends = {tp: off for tp, off in end_offsets(bootstrap, names).items() if off > 0}

    def done() -> bool:
        written = written_offsets(url)
        return all(written.get(tp, 0) >= off for tp, off in ends.items())

    wait_for(done, timeout_s, what)


def wait_all_committed(bootstrap: str, groups: Sequence[str], names: Sequence[str], timeout_s: float) -> None:
    ends = {tp: off for tp, off in end_offsets(bootstrap, names).items() if off > 0}

    def done() -> bool:
        committed = committed_offsets(bootstrap, groups)
        return all(committed.get(tp, 0) >= off for tp, off in ends.items())

    wait_for(done, timeout_s, "Kafka to commit every partition to its end")


def stored(url: str) -> dict[str, Any]:
    """What a run stored, minus what depends on when it ran (updated_at, feed-health minutes)."""
    with connect(url) as conn:
        reports = conn.execute(
            "SELECT outlet_id, necessity, reported_at, line_key, quantity, sold_24h, supplier_id, message_id, "
            "received_at FROM outlet_reports ORDER BY outlet_id, necessity, reported_at, line_key"
        ).fetchall()
        stock = conn.execute(
            "SELECT outlet_id, necessity, quantity, sold_24h, reported_at FROM outlet_stock ORDER BY 1, 2"
        ).fetchall()
        prices = conn.execute(
            "SELECT outlet_id, necessity, reported_at, price, supplier_id FROM prices ORDER BY 1, 2, 3"
        ).fetchall()
        health = conn.execute(
            "SELECT supplier_id, sum(accepted) AS accepted, sum(rejected) AS rejected, "
            "sum(duplicates) AS duplicates, sum(dead_lettered) AS dead_lettered "
            "FROM feed_health GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return {"reports": reports, "stock": stock, "prices": prices, "health": health}


#: The level columns that depend only on what is stored (not on when the level was computed).
LEVEL_COLUMNS = (
    "circle_id, necessity, stock, stock_unconfirmed, daily_demand, days_of_supply, coverage, "
    "outlets_expected, outlets_fresh, status"
)


def levels_after(url: str, moment: datetime, timeout_s: float) -> list[dict[str, Any]]:
    """circle_levels_latest once a level pass computed after `moment` has been stored."""

    def newest() -> list[dict[str, Any]] | None:
        with connect(url) as conn:
            row = conn.execute("SELECT min(computed_at) AS at FROM circle_levels_latest").fetchone()
            if row is None or row["at"] is None or row["at"] <= moment:
                return None
            query = "SELECT " + LEVEL_COLUMNS + " FROM circle_levels_latest ORDER BY circle_id, necessity"
            return conn.execute(query).fetchall()  # type: ignore[arg-type]

    levels: list[dict[str, Any]] = wait_for(newest, timeout_s, "a level pass after the last write")
    return levels


class TcpForwarder:
    """A TCP forwarder on 127.0.0.1:`port` to `target`, in its own thread; `open()` / `close()` it at will.

    `close()` stops listening and cuts every connection it carries, as a
    database going away would look to its clients.
    """

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def open(self) -> None:
        self._call(self._open())

    def close(self) -> None:
        self._call(self._close())

    def shutdown(self) -> None:
        self.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _open(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))
