"""What a stream worker holds between messages: its pool, sink and registry, opened lazily."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from baogong.settings import Settings
from schema.db import make_pool
from schema.registry import Registry
from streams.sink import ReportSink


class WorkerState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = make_pool(settings.database_url.get_secret_value(), max_size=4)
        self.sink = ReportSink(self.pool)
        self.registry = Registry(
            self.pool,
            clock_skew=timedelta(seconds=settings.clock_skew_s),
            retention=timedelta(days=settings.retention_days),
        )
        self._opened = False
        self._lock = asyncio.Lock()

    async def ready(self) -> None:
        """Open the pool and load the registry once; cheap after the first call."""
        if self._opened:
            return
        async with self._lock:
            if not self._opened:
                await self.pool.open(wait=True, timeout=60)
                await self.registry.refresh()
                self._opened = True

    async def close(self) -> None:
        if self._opened:
            await self.pool.close()
            self._opened = False
