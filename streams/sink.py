"""Batched, idempotent writes of report lines to the database.

`ReportSink.write` blocks (asynchronously) until the batch is committed, and
retries a database outage with back-off for as long as it takes: the caller
acknowledges the Kafka offsets only after `write` returns, so a crash or an
outage loses nothing, and a redelivered batch is a no-op (outlet_reports has a
primary key; outlet_stock only moves forward in reported_at).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from schema.contract import Accepted
from schema.db import QUERIES, DatabaseUnavailable, transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SinkRow:
    supplier_id: str
    received_at: datetime
    line: Accepted


class ReportSink:
    def __init__(self, pool: AsyncConnectionPool, *, max_backoff_s: float = 30.0) -> None:
        self._pool = pool
        self._max_backoff_s = max_backoff_s

    async def write(self, rows: Sequence[SinkRow]) -> int:
        """Commit stock `rows` to outlet_reports and outlet_stock; retries outages until it succeeds.

        Returns how many rows were new (the rest were duplicates of rows already stored).
        """
        return await self._retrying(self._write_stock, rows)

    async def write_prices(self, rows: Sequence[SinkRow]) -> int:
        """Commit price `rows` to prices; retries outages until it succeeds. Returns how many were new."""
        return await self._retrying(self._write_prices, rows)

    async def _retrying(self, write: Callable[[Sequence[SinkRow]], Awaitable[int]], rows: Sequence[SinkRow]) -> int:
        if not rows:
            return 0
        backoff = 0.5
        while True:
            try:
                return await write(rows)
            except DatabaseUnavailable as exc:
                log.warning("database unavailable, retrying %d rows in %.1fs: %s", len(rows), backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)

    async def _write_stock(self, rows: Sequence[SinkRow]) -> int:
        async with transaction(self._pool) as conn, conn.cursor() as cur:
            await cur.execute(QUERIES["create_report_staging"])
            async with cur.copy(QUERIES["copy_report_staging"]) as copy:
                for r in rows:
                    ln = r.line
                    await copy.write_row(
                        (
                            ln.reported_at,
                            ln.outlet_id,
                            ln.necessity,
                            ln.amount,
                            ln.sold_24h,
                            r.supplier_id,
                            ln.message_id,
                            r.received_at,
                        )
                    )
            await cur.execute(QUERIES["insert_reports_from_staging"])
            inserted = cur.rowcount
            await cur.execute(QUERIES["upsert_stock_from_staging"])
            return inserted

    async def _write_prices(self, rows: Sequence[SinkRow]) -> int:
        async with transaction(self._pool) as conn, conn.cursor() as cur:
            await cur.execute(QUERIES["create_price_staging"])
            async with cur.copy(QUERIES["copy_price_staging"]) as copy:
                for r in rows:
                    ln = r.line
                    await copy.write_row(
                        (
                            ln.reported_at,
                            ln.outlet_id,
                            ln.necessity,
                            ln.amount,
                            r.supplier_id,
                            ln.message_id,
                            r.received_at,
                        )
                    )
            await cur.execute(QUERIES["insert_prices_from_staging"])
            return cur.rowcount
