"""`baogong status`: is the pipeline current? For a person at a terminal.

Reads the level heartbeat (`pipeline_status`), what the workers have written
of each supply partition (`stream_offsets`) and the circle levels by status
from the database, and each partition's end offset from the broker, and
judges currency with the same test the alert rules use
(`alerts.rules.pipeline.Currency`). Never blocks for long: the broker gets a
few seconds, and one that does not answer is reported, not waited for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.rules.pipeline import STAGE, WHAT_TO_DO, Currency, duration
from baogong.settings import Settings
from schema import topics
from schema.db import QUERIES, connect

SUPPLY = (topics.INVENTORY, topics.PRICES)
BROKER_TIMEOUT_MS = 5000


@dataclass(frozen=True, slots=True)
class PartitionView:
    topic: str
    partition: int
    written: int | None  # next offset the workers will write; None = nothing recorded
    end: int | None  # the broker's end offset now; None = the broker did not answer
    start: int | None
    message_at: datetime | None

    @property
    def behind(self) -> int | None:
        if self.end is None:
            return None
        return max(0, self.end - max(self.written or 0, self.start or 0))


@dataclass(frozen=True, slots=True)
class PipelineReport:
    now: datetime
    heartbeat: dict[str, Any] | None
    partitions: list[PartitionView]
    broker_error: str | None
    levels_by_status: list[dict[str, Any]]
    problem: str | None  # why levels are not current; None when they are

    @property
    def current(self) -> bool:
        return self.problem is None


def read(settings: Settings, now: datetime) -> PipelineReport:
    """Everything `render` prints, as of `now`. Raises schema.db.DatabaseError when the database is down."""
    supply = [settings.topic(spec.name) for spec in SUPPLY]
    with connect(settings.database_url.get_secret_value()) as conn:
        heartbeat = conn.execute(QUERIES["pipeline_status_for_rules"], {"stage": STAGE}).fetchone()
        written = {
            (r["topic"], int(r["partition"])): r
            for r in conn.execute(QUERIES["written_offsets"], {"topics": supply}).fetchall()
        }
        by_status = conn.execute(QUERIES["levels_by_status"]).fetchall()
    ends: dict[tuple[str, int], tuple[int, int]] = {}
    broker_error = None
    try:
        ends = _broker_offsets(settings.kafka_bootstrap, supply)
    except Exception as exc:  # any broker trouble is something to report, not a crash
        broker_error = str(exc) or type(exc).__name__
    parts = []
    for key in sorted(set(written) | set(ends)):
        row = written.get(key)
        start, end = ends.get(key, (None, None))
        parts.append(
            PartitionView(
                key[0],
                key[1],
                None if row is None else int(row["next_offset"]),
                end,
                start,
                None if row is None else row["message_at"],
            )
        )
    currency = Currency(settings.stall_bound_s, settings.max_lag_s)
    problem = currency.problem(
        heartbeat["levels_at"] if heartbeat else None, heartbeat["lag_s"] if heartbeat else None, now
    )
    return PipelineReport(now, heartbeat, parts, broker_error, list(by_status), problem)


def _broker_offsets(bootstrap: str, supply: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(log start, end) offset of every partition of the supply topics that exist.

    Raises kafka.errors.KafkaError (after about BROKER_TIMEOUT_MS) when the broker does not answer.
    """
    from kafka import KafkaConsumer, TopicPartition

    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)  # the report says it in one line; no connection log on the terminal
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=BROKER_TIMEOUT_MS,
            bootstrap_timeout_ms=BROKER_TIMEOUT_MS,
            allow_auto_create_topics=False,
        )
        try:
            tps = [TopicPartition(t, p) for t in supply for p in sorted(consumer.partitions_for_topic(t))]
            if not tps:
                return {}
            ends = consumer.end_offsets(tps, timeout_ms=BROKER_TIMEOUT_MS)
            starts = consumer.beginning_offsets(tps, timeout_ms=BROKER_TIMEOUT_MS)
            return {(tp.topic, tp.partition): (int(starts[tp]), int(ends[tp])) for tp in tps}
        finally:
            consumer.close()
    finally:
        kafka_log.setLevel(level)


def render(report: PipelineReport, settings: Settings) -> str:
    """The report as lines for a person, with what to do next when the pipeline is not current."""
    out = []
    hb = report.heartbeat
    if report.current:
        out.append("Circle levels: CURRENT")
    else:
        out.append(f"Circle levels: STALLED: {report.problem}")
    if hb is not None:
        age = (report.now - hb["levels_at"]).total_seconds()
        out.append(f"  last computed   {hb['levels_at']:%Y-%m-%d %H:%M:%S %Z} ({duration(age)} ago) by {hb['worker']}")
        lag = "unknown (the broker's offsets could not be read)"
        if hb["lag_reports"] is not None and hb["lag_s"] is not None:
            lag = f"{int(hb['lag_reports']):,} reports, about {duration(hb['lag_s'])}"
        out.append(f"  lag then        {lag}")
    else:
        out.append("  last computed   never (no worker has computed circle levels on this database)")
    out.append(
        f"  current means   computed within {settings.stall_bound_s:g} s, "
        f"at most {settings.max_lag_s:g} s behind the supply topics"
    )
    out.append("  supply topics   written by the workers / on the broker now")
    if report.broker_error:
        out.append(f"    broker at {settings.kafka_bootstrap} did not answer: {report.broker_error}")
    if not report.partitions:
        out.append("    (no supply partitions yet: nothing was published or written)")
    else:
        width = max(len(p.topic) for p in report.partitions)
        out.append(f"    {'topic':{width}}  part  {'written':>12}  {'on broker':>12}  {'behind':>10}  last written")
        for p in report.partitions:
            out.append(
                f"    {p.topic:{width}}  {p.partition:>4}  {_num(p.written):>12}  {_num(p.end):>12}  "
                f"{_num(p.behind):>10}  {_when(p.message_at, report.now)}"
            )
    if report.levels_by_status:
        order = {s: i for i, s in enumerate(("CRITICAL", "SHORTAGE", "WATCH", "STALE", "OK"))}
        rows = sorted(report.levels_by_status, key=lambda r: order.get(r["status"], 9))
        counts = ", ".join(f"{r['status']} {r['levels']} in {r['circles']} circle(s)" for r in rows)
        out.append(f"  circle levels   {counts}")
    else:
        out.append("  circle levels   none stored yet")
    if not report.current:
        out.append("")
        out.append("What to do: " + WHAT_TO_DO)
        out.append(
            "Until levels are current again shortage alerts neither fire nor resolve, and the operators get "
            "PipelineStalled."
        )
    return "\n".join(out)


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _when(at: datetime | None, now: datetime) -> str:
    return "-" if at is None else f"{at:%H:%M:%S} ({duration((now - at).total_seconds())} ago)"
