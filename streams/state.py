"""What a stream worker holds between messages: its pool, sink and registry, opened lazily.

`WorkerState.ready()` is awaited before every batch and every level pass. The
first call blocks until the database answers and the outlet registry is
loaded, however long that takes: a worker started while the database is down
waits (logging each retry, with back-off up to `max_backoff_s`) instead of
crashing, and never validates a report against an empty registry (which
would reject good lines as naming unknown outlets). Later calls return at
once; later outages are the sink's to retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

import psycopg

from baogong.settings import Settings
from schema.db import QUERIES, DatabaseError, make_pool, transaction, translate
from schema.registry import Registry
from streams.sink import ReportSink, pause

log = logging.getLogger(__name__)


class WorkerState:
    def __init__(
        self, settings: Settings, *, max_backoff_s: float = 15.0, stopping: Callable[[], bool] = lambda: False
    ) -> None:
        self.settings = settings
        self.stopping = stopping
        self.pool = make_pool(settings.database_url.get_secret_value(), max_size=4 + 2 * settings.sink_writers)
        self.sink = ReportSink(self.pool, stopping=stopping)
        self.registry = Registry(
            self.pool,
            clock_skew=timedelta(seconds=settings.clock_skew_s),
            retention=timedelta(days=settings.retention_days),
        )
        self._max_backoff_s = max_backoff_s
        self._pool_opened = False
        self._ready = False
        self._lock = asyncio.Lock()

    async def ready(self) -> None:
        """Block until the database answers and the registry is loaded; cheap after the first success.

        Never raises on an outage; a cancellation, or `stopping()` turning
        true (`streams.batch.Interrupted`), gets out. The pool is
        opened only once a direct connection succeeds: psycopg's pool backs
        off its own reconnection attempts (up to minutes after a long outage),
        and one opened too early could lag far behind the database's return.
        """
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            backoff = 1.0
            while True:
                problem = await self._try_load()
                if problem is None:
                    break
                log.warning(
                    "waiting for the database (%s); the worker consumes nothing until it answers, "
                    "trying again in %.0fs",
                    problem,
                    backoff,
                )
                await pause(backoff, self.stopping)
                backoff = min(backoff * 2, self._max_backoff_s)
            self._ready = True
            log.info("database reached and outlet registry loaded; consuming")

    async def _try_load(self) -> str | None:
        """Open the pool once the database answers, load the registry; None when done, else what is wrong."""
        try:
            if not self._pool_opened:
                probe = await psycopg.AsyncConnection.connect(
                    self.settings.database_url.get_secret_value(), connect_timeout=5
                )
                await probe.close()
                await self.pool.open(wait=False)  # never raises on an outage; connects in the background
                self._pool_opened = True
            async with transaction(self.pool) as conn:
                await conn.execute(QUERIES["necessity_units"])
        except psycopg.Error as exc:
            return _first_line(translate(exc))
        except DatabaseError as exc:
            return _first_line(exc)
        await self.registry.refresh()  # keeps the old (empty) view when it fails
        ctx = await self.registry.context()
        if not ctx.units:
            return "the outlet registry could not be loaded (no catalogue yet?)"
        return None

    async def close(self) -> None:
        if self._pool_opened:
            await self.pool.close()
            self._pool_opened = False
            self._ready = False


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
