"""Feed health bookkeeping and the dead-letter cap, shared by the API and the stream worker.

Every path counts, per supplier and minute, what it accepted, rejected,
found duplicate and dead-lettered (`feed_health`); the feed-quality alert
rule reads those counts. `DeadLetterCap` bounds how many rejects per supplier
go to the dead-letter topic one by one: past the cap, rejects are still
answered and counted but not dead-lettered, and the feed alert tells
operators that a feed is mostly garbage (arroyo's DlqLimit, applied per supplier).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncCursor

from ingest.ratelimit import RateLimiter
from schema.db import QUERIES, Row


@dataclass
class FeedCounts:
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    dead_lettered: int = 0


async def add_feed_health(cur: AsyncCursor[Row], supplier_id: str, source: str, counts: FeedCounts) -> None:
    """Add `counts` to this minute's row; runs inside the caller's transaction."""
    await cur.execute(
        QUERIES["add_feed_health"],
        {
            "supplier_id": supplier_id,
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
