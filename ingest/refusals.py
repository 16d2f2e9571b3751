"""What the supplier API refused, per key: Prometheus counters and the `feed_requests` table.

Every authenticated request ends in one outcome: `ok` (something accepted,
or all duplicates), `rejected` (422/403: no record valid), `bad_request`
(400: an unusable body), `oversize` (413), `throttled` (429) or `timeout`
(408: the body did not arrive in time). `RequestTally.count` bumps the
process's counter `baogong_api_requests_total{supplier, key, outcome}` (key
is the key's public prefix: cardinality is bounded by the keys operators
issued) and keeps the count in memory; `flush` adds it to `feed_requests`
once a second, so a request costs no statement, as `schema.feed.FeedTally`
does for records. The SupplierRequestsRefused rule (alerts/rules/refusals.py)
reads that table. Requests without a valid key cannot be attributed to a
supplier and only count in `baogong_api_unauthorized_requests_total` (a
label from an unauthenticated prefix would let anyone grow the series).

Metrics are served in the Prometheus text format on their own port
(`api_metrics_port`, default 6067, on `api_host`), not on the supplier-facing
one: suppliers have no business seeing each other's ids and volumes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, start_http_server
from psycopg_pool import AsyncConnectionPool

from baogong.prometheus import process_registry
from schema.db import SCHEMA_DIR, DatabaseError, load_queries, transaction

log = logging.getLogger(__name__)
QUERIES = load_queries(SCHEMA_DIR / "refusals.sql")
Outcome = Literal["ok", "rejected", "bad_request", "oversize", "throttled", "timeout"]


@dataclass(frozen=True, slots=True)
class ApiMetrics:
    registry: CollectorRegistry
    requests: Counter
    unauthorized: Counter
    records: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> ApiMetrics:
        """The catalogue on `registry` (a new one, with process metrics, by default)."""
        r = registry if registry is not None else process_registry()
        return cls(
            registry=r,
            requests=Counter(
                "baogong_api_requests",
                "Authenticated ingest requests answered, by supplier, key prefix and outcome "
                "(ok, rejected, bad_request, oversize, throttled, timeout)",
                ["supplier", "key", "outcome"],
                registry=r,
            ),
            unauthorized=Counter(
                "baogong_api_unauthorized_requests",
                "Requests refused with 401 (no, malformed or unknown key)",
                registry=r,
            ),
            records=Counter(
                "baogong_api_records",
                "Records answered, by supplier and result (accepted, rejected, duplicate)",
                ["supplier", "result"],
                registry=r,
            ),
        )

    def serve(self, port: int, host: str) -> None:
        """Serve the catalogue at http://host:port/metrics from a daemon thread (returns at once)."""
        start_http_server(port, host, registry=self.registry)


class RequestTally:
    """Outcomes per (supplier, key prefix, minute, outcome), counted now and written by `flush`."""

    def __init__(self, metrics: ApiMetrics) -> None:
        self.metrics = metrics
        self._counts: dict[tuple[str, str, datetime, str], int] = {}

    def count(self, supplier_id: str, key_prefix: str, outcome: Outcome) -> None:
        self.metrics.requests.labels(supplier_id, key_prefix, outcome).inc()
        slot = (supplier_id, key_prefix, datetime.now(UTC).replace(second=0, microsecond=0), outcome)
        self._counts[slot] = self._counts.get(slot, 0) + 1

    async def flush(self, pool: AsyncConnectionPool[Any]) -> None:
        """Add what was counted since the last flush to `feed_requests`; kept for the next one on failure."""
        if not self._counts:
            return
        counts, self._counts = self._counts, {}
        written = False
        try:
            async with transaction(pool) as conn, conn.cursor() as cur:
                await cur.executemany(
                    QUERIES["add_feed_requests"],
                    [
                        {"supplier_id": s, "key_prefix": k, "minute": m, "outcome": o, "requests": n}
                        for (s, k, m, o), n in counts.items()
                    ],
                )
            written = True
        except DatabaseError as exc:
            log.warning("request outcomes not written yet, kept for the next attempt: %s", exc)
        finally:
            if not written:
                for slot, n in counts.items():
                    self._counts[slot] = self._counts.get(slot, 0) + n

    async def purge(self, pool: AsyncConnectionPool[Any]) -> None:
        """Delete outcome rows older than a day; logs and carries on if the database is away."""
        try:
            async with transaction(pool) as conn:
                await conn.execute(QUERIES["purge_feed_requests"])
        except DatabaseError as exc:
            log.warning("feed_requests purge skipped: %s", exc)
