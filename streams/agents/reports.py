"""The report agents: outlet reports from `supply.inventory.v1` / `supply.prices.v1` into the database.

Each batch (up to `sink_batch_size` messages, at most `sink_max_wait_s` old)
is validated with the same rules as the HTTP path (a supplier writing to the
topic with its own producer gets exactly the API's checks), bad messages and
lines go to the dead-letter topic (capped per supplier), good lines are
written in one idempotent transaction, and only then are the batch's offsets
acknowledged. The sink retries database outages itself, so a batch is never
acknowledged unwritten.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from schema.contract import Kind, validate_report
from schema.db import DatabaseError, transaction
from schema.feed import DeadLetterCap, FeedCounts, add_feed_health
from streams.sink import SinkRow
from streams.state import WorkerState

log = logging.getLogger(__name__)


def register(app: faust.App, kind: Kind, source: faust.TopicT, deadletter: faust.TopicT, state: WorkerState) -> None:
    settings = state.settings
    cap = DeadLetterCap(settings.deadletter_per_minute)
    write = state.sink.write if kind == "inventory" else state.sink.write_prices

    async def process(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take(settings.sink_batch_size, within=settings.sink_max_wait_s):
            await state.ready()
            rows: list[SinkRow] = []
            dead: list[dict[str, Any]] = []
            counts: dict[str, FeedCounts] = defaultdict(FeedCounts)
            ctx = await state.registry.context()
            for raw in batch:
                report, lines, rejections = validate_report(kind, raw, ctx)
                if any(r.registry_miss for r in rejections) and await state.registry.refreshed_after_miss():
                    ctx = await state.registry.context()  # a newly registered outlet or SKU map
                    report, lines, rejections = validate_report(kind, raw, ctx)
                supplier = report.supplier_id if report else "unknown"
                received = (report.received_at if report else None) or datetime.now(UTC)
                rows.extend(SinkRow(supplier, received, ln) for ln in lines)
                counts[supplier].accepted += len(lines)
                counts[supplier].rejected += len(rejections)
                allowed = cap.allow(supplier, len(rejections))
                counts[supplier].dead_lettered += allowed
                for rej in rejections[:allowed]:
                    dead.append(
                        {
                            "supplier_id": supplier,
                            "source": "kafka",
                            "kind": kind,
                            **rej.as_dict(),
                            "payload": raw.decode("utf-8", "replace"),
                        }
                    )
            new = await write(rows)
            if rows and new < len(rows):
                log.info("%s: %d of %d lines were duplicates of stored ones", kind, len(rows) - new, len(rows))
            await _count(state, counts, duplicates=len(rows) - new)
            for body in dead:
                log.warning(
                    "dead-lettered %s: supplier=%s field=%s reason=%s",
                    kind,
                    body["supplier_id"],
                    body["field"],
                    body["reason"],
                )
                await deadletter.send(key=str(body["supplier_id"]).encode(), value=orjson.dumps(body))

    app.agent(source, name=f"{kind}_reports")(process)


async def _count(state: WorkerState, counts: dict[str, FeedCounts], duplicates: int) -> None:
    """Feed-health bookkeeping; best effort (a lost minute of counts must not stall the stream)."""
    if not counts:
        return
    if duplicates and len(counts) == 1:
        next(iter(counts.values())).duplicates = duplicates
    try:
        async with transaction(state.pool) as conn, conn.cursor() as cur:
            for supplier, c in counts.items():
                await add_feed_health(cur, supplier, "kafka", c)
    except DatabaseError as exc:
        log.warning("feed health not recorded: %s", exc)
