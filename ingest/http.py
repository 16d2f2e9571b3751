"""The supplier HTTP API (FastAPI).

POST /v1/inventory takes a JSON array of inventory records (see README for
the contract). The answer: 200 with `accepted` and a `rejected` list (index,
field, reason) when at least one record was accepted; 422 when every record
was invalid; 403 when every record named another supplier's outlet; 401 on a
bad key; 400 when the body is not a JSON array; 503 with Retry-After when
Kafka did not acknowledge (then nothing was accepted: send the batch again —
it is idempotent).

Accepted means durably on Kafka (acks=all): the handler waits for the broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from baogong.settings import Settings
from ingest.auth import AuthError, KeyCache
from ingest.contract import group_reports, validate_records
from ingest.publisher import Publisher, PublishFailed
from ingest.registry import Registry
from schema.db import make_pool
from streams import topics


def create_app(settings: Settings) -> FastAPI:
    pool = make_pool(settings.database_url.get_secret_value(), max_size=4)
    registry = Registry(
        pool, clock_skew=timedelta(seconds=settings.clock_skew_s), retention=timedelta(days=settings.retention_days)
    )
    keys = KeyCache(pool)
    holder: dict[str, Publisher] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True, timeout=60)
        await registry.refresh()
        await asyncio.to_thread(
            topics.ensure_topics,
            settings.kafka_bootstrap,
            [settings.topic(t.name) for t in topics.ALL],
            settings.partitions,
        )
        holder["publisher"] = await asyncio.to_thread(Publisher, settings.kafka_bootstrap, settings.topic_prefix)
        try:
            yield
        finally:
            await asyncio.to_thread(holder["publisher"].close)
            await pool.close()

    app = FastAPI(
        title="Baogong supplier API",
        description="Outlets push stock and prices; Baogong turns them into days of supply per living circle.",
        version="1",
        lifespan=lifespan,
    )

    def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
        return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/inventory")
    async def post_inventory(request: Request) -> JSONResponse:
        api_key = request.headers.get("x-api-key") or _bearer(request.headers.get("authorization"))
        try:
            supplier_id = await keys.supplier_for(api_key)
        except AuthError as exc:
            return error(401, str(exc))
        body = await request.body()
        if len(body) > settings.max_request_bytes:
            return error(413, f"body of {len(body)} bytes exceeds {settings.max_request_bytes}; split the batch")
        if not body.strip():
            return error(400, "empty body: send a JSON array of inventory records")
        try:
            rows = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return error(400, f"body is not valid JSON ({exc}); send a JSON array of inventory records")
        if not isinstance(rows, list) or not rows:
            return error(400, "body must be a non-empty JSON array of inventory records")

        outlet_ids = [r["outlet_id"] for r in rows if isinstance(r, dict) and isinstance(r.get("outlet_id"), str)]
        ctx = await registry.context(outlet_ids)
        good, bad = validate_records(rows, ctx, supplier_id)
        publisher = holder["publisher"]
        if bad:
            await asyncio.to_thread(publisher.dead_letter, supplier_id, "http", bad, [rows[r.index] for r in bad])
        rejected = [r.as_dict() for r in bad]
        if not good:
            if all(r.code == "forbidden" for r in bad):
                return error(403, "every record names an outlet this supplier does not own", rejected=rejected)
            return error(422, "no record was valid", accepted=0, rejected=rejected)
        reports = group_reports(good, supplier_id, datetime.now(UTC))
        try:
            await asyncio.to_thread(publisher.publish, reports)
        except PublishFailed as exc:
            return error(503, f"{exc}; nothing was accepted, retry the same batch", headers={"Retry-After": "5"})
        return JSONResponse({"accepted": len(good), "reports": len(reports), "rejected": rejected})

    return app


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None
