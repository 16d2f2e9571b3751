"""The sink on the real database: a report is the outlet's snapshot, offsets make redeliveries no-ops,
feed-health counts are exact per supplier, a refused row is isolated and the rest written."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from schema.contract import Accepted, Kind
from schema.db import connect, make_pool
from schema.feed import FeedCounts
from streams.sink import BatchResult, MessageWrite, Position, ReportSink, Written, keyed_rows
from tests.support import seed_tiny_city

TOPIC = "t.supply.inventory.v1"
NOW = datetime.now(UTC).replace(microsecond=0)


def line(outlet: str, necessity: str, qty: float, at: datetime, key: str = "", index: int = 0) -> Accepted:
    return Accepted(index, outlet, necessity, qty, "kg", at, None, key or None, at.timestamp(), key)


def message(offset: int, supplier: str, lines: Sequence[Accepted], partition: int = 0) -> MessageWrite:
    rows, summed = keyed_rows("inventory", list(lines))
    return MessageWrite(
        Position(TOPIC, partition, offset, NOW), supplier, rows, FeedCounts(), b"{}", received_at=NOW, summed=summed
    )


def write(url: str, messages: Sequence[MessageWrite], kind: Kind = "inventory") -> tuple[BatchResult, list[Any]]:
    refused: list[Any] = []

    async def on_refused(m: MessageWrite, row: Accepted, exc: Exception) -> None:
        refused.append((m.position.offset, row.index, type(exc).__name__))

    async def main() -> BatchResult:
        pool = make_pool(url)
        await pool.open()
        try:
            return await ReportSink(pool).write(kind, messages, on_refused)
        finally:
            await pool.close()

    return asyncio.run(main()), refused


def stock(url: str) -> dict[tuple[str, str], tuple[float, datetime]]:
    with connect(url) as conn:
        rows = conn.execute("SELECT outlet_id, necessity, quantity, reported_at FROM outlet_stock").fetchall()
    return {(r["outlet_id"], r["necessity"]): (r["quantity"], r["reported_at"]) for r in rows}


def health(url: str) -> dict[str, tuple[int, int, int, int]]:
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT supplier_id, sum(accepted) AS a, sum(duplicates) AS d, sum(rejected) AS r, "
            "sum(dead_lettered) AS l FROM feed_health GROUP BY 1"
        ).fetchall()
    return {r["supplier_id"]: (r["a"], r["d"], r["r"], r["l"]) for r in rows}


def offsets(url: str) -> dict[int, int]:
    with connect(url) as conn:
        rows = conn.execute("SELECT partition, next_offset FROM stream_offsets WHERE topic = %s", (TOPIC,)).fetchall()
    return {r["partition"]: r["next_offset"] for r in rows}


def test_a_report_is_the_outlets_snapshot(database_url: str) -> None:
    seed_tiny_city(database_url)
    t0, t1 = NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    write(
        database_url,
        [
            # two pack sizes of rice and two lines of the same SKU in one report: all add up
            message(0, "s1", [line("O1", "rice", 50, t1, "5KG"), line("O1", "rice", 100, t1, "10KG", 1)]),
            message(1, "s1", [line("O1", "oil", 2, t1, "OIL", 0), line("O1", "oil", 3, t1, "OIL", 1)]),
            # the same report continued in another message
            message(2, "s1", [line("O1", "rice", 20, t1, "25KG")]),
            # a late, older report of O1 never overwrites the newer one
            message(3, "s1", [line("O1", "rice", 999, t0, "5KG")]),
        ],
    )
    s = stock(database_url)
    assert s[("O1", "rice")] == (170.0, t1)
    assert s[("O1", "oil")] == (5.0, t1)
    with connect(database_url) as conn:
        n = conn.execute("SELECT count(*) AS n FROM outlet_reports WHERE outlet_id = 'O1'").fetchone()
    assert n is not None and n["n"] == 5  # three rice at t1, one oil at t1, the old rice at t0
    assert health(database_url)["s1"] == (6, 0, 0, 0)  # six lines, all new


RICE_SOLD = "SELECT sold_24h FROM outlet_stock WHERE outlet_id = 'O1' AND necessity = 'rice'"


def test_a_report_continued_in_later_batches_adds_up_sold_24h_too(database_url: str) -> None:
    """The stock of a report split over batches: the first batch's sums, then the lines at that time re-summed."""
    seed_tiny_city(database_url)
    t0, t1, t2 = NOW - timedelta(hours=3), NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    write(database_url, [message(0, "s1", [replace(line("O1", "rice", 50, t1, "A"), sold_24h=5.0)])])
    assert stock(database_url)[("O1", "rice")] == (50.0, t1)
    write(
        database_url,
        [
            message(1, "s1", [line("O1", "rice", 20, t1, "B")]),  # the same report, another pack, no sold_24h
            message(2, "s1", [line("O1", "oil", 2, t0, "OIL")]),
        ],
    )
    assert stock(database_url)[("O1", "rice")] == (70.0, t1)
    assert stock(database_url)[("O1", "oil")] == (2.0, t0)
    with connect(database_url) as conn:
        sold = conn.execute(RICE_SOLD).fetchone()
    assert sold is not None and sold["sold_24h"] == 5.0
    write(database_url, [message(3, "s1", [line("O1", "rice", 1, t2, "A"), line("O1", "rice", 2, t2, "B", 1)])])
    write(database_url, [message(4, "s1", [line("O1", "rice", 999, t1, "C")])])  # late, older: changes nothing
    assert stock(database_url)[("O1", "rice")] == (3.0, t2)
    with connect(database_url) as conn:
        sold = conn.execute(RICE_SOLD).fetchone()
    assert sold is not None and sold["sold_24h"] is None


def test_redeliveries_are_skipped_and_counted_once_mixed_suppliers_exactly(database_url: str) -> None:
    seed_tiny_city(database_url)
    at = NOW - timedelta(minutes=30)
    first = [
        message(0, "s1", [line("O1", "rice", 100, at)]),
        message(1, "s2", [line("O3", "rice", 40, at)]),
    ]
    write(database_url, first)
    # redelivery of both (skipped by offset), plus new messages of both suppliers that repeat stored lines
    second = [
        *first,
        message(2, "s1", [line("O1", "rice", 100, at), line("O2", "rice", 7, at)]),
        message(3, "s2", [line("O3", "rice", 40, at)]),
        message(4, "s2", [line("O3", "rice", 40, at)]),  # a repeat inside the batch
    ]
    result, refused = write(database_url, second)
    assert refused == []
    assert result.skipped == 2
    assert (result.new, result.duplicates) == (1, 3)
    assert health(database_url) == {"s1": (2, 1, 0, 0), "s2": (1, 2, 0, 0)}
    assert offsets(database_url) == {0: 5}
    result, _ = write(database_url, second)  # the whole batch again: nothing written, nothing counted
    assert result.skipped == 5
    assert health(database_url) == {"s1": (2, 1, 0, 0), "s2": (1, 2, 0, 0)}


def test_text_with_copys_special_characters_is_stored_as_sent(database_url: str) -> None:
    # the sink sends its rows as COPY text it formats itself: tab, newline, CR and backslash must come back intact
    seed_tiny_city(database_url)
    at = NOW - timedelta(minutes=5, microseconds=123457)
    odd = ["tab\there", "new\nline", "cr\rhere", "back\\slash\\N", "\\N", "plain 中文"]
    batch = [message(i, "s1", [line("O1", "rice", 0.1 + i, at, key)]) for i, key in enumerate(odd)]
    result, refused = write(database_url, batch)
    assert refused == [] and result.new == len(odd)
    with connect(database_url) as conn:
        rows = conn.execute("SELECT message_id, line_key, quantity, reported_at FROM outlet_reports").fetchall()
    assert sorted((r["message_id"], r["line_key"], r["quantity"], r["reported_at"]) for r in rows) == sorted(
        (key, key, 0.1 + i, at) for i, key in enumerate(odd)
    )
    prices = [
        MessageWrite(
            Position("t.supply.prices.v1", 0, i, NOW),
            "s1",
            keyed_rows("price", [line("O1", "rice", 1.0 / 3 + i, at + timedelta(seconds=i), key)])[0],
            FeedCounts(),
            b"{}",
            received_at=NOW,
        )
        for i, key in enumerate(odd)
    ]
    result, refused = write(database_url, prices, kind="price")
    assert refused == [] and result.new == len(odd)
    result, _ = write(
        database_url,
        [replace(m, position=replace(m.position, offset=m.position.offset + 10)) for m in prices],
        kind="price",
    )
    assert (result.new, result.duplicates) == (0, len(odd))  # stored before: named, not new
    with connect(database_url) as conn:
        got = conn.execute("SELECT message_id, price FROM prices ORDER BY reported_at").fetchall()
    assert [(r["message_id"], r["price"]) for r in got] == [(key, 1.0 / 3 + i) for i, key in enumerate(odd)]


def test_a_row_the_database_refuses_is_isolated_and_the_rest_written(database_url: str) -> None:
    seed_tiny_city(database_url)
    with connect(database_url) as conn:  # the database refuses one message_id (a real CHECK constraint)
        conn.execute("ALTER TABLE outlet_reports ADD CONSTRAINT test_refuses CHECK (message_id <> 'refuse-me')")
    at = NOW - timedelta(minutes=10)
    batch = [message(i, "s1", [line("O1", "rice", 10 + i, at + timedelta(seconds=i), f"m{i}")]) for i in range(40)]
    batch[7] = message(7, "s1", [line("O1", "rice", 1, at, "refuse-me"), line("O2", "rice", 5, at, "ok", 1)])
    batch[23] = message(23, "s2", [line("O3", "rice", 1, at, "nul\x00byte")])  # PostgreSQL text has no NUL
    result, refused = write(database_url, batch)
    assert sorted(refused) == [(7, 0, "CheckViolation"), (23, 0, "DataError")]
    assert (result.new, result.refused) == (39, 2)
    with connect(database_url) as conn:
        n = conn.execute("SELECT count(*) AS n FROM outlet_reports").fetchone()
    assert n is not None and n["n"] == 39
    assert health(database_url) == {"s1": (39, 0, 1, 1), "s2": (0, 0, 1, 1)}
    assert offsets(database_url) == {0: 40}


def test_two_writers_of_one_partition_write_and_count_it_once(database_url: str) -> None:
    """Two workers holding the same partition during a rebalance: the offsets lock lets one write, the other skip."""
    seed_tiny_city(database_url)
    at = NOW - timedelta(minutes=5)
    batch = [message(i, "s1", [line("O1", "rice", i + 1, at + timedelta(seconds=i), f"m{i}")]) for i in range(30)]

    async def main() -> list[BatchResult]:
        pools = [make_pool(database_url), make_pool(database_url)]
        for pool in pools:
            await pool.open()

        async def never(m: MessageWrite, row: Accepted, exc: Exception) -> None:
            raise AssertionError(exc)

        try:
            return list(await asyncio.gather(*(ReportSink(p).write("inventory", batch, never) for p in pools)))
        finally:
            for pool in pools:
                await pool.close()

    results = asyncio.run(main())
    assert sorted((r.new, r.skipped) for r in results) == [(0, 30), (30, 0)]
    assert health(database_url) == {"s1": (30, 0, 0, 0)}
    assert offsets(database_url) == {0: 30}


def test_a_recreated_partition_is_written_again_not_skipped(database_url: str) -> None:
    """Offsets stored for an old log: the new log's messages are new (by end offset, or by timestamp)."""
    seed_tiny_city(database_url)
    old_at = NOW - timedelta(hours=1)
    old = [message(i, "s1", [line("O1", "rice", 1, old_at + timedelta(seconds=i), f"old{i}")]) for i in range(20)]
    for m in old:  # broker timestamps an hour ago
        m.position = Position(TOPIC, 0, m.position.offset, old_at + timedelta(seconds=m.position.offset))
    write(database_url, old)
    assert offsets(database_url) == {0: 20}
    new = [message(i, "s1", [line("O1", "rice", 2, NOW + timedelta(seconds=i), f"new{i}")]) for i in range(5)]

    async def read(ends: dict[tuple[str, int], int] | None) -> dict[tuple[str, int], Written]:
        pool = make_pool(database_url)
        await pool.open()
        try:
            return await ReportSink(pool).written([m.position for m in new], ends)
        finally:
            await pool.close()

    # the timestamps alone tell: these messages came long after the last one written
    assert not any(asyncio.run(read(None))[(TOPIC, 0)].covers(m.position) for m in new)
    # a log that ends below what was written was recreated: its offsets start again from 0
    assert asyncio.run(read({(TOPIC, 0): 5}))[(TOPIC, 0)] == Written(0, None)
    result, _ = write(database_url, new)
    assert (result.new, result.skipped) == (5, 0)
    assert offsets(database_url) == {0: 5}
    # and a plain redelivery (same timestamps) is still skipped
    assert Written(20, old_at + timedelta(seconds=19)).covers(old[3].position)
