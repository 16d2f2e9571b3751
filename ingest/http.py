"""The supplier HTTP API (FastAPI). OpenAPI at /docs; JSON Schemas at /v1/schema/{name}.json.

POST /v1/inventory and POST /v1/prices take records as a JSON array, NDJSON,
CSV or XLSX (by Content-Type), or a multipart upload with a `file` field
(format by Content-Type or file name). Answers:
- 200 `{"accepted", "reports", "duplicates": [...], "rejected": [...]}` when
  anything was accepted or every record was a duplicate (a retry succeeds);
- 422 when no record was valid; 403 when every record named another
  supplier's outlet; 401 bad key; 400 unusable body or unsupported type;
  408 body not received within `body_timeout_s`; 413 body (or what an XLSX
  file unpacks to, its rows or columns) over a limit; 429 over the key's
  rate (Retry-After);
- 503 with Retry-After when Kafka or the database did not answer: nothing
  was accepted, resend the same batch (it is idempotent).

No input gets another status: the OpenAPI document (ingest/answers.py)
lists every status with its body, and a contract test runs schemathesis
against it. Answers are bounded: past `max_rejections_listed`, rejections
and duplicates are counted and the full lists are served at
GET /v1/rejections/{request_id} (ingest/rejections.py). Limits that hold
before work is done are in ingest/limits.py (body, XLSX) and
ingest/server.py (headers, slow clients, connections); what each key had
refused is counted in ingest/refusals.py.

Accepted means durably on Kafka (acks=all): the handler waits for the broker.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from psycopg_pool import AsyncConnectionPool

from baogong import gc_policy
from baogong.settings import Settings
from ingest import rejections
from ingest.answers import IngestAnswer, RejectionReport, SkuAnswer, responses
from ingest.auth import AuthError, KeyCache
from ingest.formats import BodyError, Parsed, kind_of, parse
from ingest.intake import Intake
from ingest.jsonschema import SCHEMAS, load_schema, request_body_openapi, sku_body_openapi
from ingest.limits import TooLarge, TooSlow, XlsxLimits, check_xlsx, read_body, read_upload
from ingest.publisher import Publisher, PublishFailed
from ingest.refusals import ApiMetrics, Outcome, RequestTally
from ingest.skus import SkuMapError, import_skus
from schema import topics
from schema.contract import Kind
from schema.db import DatabaseError, make_pool
from schema.feed import DeadLetterCap, FeedTally
from schema.keys import parse_prefix
from schema.ratelimit import RateLimiter
from schema.registry import Registry

log = logging.getLogger(__name__)
RETRY = {"Retry-After": "5"}
CLOSE = {"Connection": "close"}


def create_app(settings: Settings, metrics: ApiMetrics | None = None) -> FastAPI:
    """The API; `metrics` (default: a new catalogue) is served on `api_metrics_port` once the app starts."""
    pool = make_pool(settings.database_url.get_secret_value(), max_size=settings.api_db_connections)
    registry = Registry(
        pool, clock_skew=timedelta(seconds=settings.clock_skew_s), retention=timedelta(days=settings.retention_days)
    )
    keys = KeyCache(pool, ttl_s=settings.key_cache_s)
    limiter = RateLimiter(rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst)
    catalogue = metrics or ApiMetrics.create()
    outcomes = RequestTally(catalogue)
    xlsx_limits = XlsxLimits(
        settings.xlsx_max_unpacked_bytes, settings.xlsx_max_ratio, settings.xlsx_max_rows, settings.xlsx_max_columns
    )
    xlsx_slots = asyncio.Semaphore(2)  # spreadsheets parse in threads; two at once leave the loop its share
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
        if settings.api_metrics_port:
            try:
                catalogue.serve(settings.api_metrics_port, settings.api_host)
            except OSError as exc:  # ingest goes on without its metrics rather than not at all
                log.error("API metrics not served on port %d: %s", settings.api_metrics_port, exc)
        publisher = Publisher(settings.kafka_bootstrap, settings.topic_prefix)
        tally = FeedTally()
        intake = Intake(pool, registry, publisher, DeadLetterCap(settings.deadletter_per_minute), tally)
        holder["intake"] = intake
        gc_policy.keep_off_hot_path()
        collector = asyncio.create_task(gc_policy.collect_forever())
        purger = asyncio.create_task(_purge_forever(intake, outcomes, pool, settings))
        counter = asyncio.create_task(_write_feed_health_forever(tally, outcomes, pool))
        try:
            yield
        finally:
            for task in (counter, purger, collector):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            gc_policy.back_to_automatic()
            await tally.flush(pool)
            await outcomes.flush(pool)
            await publisher.close()
            await pool.close()

    app = FastAPI(
        title="Baogong supplier API",
        description="Outlets push stock and prices; Baogong turns them into days of supply per living circle. "
        "Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>`. "
        f"Bodies up to {settings.max_request_bytes} bytes, received within {settings.body_timeout_s:g} s; "
        f"answers list at most {settings.max_rejections_listed} rejections (the rest are counted and downloadable).",
        version="1",
        lifespan=lifespan,
    )

    def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
        return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)

    async def body_and_format(request: Request) -> tuple[bytes, str]:
        """The request's records as bytes and their format: a multipart `file` field or the raw body."""
        content_type = request.headers.get("content-type")
        if (content_type or "").lower().startswith("multipart/form-data"):
            return await read_upload(request, settings.max_request_bytes, settings.body_timeout_s)
        fmt = kind_of(content_type)  # an unsupported type is refused before the body is read
        return await read_body(request, settings.max_request_bytes, settings.body_timeout_s), fmt

    async def parsed_body(request: Request) -> Parsed:
        body, fmt = await body_and_format(request)
        if fmt != "xlsx":
            return parse(body, fmt)
        async with xlsx_slots:
            return await asyncio.to_thread(_parse_xlsx, body, xlsx_limits)

    def refused(exc: Exception) -> tuple[Outcome, JSONResponse]:
        """The answer to a body that was refused before any record was looked at.

        413 and 408 close the connection: the rest of the body is never read
        (a client streaming without end would otherwise be drained forever).
        """
        if isinstance(exc, TooLarge):
            return "oversize", error(413, f"{exc.args[0]}; split it into smaller batches", headers=CLOSE)
        if isinstance(exc, TooSlow):
            return "timeout", error(408, str(exc.args[0]), headers=CLOSE)
        return "bad_request", error(400, str(exc))

    async def ingest(request: Request, kind: Kind) -> JSONResponse:
        api_key = request.headers.get("x-api-key") or _bearer(request.headers.get("authorization"))
        try:
            supplier_id = await keys.supplier_for(api_key)
        except AuthError as exc:
            catalogue.unauthorized.inc()
            return error(401, str(exc))
        except DatabaseError:
            return error(503, "the database is not answering; retry shortly", headers=RETRY)
        prefix = parse_prefix(api_key or "") or ""
        try:
            parsed = await parsed_body(request)
        except (TooLarge, TooSlow, BodyError) as exc:
            outcome, answer = refused(exc)
            outcomes.count(supplier_id, prefix, outcome)
            return answer
        wait = limiter.take(supplier_id, float(len(parsed.records) or 1))
        if wait > 0:
            outcomes.count(supplier_id, prefix, "throttled")
            return error(
                429,
                f"rate limit of {settings.rate_limit_per_s:g} records/s for this key exceeded; "
                f"retry after {math.ceil(wait)} s",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        try:
            outcome = await holder["intake"].accept(supplier_id, kind, parsed)
        except PublishFailed as exc:
            return error(503, f"{exc}; nothing was accepted, retry the same batch", headers=RETRY)
        except DatabaseError as exc:
            log.warning("supplier %s: %s batch not accepted, database error: %s", supplier_id, kind, exc)
            return error(
                503, "the database is not answering; nothing was accepted, retry the same batch", headers=RETRY
            )
        catalogue.records.labels(supplier_id, "accepted").inc(outcome.accepted)
        catalogue.records.labels(supplier_id, "rejected").inc(len(outcome.rejected))
        catalogue.records.labels(supplier_id, "duplicate").inc(len(outcome.duplicates))
        body_out, full = rejections.bound(outcome.as_dict(), settings.max_rejections_listed)
        if full is not None:
            request_id = await rejections.store(pool, supplier_id, full)
            body_out["rejections_report"] = None if request_id is None else f"/v1/rejections/{request_id}"
        if outcome.accepted or outcome.duplicates:
            outcomes.count(supplier_id, prefix, "ok")
            return JSONResponse(body_out)
        outcomes.count(supplier_id, prefix, "rejected")
        if outcome.rejected and all(r.code == "forbidden" for r in outcome.rejected):
            return error(403, "every record names an outlet this supplier does not own", **body_out)
        return error(422, "no record was valid", **body_out)

    ingest_responses = responses(200, 400, 401, 403, 408, 413, 422, 429, 503, ok=IngestAnswer)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/v1/inventory",
        openapi_extra=request_body_openapi("inventory-record"),
        summary="Push stock levels (JSON array, NDJSON, CSV, XLSX or a multipart upload)",
        responses=ingest_responses,
        response_class=JSONResponse,
    )
    async def post_inventory(request: Request) -> JSONResponse:
        return await ingest(request, "inventory")

    @app.post(
        "/v1/prices",
        openapi_extra=request_body_openapi("price-record"),
        summary="Push retail prices (JSON array, NDJSON, CSV, XLSX or a multipart upload)",
        responses=ingest_responses,
        response_class=JSONResponse,
    )
    async def post_prices(request: Request) -> JSONResponse:
        return await ingest(request, "price")

    @app.put(
        "/v1/skus",
        summary="Upload your SKU map (CSV, XLSX or a multipart upload): sku, necessity, "
        "pack_quantity, pack_unit[, description]",
        openapi_extra=sku_body_openapi(),
        responses=responses(200, 400, 401, 408, 413, 422, 503, ok=SkuAnswer),
        response_class=JSONResponse,
    )
    async def put_skus(request: Request) -> JSONResponse:
        api_key = request.headers.get("x-api-key") or _bearer(request.headers.get("authorization"))
        try:
            supplier_id = await keys.supplier_for(api_key)
        except AuthError as exc:
            catalogue.unauthorized.inc()
            return error(401, str(exc))
        except DatabaseError:
            return error(503, "the database is not answering; retry shortly", headers=RETRY)
        prefix = parse_prefix(api_key or "") or ""
        try:
            body, fmt = await body_and_format(request)
            if fmt == "xlsx":
                async with xlsx_slots:
                    await asyncio.to_thread(check_xlsx, body, xlsx_limits)
            result = await asyncio.to_thread(
                import_skus, settings.database_url.get_secret_value(), supplier_id, body, fmt
            )
        except (TooLarge, TooSlow, BodyError) as exc:
            outcome, answer = refused(exc)
            outcomes.count(supplier_id, prefix, outcome)
            return answer
        except SkuMapError as exc:
            outcomes.count(supplier_id, prefix, "bad_request")
            return error(400, str(exc))
        except DatabaseError:
            return error(503, "the database is not answering; nothing was stored, send the map again", headers=RETRY)
        with suppress(DatabaseError):
            await registry.refresh()
        sku_answer = result.as_dict()
        if len(sku_answer["rejected"]) > settings.max_rejections_listed:
            sku_answer["rejected_count"] = len(sku_answer["rejected"])
            sku_answer["rejected"] = sku_answer["rejected"][: settings.max_rejections_listed]
        ok = bool(result.upserted or not result.rejected)
        outcomes.count(supplier_id, prefix, "ok" if ok else "rejected")
        return JSONResponse(sku_answer, status_code=200 if ok else 422)

    @app.get(
        "/v1/rejections/{request_id}",
        summary="The full rejection and duplicate lists of an answer that listed only the first ones",
        responses=responses(200, 401, 404, 503, ok=RejectionReport),
        response_class=JSONResponse,
    )
    async def get_rejections(request: Request, request_id: str) -> Response:
        api_key = request.headers.get("x-api-key") or _bearer(request.headers.get("authorization"))
        try:
            supplier_id = await keys.supplier_for(api_key)
            report = await rejections.fetch(pool, supplier_id, request_id, settings.rejection_report_ttl_s)
        except AuthError as exc:
            catalogue.unauthorized.inc()
            return error(401, str(exc))
        except DatabaseError:
            return error(503, "the database is not answering; retry shortly", headers=RETRY)
        if report is None:
            return error(
                404,
                f"no rejection report {request_id!r} for this key (reports are kept "
                f"{settings.rejection_report_ttl_s:g} s)",
            )
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(report, media_type="application/json", headers={"Content-Encoding": "gzip"})
        return Response(gzip.decompress(report), media_type="application/json")

    @app.get(
        "/v1/schema/{name}.json",
        summary="JSON Schema of a record or report: " + ", ".join(SCHEMAS),
        responses={
            200: {"description": "A JSON Schema", "content": {"application/json": {"schema": {"type": "object"}}}},
            **responses(404),
        },
        response_class=JSONResponse,
    )
    async def get_schema(name: str) -> JSONResponse:
        if name not in SCHEMAS:
            return error(404, f"no schema {name!r}; known: {', '.join(SCHEMAS)}")
        return JSONResponse(load_schema(name))

    return app


def _parse_xlsx(body: bytes, limits: XlsxLimits) -> Parsed:
    """Check, then parse, an XLSX body (in a worker thread): raises TooLarge or BodyError."""
    check_xlsx(body, limits)
    return parse(body, "xlsx")


async def _write_feed_health_forever(
    tally: FeedTally, outcomes: RequestTally, pool: AsyncConnectionPool[Any], every_s: float = 1.0
) -> None:
    while True:
        await asyncio.sleep(every_s)
        await tally.flush(pool)
        await outcomes.flush(pool)


async def _purge_forever(
    intake: Intake, outcomes: RequestTally, pool: AsyncConnectionPool[Any], settings: Settings
) -> None:
    while True:
        await intake.purge(settings.dedup_window_h)
        await outcomes.purge(pool)
        await rejections.purge(pool, settings.rejection_report_ttl_s)
        await asyncio.sleep(min(600.0, settings.rejection_report_ttl_s))


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None
