"""Intake: what happens to a supplier's records once the request is authenticated and parsed.

    validate (schema.contract) -> de-duplicate (ingest.claims, ingest_claims) -> group per
    outlet -> publish (Kafka, acks=all) -> dead-letter rejects (capped) -> count feed health (schema.feed)

`Intake.accept` claims the records' reports and publishes in one database
transaction: if Kafka does not acknowledge, the claim rolls back and
`PublishFailed` propagates, so a retry of the same batch is accepted, not
called a duplicate. A record claimed before (in the window `dedup_window_h`;
what counts as the same record: ingest/claims.py) is answered as a duplicate
and not published again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ingest import claims
from ingest.formats import Parsed
from ingest.publisher import Publisher
from schema.contract import (
    Accepted,
    Kind,
    Rejection,
    encode_report,
    validate_records,
)
from schema.db import QUERIES, ByteaArray, DatabaseError, transaction
from schema.feed import DeadLetterCap, FeedCounts, FeedTally
from schema.registry import Registry

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
        self,
        pool: AsyncConnectionPool[Any],
        registry: Registry,
        publisher: Publisher,
        deadletter_cap: DeadLetterCap,
        tally: FeedTally,
    ) -> None:
        self._pool = pool
        self._registry = registry
        self._publisher = publisher
        self._cap = deadletter_cap
        self._tally = tally

    async def accept(self, supplier_id: str, kind: Kind, parsed: Parsed, source: str = "http") -> Outcome:
        """Validate, de-duplicate and publish; raises PublishFailed (nothing accepted) or DatabaseError."""
        records = parsed.records
        good, bad = await self._validate(kind, records, supplier_id)
        if any(r.registry_miss for r in bad) and await self._registry.refreshed_after_miss():
            good, bad = await self._validate(kind, records, supplier_id)  # a newly registered outlet or SKU map
        if parsed.lines is not None:
            bad = [replace(r, line=parsed.lines[r.index]) for r in bad]
        outcome = Outcome(rejected=parsed.rejected + bad)
        if good:
            await self._commit(kind, supplier_id, good, parsed, outcome)
        counts = FeedCounts(outcome.accepted, len(outcome.rejected), len(outcome.duplicates))
        counts.dead_lettered = self._cap.allow(supplier_id, len(outcome.rejected))
        self._tally.add(supplier_id, source, counts)
        if counts.dead_lettered:
            sent = outcome.rejected[: counts.dead_lettered]
            payloads = [records[r.index] if r.index >= 0 else None for r in sent]
            try:  # what was accepted above stays accepted: a dead-letter failure is logged, never answered
                await self._publisher.dead_letter(supplier_id, source, kind, sent, payloads)
            except Exception:
                log.exception("supplier %s: %d dead letters not sent", supplier_id, len(sent))
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

    async def _commit(
        self,
        kind: Kind,
        supplier_id: str,
        good: list[Accepted],
        parsed: Parsed,
        outcome: Outcome,
    ) -> None:
        """Claim the reports and publish the fresh records, in one transaction.

        Usually every report is new and one INSERT claims them all. A report
        claimed before (a retry, or a report cut across two requests) is
        skipped by that INSERT, then read under a row lock, and only its new
        records are added to it and published.
        """
        the_plan = claims.plan(kind, supplier_id, good)
        reports, records = the_plan.rows()
        async with transaction(self._pool) as conn, conn.cursor() as cur:
            await cur.execute(
                QUERIES["claim_reports"], {"reports": ByteaArray(reports), "records": ByteaArray(records)}
            )
            row = await cur.fetchone()
            if row is not None and row["claimed"] == len(reports):
                repeats: list[Accepted] = the_plan.repeats  # inside the request; not in the plan's reports
                groups = the_plan.groups()
            else:
                await cur.execute(QUERIES["lock_claimed_reports"], {"reports": ByteaArray(reports)})
                claimed = {bytes(r["report_key"]): bytes(r["record_keys"]) for r in await cur.fetchall()}
                found = claims.sort_out(the_plan, claimed)
                repeats, groups = found.repeats, the_plan.groups(leaving_out=found.repeats)
                if found.additions[0]:
                    keys, added = found.additions
                    await cur.execute(
                        QUERIES["add_claimed_records"], {"reports": ByteaArray(keys), "records": ByteaArray(added)}
                    )
            outcome.duplicates = [_duplicate(a, parsed) for a in repeats]
            received_at = datetime.now(UTC)
            messages = [(g.outlet_id, encode_report(kind, supplier_id, received_at, g)) for g in groups]
            await self._publisher.publish(kind, messages)
            outcome.accepted, outcome.reports = sum(len(g.lines) for g in groups), len(messages)

    async def purge(self, hours: int) -> None:
        """Forget idempotency keys older than the window; logs and carries on if the database is away."""
        try:
            async with transaction(self._pool) as conn:
                await conn.execute(QUERIES["purge_claims"], {"hours": hours})
        except DatabaseError as exc:
            log.warning("dedup purge skipped: %s", exc)


def _duplicate(record: Accepted, parsed: Parsed) -> dict[str, Any]:
    out: dict[str, Any] = {"index": record.index}
    if parsed.lines is not None:
        out["line"] = parsed.lines[record.index]
    out["reason"] = (
        f"duplicate of an accepted record (message_id {record.message_id!r})"
        if record.message_id
        else f"duplicate of an accepted record for {record.outlet_id}/{record.necessity} "
        f"at {record.reported_at.isoformat()}"
    )
    return out
