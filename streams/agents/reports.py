"""The report agents: outlet reports from `supply.inventory.v1` / `supply.prices.v1` into the database.

Each kind is read by a `streams.supply_consumer.SupplyConsumer` (workers
form a Kafka consumer group for the supply topics), which hands this module
batches of up to `sink_batch_size` messages of one group of partitions.

`prepare` (the consumer's validating stage):

1. wait until the database answers and the registry is loaded (`WorkerState.ready`);
2. drop messages the database already holds (offset below `stream_offsets.next_offset`);
3. validate each message with the API's rules (a supplier writing to the topic
   with its own producer gets exactly the API's checks); a message that is
   not a report at all (a tombstone, bytes our code cannot process) is
   refused alone.

`write` (the consumer's writing stage, one batch after the other per group of partitions):

4. dead-letter rejected lines (capped per supplier) and refused messages
   (always), waiting until the broker has them;
5. write the rest in one transaction with feed health and offsets
   (`ReportSink.write`), which isolates and dead-letters any row the database
   refuses and retries outages for as long as they last.

Only then does the consumer commit the batch's offsets to Kafka. Anything
that escapes these steps stops the worker at once without committing
(`streams.batch.settle`), so the batch is redelivered and, thanks to the
stored offsets, written and counted exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from schema import topics
from schema.contract import Accepted, Context, Kind, Rejection, validate_report
from schema.feed import DeadLetterCap, FeedCounts
from streams.batch import PoisonLimit, describe
from streams.metrics import METRICS
from streams.sink import NOTHING, MessageWrite, Position, TopicPartition, keyed_rows
from streams.state import WorkerState
from streams.supply_consumer import SupplyConsumer

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A validated batch, ready to write: what `write` needs, and what the log line reports."""

    received: int
    fresh: int
    writes: list[MessageWrite] = field(default_factory=list)
    letters: list[dict[str, Any]] = field(default_factory=list)
    poisoned: int = 0


def register(
    app: faust.App, kind: Kind, source: str, deadletter: faust.TopicT, state: WorkerState
) -> SupplyConsumer[Prepared]:
    """The `kind` report agent on topic `source`: a `SupplyConsumer` run as a task of `app` (stopped by the caller)."""
    settings = state.settings
    cap = DeadLetterCap(settings.deadletter_per_minute)
    poison = PoisonLimit(settings.poison_limit)

    async def send_letters(bodies: Sequence[dict[str, Any]]) -> None:
        """Dead-letter `bodies` and wait until the broker acknowledged every one (raises if it will not)."""
        pending = []
        for body in bodies:
            log.warning(
                "dead-lettered %s: supplier=%s index=%s field=%s reason=%s",
                kind,
                body["supplier_id"],
                body["index"],
                body["field"],
                body["reason"],
            )
            pending.append(await deadletter.send(key=str(body["supplier_id"]).encode(), value=orjson.dumps(body)))
        for fut in pending:
            await fut
        METRICS.dead_letters.labels(kind).inc(len(pending))

    async def on_refused(message: MessageWrite, ln: Accepted, exc: Exception) -> None:
        reason = f"the database refused this line: {describe(exc)}"
        body = _letter(kind, message.supplier_id, Rejection(ln.index, "line", reason, outlet_id=ln.outlet_id))
        await send_letters([{**body, "payload": _text(message.payload)}])

    async def check(raw: bytes, ctx: Context) -> tuple[Any, list[Any], list[Rejection], Context]:
        report, lines, rejections = validate_report(kind, raw, ctx)
        if any(r.registry_miss for r in rejections) and await state.registry.refreshed_after_miss():
            ctx = await state.registry.context()  # a newly registered outlet or SKU map
            report, lines, rejections = validate_report(kind, raw, ctx)
        return report, lines, rejections, ctx

    async def prepare(records: Sequence[Any], log_ends: Mapping[TopicPartition, int]) -> Prepared:
        """Steps 1-3 of the module: skip what is written, validate the rest (the batch's records, in Kafka order)."""
        received = [(_position(r), r.value) for r in records]
        from_api = {(r.topic, r.partition, r.offset) for r in records if _via_api(r.headers)}
        await state.ready()
        written = await state.sink.written([p for p, _ in received], log_ends)
        fresh = [(p, v) for p, v in received if not written.get(p.tp, NOTHING).covers(p)]
        ctx = await state.registry.context()
        out = Prepared(len(received), len(fresh))
        for position, raw in fresh:
            if raw is None:
                tombstone = Rejection(-1, "message", "the message has no value (a tombstone), not a report")
                allowed = cap.allow("unknown", 1)
                out.letters.extend({**_letter(kind, "unknown", tombstone), "payload": None} for _ in range(allowed))
                out.writes.append(
                    MessageWrite(position, "unknown", counts=FeedCounts(rejected=1, dead_lettered=allowed))
                )
                continue
            try:
                report, lines, rejections, ctx = await check(raw, ctx)
                supplier = report.supplier_id if report else "unknown"
                received_at = (report.received_at if report else None) or datetime.now(UTC)
                rows, summed = keyed_rows(kind, lines)
            except Exception as exc:  # this message alone is refused; the batch goes on
                poison.refused(1)  # a bug that refuses everything stops the worker instead
                reason = f"could not be processed: {describe(exc)}"
                out.letters.append(
                    {**_letter(kind, "unknown", Rejection(-1, "message", reason)), "payload": _text(raw)}
                )
                out.writes.append(MessageWrite(position, "unknown", counts=FeedCounts(rejected=1, dead_lettered=1)))
                out.poisoned += 1
                continue
            via_api = (position.topic, position.partition, position.offset) in from_api
            allowed = cap.allow(supplier, len(rejections))
            out.letters.extend({**_letter(kind, supplier, r), "payload": _text(raw)} for r in rejections[:allowed])
            counts = FeedCounts(rejected=len(rejections), dead_lettered=allowed)
            out.writes.append(
                MessageWrite(position, supplier, rows, counts, raw, via_api, received_at=received_at, summed=summed)
            )
        return out

    async def write(batch: Prepared) -> None:
        """Steps 4-5 of the module: dead-letter, then write in one transaction (retrying outages)."""
        await send_letters(batch.letters)
        started = time.monotonic()
        result = await state.sink.write(kind, batch.writes, on_refused, poison)
        METRICS.batch_write_seconds.labels(kind).observe(time.monotonic() - started)
        METRICS.reports_processed.labels(kind).inc(batch.received)
        METRICS.lines_written.labels(kind).inc(sum(c.accepted for c in result.counts.values()))
        skipped = batch.received - batch.fresh + result.skipped
        if skipped or result.duplicates or result.refused or batch.poisoned:
            log.info(
                "%s: %d messages; %d rows new, %d duplicates, %d refused by the database, "
                "%d messages refused, %d skipped as written before",
                kind,
                batch.received,
                result.new,
                result.duplicates,
                result.refused,
                batch.poisoned,
                skipped,
            )

    consumer = SupplyConsumer(
        settings,
        source,
        f"{kind} reports",
        prepare=prepare,
        write=write,
        read_written=state.sink.offsets,
        ready=state.ready,
    )
    app.task(consumer.run)
    return consumer


def _via_api(headers: Any) -> bool:
    """Whether the supplier API published this message (it counted the records' feed health already)."""
    if not headers:
        return False
    pairs = headers.items() if isinstance(headers, dict) else headers
    return any(k == topics.VIA_HEADER and v == topics.VIA_API for k, v in pairs)


def _position(record: Any) -> Position:
    """Where a consumed record sits; its broker timestamp (milliseconds) as a time, None when it has none."""
    ts = record.timestamp
    at = datetime.fromtimestamp(ts / 1000, UTC) if ts is not None and ts > 0 else None
    return Position(record.topic, record.partition, record.offset, at)


def _letter(kind: Kind, supplier: str, rejection: Rejection) -> dict[str, Any]:
    return {"supplier_id": supplier, "source": "kafka", "kind": kind, **rejection.as_dict()}


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")
