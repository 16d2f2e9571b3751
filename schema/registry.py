"""A cached view of what validation needs from the database: outlet owners and types, units, SKU maps.

`Registry.context` returns a validation `Context`. The cache refreshes every
`ttl_s` seconds, and at most every `miss_refresh_s` seconds when a record names
an outlet it does not know (a newly registered outlet is accepted within
seconds). A refresh that fails keeps the old view and raises nothing: ingest
keeps running on the last known registry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool

from schema.contract import Context, Sku
from schema.db import QUERIES, DatabaseError, transaction

log = logging.getLogger(__name__)


class Registry:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        clock_skew: timedelta,
        retention: timedelta,
        ttl_s: float = 60.0,
        miss_refresh_s: float = 5.0,
    ) -> None:
        self._pool = pool
        self._clock_skew = clock_skew
        self._retention = retention
        self._ttl_s = ttl_s
        self._miss_refresh_s = miss_refresh_s
        self._owners: dict[str, str] = {}
        self._types: dict[str, str] = {}
        self._units: dict[str, str] = {}
        self._skus: dict[tuple[str, str], Sku] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            try:
                async with transaction(self._pool) as conn:
                    outlets = await (await conn.execute(QUERIES["outlet_owners"])).fetchall()
                    owners = {r["id"]: r["supplier_id"] for r in outlets}
                    types = {r["id"]: r["business_type"] for r in outlets}
                    units = {
                        r["code"]: r["unit"] for r in await (await conn.execute(QUERIES["necessity_units"])).fetchall()
                    }
                    skus = {
                        (r["supplier_id"], r["sku"]): Sku(r["necessity"], r["pack_quantity"], r["pack_unit"])
                        for r in await (await conn.execute(QUERIES["supplier_skus"])).fetchall()
                    }
            except DatabaseError as exc:
                log.warning("registry refresh failed, keeping the last view: %s", exc)
                return
            self._owners, self._types, self._units, self._skus = owners, types, units, skus
            self._loaded_at = time.monotonic()

    async def refreshed_after_miss(self) -> bool:
        """A record named an outlet or SKU this view lacks: refresh unless the view is under `miss_refresh_s` old."""
        if time.monotonic() - self._loaded_at <= self._miss_refresh_s:
            return False
        await self.refresh()
        return True

    async def context(self) -> Context:
        """A validation context; refreshes first when older than `ttl_s`.

        A caller whose records were rejected as naming an unknown outlet or SKU
        (`Rejection.registry_miss`) calls `refreshed_after_miss` and, when it
        refreshed, validates them again with a new context.
        """
        if time.monotonic() - self._loaded_at > self._ttl_s:
            await self.refresh()
        return Context(
            units=self._units,
            outlet_owner=self._owners,
            skus=self._skus,
            now=datetime.now(UTC),
            clock_skew=self._clock_skew,
            retention=self._retention,
            outlet_type=self._types,
        )
