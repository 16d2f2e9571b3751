"""Supplier authentication: an API key in, a supplier id out (or a clear refusal).

Keys arrive as `Authorization: Bearer <key>` or `X-API-Key: <key>`. A key's
row is cached for `ttl_s` (`key_cache_s`, default 1 s), so a revoked key
stops working within a second in every API process, with one primary-key
lookup per key and process a second at most. A key in its rotation grace
period is cached no longer than its `revoked_at`: the grace ends on time,
not up to a TTL late. At most `max_keys` rows are kept (least recently used
dropped), so random prefixes cannot grow the cache. Only the key's public
prefix ever reaches a log line.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from psycopg_pool import AsyncConnectionPool

from schema.db import QUERIES, transaction
from schema.keys import parse_prefix, verify


class AuthError(Exception):
    """No key, a malformed key, or an unknown/revoked one: the client must send a valid key."""


class KeyCache:
    def __init__(self, pool: AsyncConnectionPool, ttl_s: float = 1.0, max_keys: int = 10_000) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._max_keys = max_keys
        # prefix -> (valid until, monotonic; supplier id; key hash), None ids for unknown or revoked keys
        self._rows: OrderedDict[str, tuple[float, str | None, str | None]] = OrderedDict()

    async def supplier_for(self, key: str | None) -> str:
        """The supplier owning `key`; raises AuthError saying what to fix, or DatabaseError."""
        if not key:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        prefix = parse_prefix(key)
        if prefix is None:
            raise AuthError("malformed API key: keys look like bg_<8 hex>_<secret>")
        now = time.monotonic()
        cached = self._rows.get(prefix)
        if cached is None or now >= cached[0]:
            async with transaction(self._pool) as conn:
                row = await (await conn.execute(QUERIES["api_key_lookup"], {"prefix": prefix})).fetchone()
            now = time.monotonic()
            if row is None:
                cached = (now + self._ttl_s, None, None)
            else:
                left = row["revoked_in_s"]  # seconds of grace left, None for a key not being revoked
                until = now + (self._ttl_s if left is None else min(self._ttl_s, float(left)))
                cached = (until, str(row["supplier_id"]), str(row["key_hash"]))
            self._rows[prefix] = cached
            if len(self._rows) > self._max_keys:
                self._rows.popitem(last=False)
        self._rows.move_to_end(prefix)
        _, supplier_id, key_hash = cached
        if supplier_id is None or key_hash is None or not verify(key, key_hash):
            raise AuthError(f"API key {prefix}… is unknown or revoked; ask the operator for a new key")
        return supplier_id
