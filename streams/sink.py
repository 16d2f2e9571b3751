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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from ingest.contract import StockLine
from schema.db import QUERIES, DatabaseUnavailable, transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SinkRow:
    supplier_id: str
    received_at: datetime
    line: StockLine


class ReportSink:
    def __init__(self, pool: AsyncConnectionPool, *, max_backoff_s: float = 30.0) -> None:
        self._pool = pool
        self._max_backoff_s = max_backoff_s

    async def write(self, rows: Sequence[SinkRow]) -> None:
        """Commit `rows` to outlet_reports and outlet_stock; retries outages until it succeeds."""
        if not rows:
            return
        backoff = 0.5
        while True:
            try:
                await self._write_once(rows)
                return
            except DatabaseUnavailable as exc:
                log.warning("database unavailable, retrying %d rows in %.1fs: %s", len(rows), backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)

    async def _write_once(self, rows: Sequence[SinkRow]) -> None:
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
                            ln.quantity,
                            ln.sold_24h,
                            r.supplier_id,
                            ln.message_id,
                            r.received_at,
                        )
                    )
            await cur.execute(QUERIES["insert_reports_from_staging"])
            await cur.execute(QUERIES["upsert_stock_from_staging"])
