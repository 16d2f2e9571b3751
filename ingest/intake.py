"""Intake: what happens to a supplier's records once the request is authenticated and parsed.

    validate (ingest.contract) -> de-duplicate (ingest_dedup) -> group per outlet
    -> publish (Kafka, acks=all) -> dead-letter rejects (capped) -> count feed health

`Intake.accept` claims the records' idempotency keys and publishes in one
database transaction: if Kafka does not acknowledge, the claim rolls back and
`PublishFailed` propagates, so a retry of the same batch is accepted, not
called a duplicate. A record whose key was already claimed (in the window
`dedup_window_h`) is answered as a duplicate and not published again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ingest.contract import (
    KEY_BYTES,
    Accepted,
    Kind,
    Rejection,
    encode_report,
    group_reports,
    idempotency_key,
    validate_records,
)
from ingest.feed import DeadLetterCap, FeedCounts, add_feed_health
from ingest.formats import Parsed
from ingest.publisher import Publisher
from ingest.registry import Registry
from schema.db import QUERIES, DatabaseError, transaction

log = logging.getLogger(__name__)
LARGE = 5000  # records; above this, validation runs in a worker thread


@dataclass
class Outcome:
    accepted: int = 0
    reports: int = 0
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "reports": self.reports,
            "duplicates": self.duplicates,
            "rejected": [r.as_dict() for r in self.rejected],
        }


class Intake:
    def __init__(
        self, pool: AsyncConnectionPool[Any], registry: Registry, publisher: Publisher, deadletter_cap: DeadLetterCap
    ) -> None:
        self._pool = pool
        self._registry = registry
        self._publisher = publisher
        self._cap = deadletter_cap

    async def accept(self, supplier_id: str, kind: Kind, parsed: Parsed, source: str = "http") -> Outcome:
        """Validate, de-duplicate and publish; raises PublishFailed (nothing accepted) or DatabaseError."""
        records = parsed.records
        good, bad = await self._validate(kind, records, supplier_id)
        if (
            any(r.code == "unknown_outlet" or r.field == "sku" for r in bad)
            and await self._registry.refreshed_after_miss()
        ):
            good, bad = await self._validate(kind, records, supplier_id)  # a newly registered outlet or SKU map
        if parsed.lines is not None:
            bad = [replace(r, line=parsed.lines[r.index]) for r in bad]
        outcome = Outcome(rejected=parsed.rejected + bad)
        counts = FeedCounts(rejected=len(outcome.rejected))
        async with transaction(self._pool) as conn, conn.cursor() as cur:
            if good:
                fresh = await self._claim(cur, kind, supplier_id, good, parsed, outcome)
                received_at = datetime.now(UTC)
                messages = [
                    (g.outlet_id, encode_report(kind, supplier_id, received_at, g)) for g in group_reports(fresh)
                ]
                await self._publisher.publish(kind, messages)
                outcome.accepted, outcome.reports = len(fresh), len(messages)
            counts.accepted, counts.duplicates = outcome.accepted, len(outcome.duplicates)
            counts.dead_lettered = self._cap.allow(supplier_id, len(outcome.rejected))
            await add_feed_health(cur, supplier_id, source, counts)
        if counts.dead_lettered:
            sent = outcome.rejected[: counts.dead_lettered]
            payloads = [records[r.index] if r.index >= 0 else None for r in sent]
            await self._publisher.dead_letter(supplier_id, source, kind, sent, payloads)
        if counts.dead_lettered < len(outcome.rejected):
            log.warning(
                "supplier %s: %d rejects over the dead-letter cap were counted, not dead-lettered",
                supplier_id,
                len(outcome.rejected) - counts.dead_lettered,
            )
        return outcome

    async def _validate(
        self, kind: Kind, records: list[Any], supplier_id: str
    ) -> tuple[list[Accepted], list[Rejection]]:
        ctx = await self._registry.context()
        if len(records) > LARGE:  # a big spreadsheet: validate off the event loop
            return await asyncio.to_thread(validate_records, kind, records, ctx, supplier_id)
        return validate_records(kind, records, ctx, supplier_id)

    async def _claim(
        self, cur: Any, kind: Kind, supplier_id: str, good: list[Accepted], parsed: Parsed, outcome: Outcome
    ) -> list[Accepted]:
        keys = [idempotency_key(kind, supplier_id, a) for a in good]
        await cur.execute(QUERIES["claim_dedup_keys"], {"keys": b"".join(keys)})
        row = await cur.fetchone()
        claimed = bytes(row["keys"] or b"") if row else b""
        if len(claimed) == len(keys) * KEY_BYTES:
            return good  # the usual case: every key was new
        new = {claimed[i : i + KEY_BYTES] for i in range(0, len(claimed), KEY_BYTES)}
        fresh: list[Accepted] = []
        for a, key in zip(good, keys, strict=True):
            if key in new:
                new.discard(key)  # a second copy in the same request is a duplicate too
                fresh.append(a)
                continue
            dup: dict[str, Any] = {"index": a.index}
            if parsed.lines is not None:
                dup["line"] = parsed.lines[a.index]
            dup["reason"] = (
                f"duplicate of an accepted record (message_id {a.message_id!r})"
                if a.message_id
                else f"duplicate of an accepted record for {a.outlet_id}/{a.necessity} at {a.reported_at.isoformat()}"
            )
            outcome.duplicates.append(dup)
        return fresh

    async def purge(self, hours: int) -> None:
        """Forget idempotency keys older than the window; logs and carries on if the database is away."""
        try:
            async with transaction(self._pool) as conn:
                await conn.execute(QUERIES["purge_dedup_keys"], {"hours": hours})
        except DatabaseError as exc:
            log.warning("dedup purge skipped: %s", exc)
