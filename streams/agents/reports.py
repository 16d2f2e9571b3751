"""The report agents: outlet reports from `supply.inventory.v1` / `supply.prices.v1` into the database.

Per batch (up to `sink_batch_size` messages, at most `sink_max_wait_s` old):

1. wait until the database answers and the registry is loaded (`WorkerState.ready`);
2. drop messages the database already holds (offset below `stream_offsets.next_offset`);
3. validate each message with the API's rules (a supplier writing to the topic
   with its own producer gets exactly the API's checks); a message that is
   not a report at all (a tombstone, bytes our code cannot process) is
   refused alone;
4. dead-letter rejected lines (capped per supplier) and refused messages
   (always), waiting until the broker has them;
5. write the rest in one transaction with feed health and offsets
   (`ReportSink.write`), which isolates and dead-letters any row the database
   refuses and retries outages for as long as they last.

Only then does `take_events()` acknowledge the batch. Anything that escapes
these steps stops the worker at once without acknowledging
(`streams.batch.settle`), so the batch is redelivered and, thanks to the
stored offsets, written and counted exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from faust.types import TP

from schema import topics
from schema.contract import Context, Kind, Rejection, validate_report
from schema.feed import DeadLetterCap, FeedCounts
from streams.batch import PoisonLimit, describe, settle
from streams.metrics import METRICS
from streams.sink import NOTHING, MessageWrite, Position, SinkRow, keyed_rows
from streams.state import WorkerState

log = logging.getLogger(__name__)


def register(app: faust.App, kind: Kind, source: faust.TopicT, deadletter: faust.TopicT, state: WorkerState) -> None:
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

    async def on_refused(message: MessageWrite, row: SinkRow, exc: Exception) -> None:
        ln = row.line
        reason = f"the database refused this line: {describe(exc)}"
        body = _letter(kind, message.supplier_id, Rejection(ln.index, "line", reason, outlet_id=ln.outlet_id))
        await send_letters([{**body, "payload": _text(message.payload)}])

    async def check(raw: bytes, ctx: Context) -> tuple[Any, list[Any], list[Rejection], Context]:
        report, lines, rejections = validate_report(kind, raw, ctx)
        if any(r.registry_miss for r in rejections) and await state.registry.refreshed_after_miss():
            ctx = await state.registry.context()  # a newly registered outlet or SKU map
            report, lines, rejections = validate_report(kind, raw, ctx)
        return report, lines, rejections, ctx

    async def handle(events: Sequence[faust.types.EventT]) -> None:
        received = [(_position(e.message), e.message.value) for e in events]
        from_api = {(p.tp, p.offset) for (p, _), e in zip(received, events, strict=True) if _via_api(e.message.headers)}
        await state.ready()
        written = await state.sink.written([p for p, _ in received], _log_ends(app, received))
        fresh = [(p, v) for p, v in received if not written.get(p.tp, NOTHING).covers(p)]
        ctx = await state.registry.context()
        writes: list[MessageWrite] = []
        letters: list[dict[str, Any]] = []
        poisoned = 0
        for position, raw in fresh:
            if raw is None:
                tombstone = Rejection(-1, "message", "the message has no value (a tombstone), not a report")
                allowed = cap.allow("unknown", 1)
                letters.extend({**_letter(kind, "unknown", tombstone), "payload": None} for _ in range(allowed))
                writes.append(MessageWrite(position, "unknown", counts=FeedCounts(rejected=1, dead_lettered=allowed)))
                continue
            try:
                report, lines, rejections, ctx = await check(raw, ctx)
                supplier = report.supplier_id if report else "unknown"
                received_at = (report.received_at if report else None) or datetime.now(UTC)
                rows = keyed_rows(kind, supplier, received_at, lines)
            except Exception as exc:  # this message alone is refused; the batch goes on
                poison.refused(1)  # a bug that refuses everything stops the worker instead
                reason = f"could not be processed: {describe(exc)}"
                letters.append({**_letter(kind, "unknown", Rejection(-1, "message", reason)), "payload": _text(raw)})
                writes.append(MessageWrite(position, "unknown", counts=FeedCounts(rejected=1, dead_lettered=1)))
                poisoned += 1
                continue
            via_api = (position.tp, position.offset) in from_api
            allowed = cap.allow(supplier, len(rejections))
            letters.extend({**_letter(kind, supplier, r), "payload": _text(raw)} for r in rejections[:allowed])
            counts = FeedCounts(rejected=len(rejections), dead_lettered=allowed)
            writes.append(MessageWrite(position, supplier, rows, counts, raw, counted_upstream=via_api))
        await send_letters(letters)
        started = time.monotonic()
        result = await state.sink.write(kind, writes, on_refused, poison)
        METRICS.batch_write_seconds.labels(kind).observe(time.monotonic() - started)
        METRICS.reports_processed.labels(kind).inc(len(received))
        METRICS.lines_written.labels(kind).inc(sum(c.accepted for c in result.counts.values()))
        skipped = len(received) - len(fresh) + result.skipped
        if skipped or result.duplicates or result.refused or poisoned:
            log.info(
                "%s: %d messages; %d rows new, %d duplicates, %d refused by the database, "
                "%d messages refused, %d skipped as written before",
                kind,
                len(received),
                result.new,
                result.duplicates,
                result.refused,
                poisoned,
                skipped,
            )

    async def process(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(settings.sink_batch_size, within=settings.sink_max_wait_s)  # type: ignore[attr-defined]  # StreamT lacks it; Stream has it
        async for events in batches:
            await settle(lambda: handle(events), what=f"{kind} reports")  # noqa: B023  (awaited at once)

    app.agent(source, name=f"{kind}_reports")(process)


def _log_ends(app: faust.App, received: Sequence[tuple[Position, bytes | None]]) -> dict[tuple[str, int], int]:
    """The broker's end offset of each partition in the batch, as of the consumer's last fetch (where known)."""
    ends: dict[tuple[str, int], int] = {}
    for position, _ in received:
        if position.tp in ends:
            continue
        try:
            end = app.consumer.highwater(TP(position.topic, position.partition))
        except Exception:  # not known yet (no fetch answered): skip the check for this batch
            continue
        if isinstance(end, int) and end >= 0:
            ends[position.tp] = end
    return ends


def _via_api(headers: Any) -> bool:
    """Whether the supplier API published this message (it counted the records' feed health already)."""
    if not headers:
        return False
    pairs = headers.items() if isinstance(headers, dict) else headers
    return any(k == topics.VIA_HEADER and v == topics.VIA_API for k, v in pairs)


def _position(message: Any) -> Position:
    at = datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp else None
    return Position(message.topic, message.partition, message.offset, at)


def _letter(kind: Kind, supplier: str, rejection: Rejection) -> dict[str, Any]:
    return {"supplier_id": supplier, "source": "kafka", "kind": kind, **rejection.as_dict()}


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")
