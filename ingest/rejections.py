"""Bounded answers: past `max_rejections_listed`, an answer lists the first rejections and counts the rest.

A 1 MB NDJSON body of bad lines used to be answered with one object per
line (15 MB). Now an answer carries at most `limit` rejections and `limit`
duplicates; when it had to cut, it adds `rejected_count`,
`duplicates_count`, `rejected_by_field` (how many rejections name each
field) and `rejections_report`, the path of the whole list:
`GET /v1/rejections/{request_id}`, served to the same supplier's keys for
`rejection_report_ttl_s` (stored gzip-compressed in `rejection_reports`,
so any API process can serve it). Every rejection that the dead-letter cap
lets through is also on the dead-letter topic, as before.
"""

from __future__ import annotations

import gzip
import uuid
from collections import Counter
from typing import Any

import orjson
from psycopg_pool import AsyncConnectionPool

from schema.db import SCHEMA_DIR, DatabaseError, load_queries, transaction

QUERIES = load_queries(SCHEMA_DIR / "refusals.sql")


def bound(answer: dict[str, Any], limit: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The answer with its lists cut to `limit`, and the whole lists to store (None when nothing was cut)."""
    rejected, duplicates = answer.get("rejected", []), answer.get("duplicates", [])
    if len(rejected) <= limit and len(duplicates) <= limit:
        return answer, None
    by_field = Counter(str(r.get("field")) for r in rejected)
    cut = {
        **answer,
        "rejected": rejected[:limit],
        "duplicates": duplicates[:limit],
        "rejected_count": len(rejected),
        "duplicates_count": len(duplicates),
        "rejected_by_field": dict(by_field.most_common()),
    }
    return cut, {"rejected": rejected, "duplicates": duplicates}


async def store(pool: AsyncConnectionPool[Any], supplier_id: str, full: dict[str, Any]) -> str | None:
    """Keep the whole lists for download; the request id, or None if the database did not take them."""
    request_id = uuid.uuid4().hex
    body = gzip.compress(orjson.dumps({"request_id": request_id, **full}), compresslevel=3)
    try:
        async with transaction(pool) as conn:
            await conn.execute(
                QUERIES["insert_rejection_report"],
                {
                    "request_id": request_id,
                    "supplier_id": supplier_id,
                    "rejected": len(full["rejected"]),
                    "body": body,
                },
            )
    except DatabaseError:
        return None  # the answer still carries the counts; the report is a convenience
    return request_id


async def fetch(pool: AsyncConnectionPool[Any], supplier_id: str, request_id: str, ttl_s: float) -> bytes | None:
    """The gzip-compressed JSON report of `supplier_id`'s request, or None (unknown, another's, or expired).

    Raises schema.db.DatabaseError when the database does not answer.
    """
    async with transaction(pool) as conn:
        row = await (
            await conn.execute(
                QUERIES["rejection_report"], {"request_id": request_id, "supplier_id": supplier_id, "ttl_s": ttl_s}
            )
        ).fetchone()
    return None if row is None else bytes(row["body"])


async def purge(pool: AsyncConnectionPool[Any], ttl_s: float) -> None:
    """Delete reports past their time; carries on if the database is away."""
    try:
        async with transaction(pool) as conn:
            await conn.execute(QUERIES["purge_rejection_reports"], {"ttl_s": ttl_s})
    except DatabaseError:
        pass
