"""Batched, exactly-once-in-effect writes of report messages to the database.

`ReportSink.write` commits one batch of messages in ONE transaction: their
rows, their feed-health counts, and their partitions' `stream_offsets`. It
locks those partitions' offsets first and drops every message below the
stored `next_offset` (written and counted before: a redelivery, or another
worker's write during a rebalance), so a message is written and counted at
most once however often Kafka delivers it; Kafka's own commit comes after and
only saves work. A partition whose log was recreated under the same name (or
lost by its broker) is recognised, by its end offset or by timestamps
(`written`, `Written.covers`), so its new messages are not skipped as old.

Rows:
* inventory: the lines of one message that share a key (outlet, necessity,
  reported_at, line_key) are summed into one row (two pack sizes of rice are
  one stock); a key repeated in a later message of the batch, or already
  stored, is a duplicate. `outlet_stock` becomes the sum of an outlet's rows
  at its newest reported_at; an older report never overwrites a newer one.
* prices: one row per (outlet, necessity, reported_at); the first wins.

Failure contract:
* the database unreachable (`DatabaseUnavailable`, incl. deadlocks and
  timeouts): the whole batch is retried with back-off (capped at
  `max_backoff_s`) for as long as it takes; `write` does not return meanwhile,
  unless `stopping()` turns true: then it raises `streams.batch.Interrupted`
  (nothing committed).
* the database or our code refusing rows: each write attempt runs under a
  savepoint, `streams.batch.isolate` splits around the refused rows, the
  others are written; `on_refused(message, row, exc)` is awaited for each
  refused row BEFORE the transaction commits (it dead-letters the row; if it
  raises, nothing commits and the exception propagates). A row refused once
  is not attempted again when an outage makes the batch start over.
* anything else propagates with nothing committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from schema.contract import Accepted, Kind
from schema.db import QUERIES, DatabaseUnavailable, Row, transaction, translate
from schema.feed import FeedCounts, add_feed_health
from streams.batch import Interrupted, PoisonLimit, isolate

log = logging.getLogger(__name__)

#: (topic, partition)
TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a message sits in Kafka; `timestamp` is the broker's (None when the broker gave none)."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None = None

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)


#: A message below a partition's next_offset, but with a broker timestamp later than this after the last
#: written message's, cannot have been written: its log was recreated (or the broker lost it), so it is new.
#: Generous, so that producers' clock skew never makes a redelivery look new (that would count a duplicate).
RECREATED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Written:
    """What is written of one partition: every message below `next_offset`, the last one stamped `message_at`."""

    next_offset: int = 0
    message_at: datetime | None = None

    def covers(self, p: Position) -> bool:
        """Whether message `p` was written before (and must be skipped, not written or counted again).

        A message below `next_offset` was, unless its broker timestamp is more
        than RECREATED_AFTER later than the last written message's: then the
        partition's log was recreated under the same name and the message is
        new (writing it again would at worst count duplicates; skipping a new
        one would lose it).
        """
        if p.offset >= self.next_offset:
            return False
        if p.timestamp is not None and self.message_at is not None:
            return p.timestamp <= self.message_at + RECREATED_AFTER
        return True


@dataclass(slots=True)
class MessageWrite:
    """What one Kafka message asks of the sink: its rows, and its validation counts (rejected, dead-lettered).

    `rows` are the message's accepted lines, one per stored row (`keyed_rows`:
    lines sharing a key summed into one); `summed` names the rows that sum
    more than one line (id of the row -> how many), for the feed-health
    counts. Every row is stored with `supplier_id` and `received_at`.
    `counts.accepted` and `counts.duplicates` are the sink's to fill; `payload`
    is the message's raw value, for dead letters. `counted_upstream`: the
    supplier API published this message and already counted its records as
    accepted or duplicate, so the sink adds only what it refuses of them.
    """

    position: Position
    supplier_id: str
    rows: list[Accepted] = field(default_factory=list)
    counts: FeedCounts = field(default_factory=FeedCounts)
    payload: bytes | None = None
    counted_upstream: bool = False
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    summed: dict[int, int] = field(default_factory=dict)

    def lines(self, row: Accepted) -> int:
        """How many of the message's lines `row` stands for."""
        return self.summed.get(id(row), 1) if self.summed else 1


@dataclass
class BatchResult:
    """What a batch did: messages skipped as written before, rows new / duplicate / refused, counts per supplier."""

    skipped: int = 0
    new: int = 0
    duplicates: int = 0
    refused: int = 0
    counts: dict[str, FeedCounts] = field(default_factory=dict)


OnRefused = Callable[[MessageWrite, Accepted, Exception], Awaitable[None]]


def keyed_rows(kind: Kind, lines: Sequence[Accepted]) -> tuple[list[Accepted], dict[int, int]]:
    """One message's accepted lines as rows, in order: inventory lines sharing a key (`row_key`) summed into one;
    and the rows that sum more than one line (id of the row -> how many: `MessageWrite.summed`).

    (The lines of one report share outlet and reported_at.) Quantities add up,
    and so do sold_24h (a line without sold_24h adds nothing; the row has none
    only when none of its lines had one); the first line's index and
    message_id stay. Price lines are not summed (one price per row). The usual
    report (no two lines share a key) comes back as it is, its lines the rows.
    """
    if kind != "inventory" or len({(ln.outlet_id, ln.necessity, ln.reported_at, ln.line_key) for ln in lines}) == len(
        lines
    ):
        return list(lines), {}
    rows: dict[tuple[Any, ...], tuple[Accepted, int]] = {}
    for ln in lines:
        key = row_key(kind, ln)
        got = rows.get(key)
        if got is None:
            rows[key] = (ln, 1)
            continue
        first, count = got
        sold = _add_sold(first.sold_24h, ln.sold_24h)
        summed = Accepted(
            first.index,
            first.outlet_id,
            first.necessity,
            first.amount + ln.amount,
            first.unit,
            first.reported_at,
            sold,
            first.message_id,
            first.at,
            first.line_key,
        )
        rows[key] = (summed, count + 1)
    return [row for row, _ in rows.values()], {id(row): count for row, count in rows.values() if count > 1}


def _add_sold(total: float | None, sold: float | None) -> float | None:
    """sold_24h of lines summed: a line without one adds nothing; None only when no line has one."""
    return total if sold is None else (total or 0.0) + sold


def row_key(kind: Kind, line: Accepted) -> tuple[Any, ...]:
    """The stored row's primary key: (outlet, necessity, reported_at[, line_key])."""
    if kind == "inventory":
        return (line.outlet_id, line.necessity, line.reported_at, line.line_key)
    return (line.outlet_id, line.necessity, line.reported_at)


def _is_refusal(exc: Exception) -> bool:
    """The database (or our code) refused the rows, as opposed to the database being away."""
    if isinstance(exc, DatabaseUnavailable):
        return False
    if isinstance(exc, psycopg.Error):
        return not isinstance(translate(exc), DatabaseUnavailable)
    return True


Pair = tuple[MessageWrite, Accepted]


def _sort_rows(
    kind: Kind, messages: Sequence[MessageWrite], refused_before: Mapping[int, Exception]
) -> tuple[list[Pair], list[Pair], list[tuple[Pair, Exception]]]:
    """The rows of `messages`, in order: (to write, repeats of a key earlier in the batch, refused before).

    The usual inventory batch needs no look at each row's key: when every message is one report (its rows
    share outlet and time) and no two messages share an outlet and time, no two rows share a key, since
    `keyed_rows` made a message's own keys distinct. Otherwise each row's key (`row_key`) is checked.
    """
    if kind == "inventory" and not refused_before and _distinct_reports(messages):
        return [(m, row) for m in messages for row in m.rows], [], []
    pending: list[Pair] = []
    repeats: list[Pair] = []
    refused: list[tuple[Pair, Exception]] = []
    seen: set[tuple[Any, ...]] = set()
    for m in messages:
        for row in m.rows:
            if refused_before and id(row) in refused_before:
                refused.append(((m, row), refused_before[id(row)]))
                continue
            key = row_key(kind, row)
            if key in seen:
                repeats.append((m, row))  # the same key earlier in this batch: the first wins
            else:
                seen.add(key)
                pending.append((m, row))
    return pending, repeats, refused


def _distinct_reports(messages: Sequence[MessageWrite]) -> bool:
    """Whether each message's rows share one outlet and time (the very objects, as validation makes them)
    and no two messages share an outlet and time."""
    seen: set[tuple[str, datetime]] = set()
    for m in messages:
        if not m.rows:
            continue
        outlet, at = m.rows[0].outlet_id, m.rows[0].reported_at
        for row in m.rows:
            if row.outlet_id is not outlet or row.reported_at is not at:
                return False
        if (outlet, at) in seen:
            return False
        seen.add((outlet, at))
    return True


class ReportSink:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        max_backoff_s: float = 30.0,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._pool = pool
        self._max_backoff_s = max_backoff_s
        self._stopping = stopping

    async def written(
        self, positions: Sequence[Position], log_ends: Mapping[TopicPartition, int] | None = None
    ) -> dict[TopicPartition, Written]:
        """What is written of each partition among `positions` (absent: nothing yet); see `Written.covers`.

        An unlocked read, to skip redelivered messages before validating them;
        `write` checks again under a lock. `log_ends` are the broker's end
        offsets where known: a partition whose stored next_offset lies beyond
        its log's end was recreated (or its broker lost the log), and is reset
        to 0 first, with an error logged, so its new messages are written
        rather than skipped as old ones. Retries outages like `write`.
        """
        if not positions:
            return {}
        tps = sorted({p.tp for p in positions})
        params = _tp_params(tps)
        ends = [tp for tp in tps if log_ends and tp in log_ends]
        backoff = 0.5
        while True:
            try:
                async with transaction(self._pool) as conn, conn.cursor() as cur:
                    if ends and log_ends:
                        await cur.execute(
                            QUERIES["reset_stream_offsets"],
                            {**_tp_params(ends), "ends": [log_ends[tp] for tp in ends]},
                        )
                        for r in await cur.fetchall():
                            log.error(
                                "%s partition %d: the broker's log ends at offset %d, below what was written "
                                "before; the topic was recreated or the broker lost its log. Writing its "
                                "messages from offset 0 again (stored lines count as duplicates)",
                                r["topic"],
                                r["partition"],
                                r["log_end"],
                            )
                    await cur.execute(QUERIES["stream_offsets"], params)
                    return {(r["topic"], r["partition"]): _written(r) for r in await cur.fetchall()}
            except DatabaseUnavailable as exc:
                backoff = await self._wait(backoff, exc, "read written offsets")

    async def offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, Written]:
        """What is written of each of `tps` (absent: nothing yet), in one attempt: raises on an outage."""
        if not tps:
            return {}
        async with transaction(self._pool) as conn, conn.cursor() as cur:
            await cur.execute(QUERIES["stream_offsets"], _tp_params(sorted(set(tps))))
            return {(r["topic"], r["partition"]): _written(r) for r in await cur.fetchall()}

    async def write(
        self,
        kind: Kind,
        messages: Sequence[MessageWrite],
        on_refused: OnRefused,
        limit: PoisonLimit | None = None,
    ) -> BatchResult:
        """Commit `messages` (in Kafka order) with their rows, feed health and offsets; see the module contract.

        Blocks until committed (retrying outages). Returns what was done.
        `limit` sees every written part and refused row (`streams.batch.isolate`);
        its `PoisonFlood` propagates with nothing committed.
        """
        if not messages:
            return BatchResult()
        refused_before: dict[int, Exception] = {}
        backoff = 0.5
        while True:
            try:
                return await self._write(kind, messages, on_refused, refused_before, limit)
            except DatabaseUnavailable as exc:
                backoff = await self._wait(backoff, exc, f"write {len(messages)} messages")

    async def _wait(self, backoff: float, exc: Exception, what: str) -> float:
        log.warning("database unavailable, will %s again in %.1fs: %s", what, backoff, exc)
        await pause(backoff, self._stopping)
        return min(backoff * 2, self._max_backoff_s)

    async def _write(
        self,
        kind: Kind,
        messages: Sequence[MessageWrite],
        on_refused: OnRefused,
        refused_before: dict[int, Exception],
        limit: PoisonLimit | None,
    ) -> BatchResult:
        result = BatchResult()
        async with transaction(self._pool) as conn, conn.cursor() as cur:
            params = _tp_params(sorted({m.position.tp for m in messages}))
            await cur.execute(QUERIES["ensure_stream_offsets"], params)
            await cur.execute(QUERIES["lock_stream_offsets"], params)
            done = {(r["topic"], r["partition"]): _written(r) for r in await cur.fetchall()}
            kept = [m for m in messages if not done.get(m.position.tp, NOTHING).covers(m.position)]
            result.skipped = len(messages) - len(kept)
            recreated = [m for m in kept if m.position.offset < done.get(m.position.tp, NOTHING).next_offset]
            if recreated:
                log.error(
                    "%d messages below their partitions' written offsets are newer than what was written "
                    "(first: %s): the topic was recreated or the broker lost its log; writing them",
                    len(recreated),
                    recreated[0].position,
                )
            if not kept:
                return result

            pending, repeats, refused = _sort_rows(kind, kept, refused_before)

            await cur.execute(QUERIES["sink_settings"])

            async def attempt(part: Sequence[Pair]) -> set[int]:
                return await self._attempt(conn, kind, part)

            done_parts = await isolate(pending, attempt, is_refusal=_is_refusal, limit=limit)
            for pair, exc in done_parts.refused:
                await on_refused(pair[0], pair[1], exc)
                refused_before[id(pair[1])] = exc
                refused.append((pair, exc))
            stored_before: set[int] = set()  # id() of the rows that were duplicates
            for _, dups in done_parts.written:
                stored_before |= dups

            counts = result.counts
            for m in kept:
                c = counts.get(m.supplier_id)
                if c is None:
                    c = counts[m.supplier_id] = FeedCounts()
                c.rejected += m.counts.rejected
                c.dead_lettered += m.counts.dead_lettered
            new = 0
            for m, row in pending:
                if id(row) in stored_before:
                    counts[m.supplier_id].duplicates += 0 if m.counted_upstream else m.lines(row)
                    result.duplicates += 1
                elif not (refused_before and id(row) in refused_before):
                    if not m.counted_upstream:
                        counts[m.supplier_id].accepted += m.lines(row)
                    new += 1
            result.new = new
            for m, row in repeats:
                counts[m.supplier_id].duplicates += 0 if m.counted_upstream else m.lines(row)
                result.duplicates += 1
            for (m, row), _ in refused:
                counts[m.supplier_id].rejected += m.lines(row)
                counts[m.supplier_id].dead_lettered += 1
                result.refused += 1

            for supplier in sorted(counts):  # one order in every transaction: two agents never deadlock here
                await add_feed_health(cur, supplier, "kafka", counts[supplier])
            last: dict[TopicPartition, Position] = {}
            for m in kept:
                p = m.position
                if p.tp not in last or p.offset > last[p.tp].offset:
                    last[p.tp] = p
            tps = sorted(last)
            await cur.execute(
                QUERIES["advance_stream_offsets"],
                {
                    **_tp_params(tps),
                    "next_offsets": [last[tp].offset + 1 for tp in tps],
                    "message_ats": [last[tp].timestamp for tp in tps],
                },
            )
        return result

    async def _attempt(self, conn: psycopg.AsyncConnection[Row], kind: Kind, part: Sequence[Pair]) -> set[int]:
        """Write `part` under a savepoint (all or nothing); returns the id() of its rows stored before (duplicates).

        The rows go straight into their table as one COPY text buffer (`_copy_text`); the touched
        (outlet, necessity) pairs' stock is then upserted from arrays. When a row was stored before (a
        redelivery; the unique violation rolls the savepoint back), the part is written again through the
        staging table, by the statement that skips and names the duplicates: an ON CONFLICT, a join and a
        second copy that the usual case does without.
        """
        inventory = kind == "inventory"
        try:
            async with conn.transaction(), conn.cursor() as cur:
                async with cur.copy(QUERIES["copy_reports" if inventory else "copy_prices"]) as copy:
                    await copy.write(_copy_text(inventory, part, seq=False))
                if inventory:
                    await cur.execute(QUERIES["upsert_stock_for_keys"], _newest(part))
                return set()
        except psycopg.errors.UniqueViolation:
            return await self._attempt_staged(conn, kind, part)

    async def _attempt_staged(self, conn: psycopg.AsyncConnection[Row], kind: Kind, part: Sequence[Pair]) -> set[int]:
        inventory = kind == "inventory"
        insert = "insert_reports_from_staging" if inventory else "insert_prices_from_staging"
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(QUERIES["create_report_staging" if inventory else "create_price_staging"])
            await cur.execute(QUERIES["clear_report_staging" if inventory else "clear_price_staging"])
            async with cur.copy(QUERIES["copy_report_staging" if inventory else "copy_price_staging"]) as copy:
                await copy.write(_copy_text(inventory, part))
            await cur.execute(QUERIES[f"{insert}_naming_duplicates"])
            dups = {id(part[r["seq"]][1]) for r in await cur.fetchall()}
            if inventory:
                await cur.execute(QUERIES["upsert_stock_from_staging"], _bounds(part))
            return dups


def _newest(part: Sequence[Pair]) -> dict[str, Any]:
    """`upsert_stock_for_keys`' parameters: each (outlet, necessity) of `part` with its newest reported_at and
    the sums of its rows at that time (sold_24h: None when none of them has one), and the earliest and latest of
    those times.

    As array literals (text), which cost a join where psycopg's list dumper formats every element.
    """
    newest: dict[tuple[str, str], list[Any]] = {}  # (outlet, necessity) -> [reported_at, quantity, sold_24h]

    def merge(outlet: str, at: datetime, sums: dict[str, list[Any]]) -> None:
        for necessity, (quantity, sold) in sums.items():
            got = newest.get((outlet, necessity))
            if got is None or at > got[0]:
                newest[(outlet, necessity)] = [at, quantity, sold]
            elif at == got[0]:
                got[1] += quantity
                got[2] = _add_sold(got[2], sold)

    # Rows come in runs of one report (one outlet and time, the very objects): summed by necessity within
    # a run, then merged, which costs a tuple and a time comparison per necessity of a report, not per row.
    run: dict[str, list[Any]] = {}
    outlet: str | None = None
    at: Any = None
    for _, ln in part:
        if ln.outlet_id is not outlet or ln.reported_at is not at:
            if outlet is not None:
                merge(outlet, at, run)
            run, outlet, at = {}, ln.outlet_id, ln.reported_at
        got = run.get(ln.necessity)
        if got is None:
            run[ln.necessity] = [ln.amount, ln.sold_24h]
        else:
            got[0] += ln.amount
            got[1] = _add_sold(got[1], ln.sold_24h)
    if outlet is not None:
        merge(outlet, at, run)
    times: dict[datetime, str] = {}
    for at, _, _ in newest.values():
        if at not in times:
            times[at] = at.isoformat()
    return {
        "outlets": _array(o for o, _ in newest),
        "necessities": _array(n for _, n in newest),
        "reported_ats": _array(times[at] for at, _, _ in newest.values()),
        "quantities": "{" + ",".join(repr(float(q)) for _, q, _ in newest.values()) + "}",
        "solds": "{" + ",".join("NULL" if s is None else repr(float(s)) for _, _, s in newest.values()) + "}",
        "earliest": min(times),
        "latest": max(times),
    }


def _bounds(part: Sequence[Pair]) -> dict[str, datetime]:
    """The earliest and latest reported_at of `part` (not empty), which bound the stock upserts' lookups."""
    times = {ln.reported_at for _, ln in part}
    return {"earliest": min(times), "latest": max(times)}


def _array(texts: Iterable[str]) -> str:
    """A PostgreSQL array literal of `texts`, each element quoted (a NUL is refused by the database)."""
    out = [t.replace("\\", "\\\\").replace('"', '\\"') if '"' in t or "\\" in t else t for t in texts]
    return '{"' + '","'.join(out) + '"}' if out else "{}"


#: COPY text format's escapes. A NUL cannot be stored (the contract refuses it before; `_copy_field` checks).
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(text: str | None) -> str:
    """A text field for COPY's text format: NULL as \\N, the four special characters escaped."""
    if text is None:
        return "\\N"
    if "\x00" in text:  # what psycopg's own text dumper says (the row is refused and isolated alone)
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_ESCAPES)
    return text


def _copy_text(inventory: bool, part: Sequence[Pair], *, seq: bool = True) -> str:
    """The rows of `part` in COPY text format; with `seq` (the staging tables), a last column: place in `part`.

    The columns are in the order of the COPY statements (`copy_reports`, `copy_prices` and their staging
    twins): first what the lines of one report share (reported_at, outlet, supplier, received_at), formatted
    once per report, then the line's own. Floats as `repr` (the shortest text that reads back as the same
    double), times as ISO 8601 with their offset. Several times faster than psycopg's `write_row` per row,
    which formats every field of every row.
    """
    memo: dict[Any, str] = {}

    def text(value: Any) -> str:
        out = memo.get(value)
        if out is None:
            out = memo[value] = _copy_field(value) if value.__class__ is str else value.isoformat()
        return out

    lines = []
    end = "\n"
    shared: tuple[str, Any, Any, Any, Any] = ("", None, None, None, None)  # the prefix, and what it was made of
    for i, (m, ln) in enumerate(part):
        if seq:
            end = f"\t{i}\n"
        if not (
            ln.reported_at is shared[1]
            and ln.outlet_id is shared[2]
            and m.supplier_id is shared[3]
            and m.received_at is shared[4]
        ):  # a new report (its lines share these very objects)
            prefix = f"{text(ln.reported_at)}\t{text(ln.outlet_id)}\t{text(m.supplier_id)}\t{text(m.received_at)}\t"
            shared = (prefix, ln.reported_at, ln.outlet_id, m.supplier_id, m.received_at)
        prefix = shared[0]
        necessity = memo.get(ln.necessity) or text(ln.necessity)
        message_id = ln.message_id
        mid = "\\N" if message_id is None else _plain(message_id)
        if inventory:
            key = mid if ln.line_key == message_id else _plain(ln.line_key)
            sold = "\\N" if ln.sold_24h is None else repr(float(ln.sold_24h))
            lines.append(f"{prefix}{necessity}\t{key}\t{float(ln.amount)!r}\t{sold}\t{mid}{end}")
        else:
            lines.append(f"{prefix}{necessity}\t{float(ln.amount)!r}\t{mid}{end}")
    return "".join(lines)


def _plain(text: str) -> str:
    """`_copy_field` of a string, with one C call for the usual one (printable, no backslash: nothing to escape)."""
    return text if text.isprintable() and "\\" not in text else _copy_field(text)


async def pause(seconds: float, stopping: Callable[[], bool], step_s: float = 0.5) -> None:
    """Sleep `seconds`, but raise `Interrupted` as soon as `stopping()` is true (checked every `step_s`).

    A worker asked to stop while it waits out an outage stops without
    acknowledging the batch it holds, instead of holding up its shutdown.
    """
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        if stopping():
            raise Interrupted("asked to stop while waiting for the database")
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return
        await asyncio.sleep(min(step_s, left))


NOTHING = Written()


def _written(row: Row) -> Written:
    return Written(row["next_offset"], row["message_at"])


def _tp_params(tps: Sequence[TopicPartition]) -> dict[str, list[Any]]:
    return {"topics": [t for t, _ in tps], "partitions": [p for _, p in tps]}
