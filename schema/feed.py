"""Feed health bookkeeping and the dead-letter cap, shared by the API and the stream worker.

Every path counts, per supplier and minute, what it accepted, rejected,
found duplicate and dead-lettered (`feed_health`); the feed-quality alert
rule reads those counts. The worker adds its counts per batch; the API keeps
them in a `FeedTally` and writes them once a second, so a request costs no
statement for them (at full load that statement was a fifth of the API's
database round trips). Counts are monitoring, best effort on both paths: a
crash loses at most the last second's.

`DeadLetterCap` bounds how many rejects per supplier go to the dead-letter
topic one by one: past the cap, rejects are still answered and counted but
not dead-lettered, and the feed alert tells operators that a feed is mostly
garbage (arroyo's DlqLimit, applied per supplier).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncCursor
from psycopg_pool import AsyncConnectionPool

from schema.db import QUERIES, DatabaseError, Row, transaction
from schema.ratelimit import RateLimiter

log = logging.getLogger(__name__)


@dataclass
class FeedCounts:
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    dead_lettered: int = 0

    def add(self, other: FeedCounts) -> None:
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.duplicates += other.duplicates
        self.dead_lettered += other.dead_lettered


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


async def add_feed_health(
    cur: AsyncCursor[Row], supplier_id: str, source: str, counts: FeedCounts, minute: datetime | None = None
) -> None:
    """Add `counts` to the row of `minute` (default: this one); runs inside the caller's transaction."""
    await cur.execute(
        QUERIES["add_feed_health"],
        {
            "supplier_id": supplier_id,
            "minute": _minute(minute or datetime.now(UTC)),
            "source": source,
            "accepted": counts.accepted,
            "rejected": counts.rejected,
            "duplicates": counts.duplicates,
            "dead_lettered": counts.dead_lettered,
        },
    )


class DeadLetterCap:
    """At most `per_minute` dead letters per supplier (bursts up to the same), thread-safe."""

    def __init__(self, per_minute: float) -> None:
        self._limiter = RateLimiter(rate_per_s=per_minute / 60.0, burst=per_minute)

    def allow(self, supplier_id: str, count: int) -> int:
        """How many of `count` rejects may be dead-lettered now."""
        allowed = 0
        for _ in range(count):
            if self._limiter.take(supplier_id) > 0:
                break
            allowed += 1
        return allowed


class FeedTally:
    """The API's feed-health counts per supplier, source and minute, in memory until `flush` writes them."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, datetime], FeedCounts] = {}

    def add(self, supplier_id: str, source: str, counts: FeedCounts) -> None:
        self._counts.setdefault((supplier_id, source, _minute(datetime.now(UTC))), FeedCounts()).add(counts)

    async def flush(self, pool: AsyncConnectionPool[Any]) -> None:
        """Write what was counted since the last flush; kept for the next one if the database is away."""
        if not self._counts:
            return
        counts, self._counts = self._counts, {}
        written = False
        try:
            async with transaction(pool) as conn, conn.cursor() as cur:
                for (supplier_id, source, minute), c in counts.items():
                    await add_feed_health(cur, supplier_id, source, c, minute)
            written = True
        except DatabaseError as exc:
            log.warning("feed health not written yet, kept for the next attempt: %s", exc)
        finally:
            if not written:  # the database was away, or shutdown cancelled this write: the next flush has them
                for (supplier_id, source, minute), c in counts.items():
                    self._counts.setdefault((supplier_id, source, minute), FeedCounts()).add(c)
