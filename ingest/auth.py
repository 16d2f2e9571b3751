"""Supplier authentication: an API key in, a supplier id out (or a clear refusal).

Keys arrive as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Lookups are
cached for `ttl_s` seconds (so a revoked key stops working within that time).
Only the key's public prefix ever reaches a log line.
"""

from __future__ import annotations

import time

from psycopg_pool import AsyncConnectionPool

from schema.db import QUERIES, transaction
from schema.keys import parse_prefix, verify


class AuthError(Exception):
    """No key, a malformed key, or an unknown/revoked one: the client must send a valid key."""


class KeyCache:
    def __init__(self, pool: AsyncConnectionPool, ttl_s: float = 30.0) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._rows: dict[str, tuple[float, str | None, str | None]] = {}

    async def supplier_for(self, key: str | None) -> str:
        """The supplier owning `key`; raises AuthError saying what to fix."""
        if not key:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        prefix = parse_prefix(key)
        if prefix is None:
            raise AuthError("malformed API key: keys look like bg_<8 hex>_<secret>")
        cached = self._rows.get(prefix)
        if cached is None or time.monotonic() - cached[0] > self._ttl_s:
            async with transaction(self._pool) as conn:
                row = await (await conn.execute(QUERIES["api_key_lookup"], {"prefix": prefix})).fetchone()
            if row is None or row["revoked_at"] is not None:
                cached = (time.monotonic(), None, None)
            else:
                cached = (time.monotonic(), str(row["supplier_id"]), str(row["key_hash"]))
            self._rows[prefix] = cached
        _, supplier_id, key_hash = cached
        if supplier_id is None or key_hash is None or not verify(key, key_hash):
            raise AuthError(f"API key {prefix}… is unknown or revoked; ask the operator for a new key")
        return supplier_id
