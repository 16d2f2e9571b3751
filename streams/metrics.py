"""Every metric the stream worker exports, in one typed catalogue: dashboards query these names.

Served in the Prometheus text format at `http://127.0.0.1:<BAOGONG_WORKER_PORT>/metrics`
(default 6066) on the worker's own Faust web server (`serve`); each worker
process serves its own. Code records through `METRICS`, e.g.
`METRICS.lines_written.labels("inventory").inc(n)`.

- `baogong_reports_processed_total{kind}` (counter): supply messages (outlet
  reports) taken from Kafka and handled: written, duplicate or dead-lettered;
- `baogong_report_lines_written_total{kind}` (counter): report lines newly
  stored (duplicates of stored lines are not counted);
- `baogong_batch_write_seconds{kind}` (histogram): time to commit one batch,
  retries of a database outage included;
- `baogong_dead_letters_total{kind}` (counter): rejected messages and lines
  sent to the dead-letter topic;
- `baogong_stream_lag_reports{topic}` (gauge): supply messages on the broker
  not yet written, as of the last level pass;
- `baogong_stream_lag_seconds{topic}` (gauge): about how old the oldest
  unwritten one is (`streams.lag`);
- `baogong_levels_computed_timestamp_seconds` (gauge): Unix time of the last
  circle-level pass;
- `baogong_level_pass_seconds` (histogram): time one level pass takes (lag,
  read, compute, write);
- `baogong_live_level_passes_total` (counter): live passes, each recomputing the
  circles a committed batch of reports touched.

Records per second are `rate(baogong_report_lines_written_total[1m])`. The
lag and level gauges are set by the worker that computes levels (the
leader); on another worker they hold what they had when it last led.
`kind` is `inventory` or `price`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from baogong.prometheus import process_registry

if TYPE_CHECKING:
    import faust

#: Seconds: a batch write is milliseconds when healthy, minutes when the database is down.
WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True, slots=True)
class WorkerMetrics:
    registry: CollectorRegistry
    reports_processed: Counter
    lines_written: Counter
    batch_write_seconds: Histogram
    dead_letters: Counter
    lag_reports: Gauge
    lag_seconds: Gauge
    levels_computed_at: Gauge
    level_pass_seconds: Histogram
    live_passes: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> WorkerMetrics:
        """The catalogue on `registry` (a new one, with process metrics, by default)."""
        r = registry if registry is not None else process_registry()
        return cls(
            registry=r,
            reports_processed=Counter(
                "baogong_reports_processed", "Supply messages taken from Kafka and handled", ["kind"], registry=r
            ),
            lines_written=Counter(
                "baogong_report_lines_written", "Report lines newly stored in the database", ["kind"], registry=r
            ),
            batch_write_seconds=Histogram(
                "baogong_batch_write_seconds",
                "Seconds to commit one batch to the database, outage retries included",
                ["kind"],
                buckets=WRITE_BUCKETS,
                registry=r,
            ),
            dead_letters=Counter(
                "baogong_dead_letters",
                "Rejected messages and lines sent to the dead-letter topic",
                ["kind"],
                registry=r,
            ),
            lag_reports=Gauge(
                "baogong_stream_lag_reports", "Supply messages on the broker not yet written", ["topic"], registry=r
            ),
            lag_seconds=Gauge(
                "baogong_stream_lag_seconds",
                "About how old the oldest unwritten supply message is",
                ["topic"],
                registry=r,
            ),
            levels_computed_at=Gauge(
                "baogong_levels_computed_timestamp_seconds", "Unix time of the last circle-level pass", registry=r
            ),
            level_pass_seconds=Histogram(
                "baogong_level_pass_seconds", "Seconds one circle-level pass takes", buckets=WRITE_BUCKETS, registry=r
            ),
            live_passes=Counter(
                "baogong_live_level_passes", "Live passes recomputing the circles a batch touched", registry=r
            ),
        )

    def exposition(self) -> bytes:
        """Everything in the Prometheus text format."""
        return generate_latest(self.registry)


METRICS = WorkerMetrics.create()


def serve(app: faust.App, metrics: WorkerMetrics = METRICS, path: str = "/metrics") -> None:
    """Serve `metrics` at `path` on the app's Faust web server (call before the worker starts)."""
    from faust import web

    @app.page(path)
    async def _metrics(self: web.View, request: web.Request) -> Any:
        return self.bytes(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})
