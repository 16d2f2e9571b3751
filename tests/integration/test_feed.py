"""The API's feed-health tally against the real PostgreSQL: written once, kept while the database is away."""

from __future__ import annotations

import asyncio

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from schema.db import connect
from schema.feed import FeedCounts, FeedTally
from tests.support import free_port, seed_tiny_city


def _totals(url: str) -> tuple[int, int]:
    with connect(url) as conn:
        row = conn.execute("SELECT sum(accepted) AS a, sum(rejected) AS r FROM feed_health WHERE supplier_id = 's1'")
        got = row.fetchone()
    assert got is not None
    return int(got["a"] or 0), int(got["r"] or 0)


def test_counts_survive_a_database_outage_and_are_written_once(database_url: str) -> None:
    seed_tiny_city(database_url)
    away = f"postgresql://baogong@127.0.0.1:{free_port()}/nowhere"

    async def scenario() -> None:
        tally = FeedTally()
        tally.add("s1", "http", FeedCounts(accepted=5, rejected=1))
        down = AsyncConnectionPool(away, min_size=0, max_size=1, timeout=1, open=False)
        await down.open(wait=False)
        try:
            await tally.flush(down)  # logs and keeps the counts
        finally:
            await down.close()
        assert _totals(database_url) == (0, 0)
        tally.add("s1", "http", FeedCounts(accepted=2))
        up = AsyncConnectionPool(database_url, min_size=1, max_size=1, open=False, kwargs={"row_factory": dict_row})
        await up.open(wait=True)
        try:
            await tally.flush(up)
            await tally.flush(up)  # nothing new: nothing written twice
        finally:
            await up.close()

    asyncio.run(scenario())
    assert _totals(database_url) == (7, 1)
