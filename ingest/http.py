"""The supplier HTTP API (FastAPI). OpenAPI at /docs; JSON Schemas at /v1/schema/{name}.json.

POST /v1/inventory and POST /v1/prices take records as a JSON array, NDJSON,
CSV or XLSX (by Content-Type), or a multipart upload with a `file` field
(format by Content-Type or file name). Answers:
- 200 `{"accepted", "reports", "duplicates": [...], "rejected": [...]}` when
  anything was accepted or every record was a duplicate (a retry succeeds);
- 422 when no record was valid; 403 when every record named another
  supplier's outlet; 401 bad key; 400 unusable body or unsupported type;
  413 body over the limit; 429 over the key's rate (Retry-After);
- 503 with Retry-After when Kafka or the database did not answer: nothing
  was accepted, resend the same batch (it is idempotent).

Accepted means durably on Kafka (acks=all): the handler waits for the broker.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool

from baogong.settings import Settings
from ingest.auth import AuthError, KeyCache
from ingest.formats import BodyError, kind_of, parse
from ingest.intake import Intake
from ingest.jsonschema import SCHEMAS, load_schema, request_body_openapi
from ingest.publisher import Publisher, PublishFailed
from ingest.skus import SkuMapError, import_skus
from schema import topics
from schema.contract import Kind
from schema.db import DatabaseError, make_pool
from schema.feed import DeadLetterCap, FeedTally
from schema.ratelimit import RateLimiter
from schema.registry import Registry

log = logging.getLogger(__name__)


class TooLarge(Exception):
    pass


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the ingest path (`_collect_forever` runs it instead).

    A 500-record request allocates tens of thousands of short-lived objects,
    which set off collections every few hundred records; full ones walked
    the long-lived registry and modules: ~13% of the API's CPU under load
    (py-spy). Reference counting frees everything ingest allocates; only the
    odd cycle (an exception's traceback) needs the collector, so what exists
    at startup is frozen out of collections and the rest is collected every
    2 s, off the request path, with memory bounded by 2 s of cycles.
    """
    gc.collect()
    gc.freeze()
    gc.disable()


async def _collect_forever(every_s: float = 2.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        gc.collect()


def create_app(settings: Settings) -> FastAPI:
    pool = make_pool(settings.database_url.get_secret_value(), max_size=settings.api_db_connections)
    registry = Registry(
        pool, clock_skew=timedelta(seconds=settings.clock_skew_s), retention=timedelta(days=settings.retention_days)
    )
    keys = KeyCache(pool)
    limiter = RateLimiter(rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst)
    holder: dict[str, Any] = {}

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
        publisher = Publisher(settings.kafka_bootstrap, settings.topic_prefix)
        tally = FeedTally()
        intake = Intake(pool, registry, publisher, DeadLetterCap(settings.deadletter_per_minute), tally)
        holder["intake"] = intake
        _tune_gc()
        collector = asyncio.create_task(_collect_forever())
        purger = asyncio.create_task(_purge_forever(intake, settings.dedup_window_h))
        counter = asyncio.create_task(_write_feed_health_forever(tally, pool))
        try:
            yield
        finally:
            for task in (counter, purger, collector):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            gc.enable()
            await tally.flush(pool)
            await publisher.close()
            await pool.close()

    app = FastAPI(
        title="Baogong supplier API",
        description="Outlets push stock and prices; Baogong turns them into days of supply per living circle. "
        "Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
        version="1",
        lifespan=lifespan,
    )

    def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
        return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_request_bytes:
            raise TooLarge(int(declared))
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_request_bytes:
                raise TooLarge(size)
            chunks.append(chunk)
        return b"".join(chunks)

    async def body_and_format(request: Request) -> tuple[bytes, str]:
        """The request's records as bytes and their format: a multipart `file` field or the raw body."""
        content_type = request.headers.get("content-type")
        if (content_type or "").lower().startswith("multipart/form-data"):
            return await _upload(request, settings.max_request_bytes)
        return await read_body(request), kind_of(content_type)

    async def ingest(request: Request, kind: Kind) -> JSONResponse:
        api_key = request.headers.get("x-api-key") or _bearer(request.headers.get("authorization"))
        try:
            supplier_id = await keys.supplier_for(api_key)
        except AuthError as exc:
            return error(401, str(exc))
        except DatabaseError:
            return error(503, "the database is not answering; retry shortly", headers={"Retry-After": "5"})
        try:
            body, fmt = await body_and_format(request)
            parsed = await asyncio.to_thread(parse, body, fmt) if fmt == "xlsx" else parse(body, fmt)
        except TooLarge as exc:
            return error(
                413,
                f"body of {exc.args[0]} bytes exceeds the {settings.max_request_bytes}-byte limit; "
                "split it into smaller batches",
            )
        except BodyError as exc:
            return error(400, str(exc))
        wait = limiter.take(supplier_id, float(len(parsed.records) or 1))
        if wait > 0:
            return error(
                429,
                f"rate limit of {settings.rate_limit_per_s:g} records/s for this key exceeded; "
                f"retry after {math.ceil(wait)} s",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        try:
            outcome = await holder["intake"].accept(supplier_id, kind, parsed)
        except PublishFailed as exc:
            return error(503, f"{exc}; nothing was accepted, retry the same batch", headers={"Retry-After": "5"})
        except DatabaseError as exc:
            log.warning("supplier %s: %s batch not accepted, database error: %s", supplier_id, kind, exc)
            return error(
                503,
                "the database is not answering; nothing was accepted, retry the same batch",
                headers={"Retry-After": "5"},
            )
        body_out = outcome.as_dict()
        if outcome.accepted or outcome.duplicates:
            return JSONResponse(body_out)
        if outcome.rejected and all(r.code == "forbidden" for r in outcome.rejected):
            return error(403, "every record names an outlet this supplier does not own", **body_out)
        return error(422, "no record was valid", **body_out)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/v1/inventory",
        openapi_extra=request_body_openapi("inventory-record"),
        summary="Push stock levels (JSON array, NDJSON, CSV, XLSX or a multipart upload)",
    )
    async def post_inventory(request: Request) -> JSONResponse:
        return await ingest(request, "inventory")

    @app.post(
        "/v1/prices",
        openapi_extra=request_body_openapi("price-record"),
        summary="Push retail prices (JSON array, NDJSON, CSV, XLSX or a multipart upload)",
    )
    async def post_prices(request: Request) -> JSONResponse:
        return await ingest(request, "price")

    @app.put(
        "/v1/skus",
        summary="Upload your SKU map (CSV, XLSX or a multipart upload): sku, necessity, "
        "pack_quantity, pack_unit[, description]",
    )
    async def put_skus(request: Request) -> JSONResponse:
        api_key = request.headers.get("x-api-key") or _bearer(request.headers.get("authorization"))
        try:
            supplier_id = await keys.supplier_for(api_key)
            body, fmt = await body_and_format(request)
            result = await asyncio.to_thread(
                import_skus, settings.database_url.get_secret_value(), supplier_id, body, fmt
            )
        except AuthError as exc:
            return error(401, str(exc))
        except TooLarge as exc:
            return error(413, f"body of {exc.args[0]} bytes exceeds the {settings.max_request_bytes}-byte limit")
        except (BodyError, SkuMapError) as exc:
            return error(400, str(exc))
        await registry.refresh()
        return JSONResponse(result.as_dict(), status_code=200 if result.upserted or not result.rejected else 422)

    @app.get("/v1/schema/{name}.json", summary="JSON Schema of a record or report: " + ", ".join(SCHEMAS))
    async def get_schema(name: str) -> JSONResponse:
        if name not in SCHEMAS:
            return error(404, f"no schema {name!r}; known: {', '.join(SCHEMAS)}")
        return JSONResponse(load_schema(name))

    return app


async def _upload(request: Request, limit: int) -> tuple[bytes, str]:
    """The `file` field of a multipart upload, and its format."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(int(declared))
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise BodyError("multipart upload without a `file` field; send the spreadsheet as `file`")
    body = await upload.read()
    if len(body) > limit:
        raise TooLarge(len(body))
    return body, kind_of(
        upload.content_type if upload.content_type != "application/octet-stream" else None, upload.filename
    )


async def _write_feed_health_forever(tally: FeedTally, pool: AsyncConnectionPool[Any], every_s: float = 1.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        await tally.flush(pool)


async def _purge_forever(intake: Intake, hours: int) -> None:
    while True:
        await intake.purge(hours)
        await asyncio.sleep(600)


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None
