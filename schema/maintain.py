"""`baogong maintain`: keep the rollups current and the history bounded, on either engine.

On plain PostgreSQL (the rollups of migration 0016 are tables) one run:

1. refreshes each rollup incrementally: every bucket that may hold a row changed since its watermark
   (`rollup_watermarks`, less `LOOKBACK` for rows committed late) is recomputed from the raw rows and upserted,
   one row per bucket; unchanged buckets are not rewritten, so a second run changes nothing. Days of circle
   levels are rolled up from their hours. `full=True` recomputes everything still in the raw tables (after
   an outage longer than the look-back, or a repair);
2. keeps the partitions of the raw time series (circle_levels, outlet_reports, prices, feed_health; range
   partitioned by migration 0018) with `schema.partitions.upkeep`: creates the partitions from now to
   `partitions.AHEAD` (7 days) ahead and those the default partition holds rows for inside the retention
   window (moving those rows in), drops whole partitions that ended `retention_days` ago or earlier, and
   deletes older rows left in each default partition. Rows stay up to one partition (a day for levels and
   reports, 7 days for prices and feed health) past `retention_days`. A raw table that is not partitioned
   has its old rows deleted instead;
3. deletes rollup rows older than `hourly_days` / `daily_days` (the rollups are small tables).

Each refresh, partition change and delete is its own transaction: a failure leaves the earlier steps done
and is raised.

On TimescaleDB (the rollups are continuous aggregates) it refreshes each aggregate over its whole range, which
materialises only the buckets its invalidation log names (rows written behind the policies' windows), then runs
every refresh, compression and retention policy job with `CALL run_job(id)` — the background scheduler's own
runs report failures on PostgreSQL 15.20 even when their work was done — and lists
`timescaledb_information.job_errors` of the last day. A job that fails is reported and the next one still runs.

Blocking (psycopg): the stream worker calls it in a thread (streams/agents/maintain.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from schema import partitions
from schema.db import SCHEMA_DIR, DatabaseError, Row, connect, load_queries

QUERIES = load_queries(SCHEMA_DIR / "rollups.sql")
#: How far behind its watermark a refresh starts again: rows whose time is older than the newest one seen
#: when they commit (a transaction that took long, a price a lagging worker wrote late) are still counted.
LOOKBACK = timedelta(hours=1)
#: (watermark name, query giving the newest change, refresh queries in order).
_REFRESHES = (
    ("circle_levels", "levels_changed_to", ("refresh_circle_levels_hourly", "refresh_circle_levels_daily")),
    ("prices", "prices_changed_to", ("refresh_prices_daily",)),
    ("feed_health", "feed_health_changed_to", ("refresh_feed_health_hourly",)),
)
#: The rollups: plain tables or continuous aggregates, by engine.
ROLLUPS = ("circle_levels_hourly", "circle_levels_daily", "prices_daily", "feed_health_hourly")
#: (table, purge query, which retention applies). Raw tables are purged so only where they are not partitioned.
_PURGES = (
    ("circle_levels", "purge_circle_levels", "raw"),
    ("outlet_reports", "purge_outlet_reports", "raw"),
    ("prices", "purge_prices", "raw"),
    ("feed_health", "purge_feed_health", "raw"),
    ("circle_levels_hourly", "purge_circle_levels_hourly", "hourly"),
    ("feed_health_hourly", "purge_feed_health_hourly", "hourly"),
    ("circle_levels_daily", "purge_circle_levels_daily", "daily"),
    ("prices_daily", "purge_prices_daily", "daily"),
)


@dataclass(frozen=True, slots=True)
class Engine:
    """What a database runs on: TimescaleDB created in it, installed on the server, preloaded; rollups' kind."""

    timescaledb: bool
    available: bool
    preloaded: bool
    rollups: str | None  # 'r': tables (plain), 'v': continuous aggregates, None: before migration 0016

    @property
    def name(self) -> str:
        return "timescaledb" if self.rollups == "v" else "postgresql"

    def describe(self) -> str:
        """One line for `baogong migrate`."""
        if self.rollups == "v":
            return (
                "engine: TimescaleDB: hypertables with compression and retention policies, rollups are continuous "
                "aggregates (`baogong maintain` runs their jobs and reports failing ones)"
            )
        line = "engine: plain PostgreSQL: rollups are tables refreshed by `baogong maintain`"
        if self.available and not self.timescaledb:
            line += (
                "; TimescaleDB is installed on this server but this database was set up without it: "
                "`baogong migrate --timescaledb` converts it, keeping its data"
            )
        return line


def engine(conn: psycopg.Connection[Row]) -> Engine:
    row = conn.execute(QUERIES["engine"]).fetchone()
    assert row is not None
    return Engine(bool(row["timescaledb"]), bool(row["available"]), bool(row["preloaded"]), row["rollups"])


@dataclass(frozen=True, slots=True)
class Step:
    """One thing maintain did: `rows` written or deleted (None for a TimescaleDB job), how long, any error."""

    what: str
    rows: int | None
    seconds: float
    error: str | None = None


@dataclass
class Report:
    engine: str
    steps: list[Step] = field(default_factory=list)
    job_errors: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.error is None for s in self.steps)

    def render(self) -> str:
        lines = [f"maintain on {self.engine}:"]
        width = max((len(s.what) for s in self.steps), default=0)
        for s in self.steps:
            rows = "" if s.rows is None else f"{s.rows:>9,} rows"
            status = f"  FAILED: {s.error}" if s.error else ""
            lines.append(f"  {s.what:{width}} {rows:>14} {s.seconds * 1000:>9.1f} ms{status}")
        if self.engine == "timescaledb":
            if self.job_errors:
                lines.append("  job errors in the last day (timescaledb_information.job_errors):")
                for e in self.job_errors:
                    lines.append(
                        f"    job {e['job_id']} {e['proc_name']} at {e['finish_time']:%Y-%m-%d %H:%M:%S}: "
                        f"{e['sqlerrcode']} {e['err_message']}"
                    )
            else:
                lines.append("  no job errors in the last day")
        return "\n".join(lines)


def maintain(
    url: str,
    *,
    now: datetime,
    retention_days: int,
    hourly_days: int,
    daily_days: int,
    full: bool = False,
) -> Report:
    """One maintenance run as of `now` (retention is counted back from it). See the module docstring.

    Plain PostgreSQL: raises DatabaseError when a step fails (the steps before it are committed).
    TimescaleDB: never raises for a failing job; `Report.ok` is False and the step says why.
    """
    with connect(url, autocommit=True) as conn:
        found = engine(conn)
        if found.rollups is None:
            raise DatabaseError("the rollups do not exist yet: run `baogong migrate` first")
        if found.rollups == "v":
            return _timescaledb(conn, now)
        report = Report("plain PostgreSQL")
        for name, changed_to, refreshes in _REFRESHES:
            report.steps.extend(_refresh(conn, name, changed_to, refreshes, full))
        changes, unpartitioned = partitions.upkeep(conn, now=now, retention=timedelta(days=retention_days))
        report.steps.extend(Step(c.what, c.rows, c.seconds) for c in changes)
        keep = {"raw": retention_days, "hourly": hourly_days, "daily": daily_days}
        for table, query, kind in _PURGES:
            if kind == "raw" and table not in unpartitioned:
                continue
            before = now - timedelta(days=keep[kind])
            started = time.perf_counter()
            with conn.transaction():
                deleted = conn.execute(QUERIES[query], {"before": before}).rowcount
            report.steps.append(
                Step(f"delete {table} before {before:%Y-%m-%d %H:%M}", deleted, time.perf_counter() - started)
            )
        return report


def _refresh(
    conn: psycopg.Connection[Row], name: str, changed_to: str, refreshes: tuple[str, ...], full: bool
) -> list[Step]:
    """Refresh one source's rollups in one transaction, holding its watermark row."""
    steps = []
    started = time.perf_counter()
    with conn.transaction():
        conn.execute(QUERIES["ensure_watermark"], {"rollup": name})
        mark = conn.execute(QUERIES["lock_watermark"], {"rollup": name}).fetchone()
        newest = conn.execute(QUERIES[changed_to]).fetchone()
        assert mark is not None and newest is not None
        if newest["changed_to"] is None:
            return [Step(f"refresh from {name}: no rows", 0, time.perf_counter() - started)]
        since = None if full or mark["refreshed_to"] is None else mark["refreshed_to"] - LOOKBACK
        label = "the start" if since is None else f"{since:%Y-%m-%d %H:%M}"
        for query in refreshes:
            t0 = time.perf_counter()
            rows = conn.execute(QUERIES[query], {"since": since}).rowcount
            steps.append(Step(f"{query.removeprefix('refresh_')} since {label}", rows, time.perf_counter() - t0))
        conn.execute(QUERIES["set_watermark"], {"rollup": name, "refreshed_to": newest["changed_to"]})
    return steps


def _timescaledb(conn: psycopg.Connection[Row], now: datetime) -> Report:
    report = Report("timescaledb")
    # The policies refresh only their recent window; rows written further back (a backfill, a late price, a
    # worker catching up after an outage) are in the invalidation log, and a refresh over the whole range
    # materialises exactly those buckets.
    for view in ROLLUPS:
        started = time.perf_counter()
        error = None
        try:
            conn.execute(QUERIES["refresh_invalidated"], {"view": view})
        except psycopg.Error as exc:  # reported; the jobs still run
            error = str(exc).strip().splitlines()[0]
        report.steps.append(Step(f"refresh {view}: late rows", None, time.perf_counter() - started, error))
    for job in conn.execute(QUERIES["timescaledb_jobs"]).fetchall():
        what = f"job {job['job_id']} {job['proc_name'].removeprefix('policy_')} {job['relation']}"
        started = time.perf_counter()
        error = None
        try:
            conn.execute(QUERIES["run_job"], {"job_id": job["job_id"]})
        except psycopg.Error as exc:  # reported; the next job still runs
            error = str(exc).strip().splitlines()[0]
        report.steps.append(Step(what, None, time.perf_counter() - started, error))
    report.job_errors = conn.execute(QUERIES["timescaledb_job_errors"], {"since": now - timedelta(days=1)}).fetchall()
    return report
