"""Partitions of the raw time series on plain PostgreSQL: created ahead, dropped when old (migration 0018).

outlet_reports and circle_levels have one partition per UTC day, prices and feed_health one per 7 days from
Monday 00:00 UTC, each named `<table>_pYYYYMMDD` after its first day; `<table>_default` catches every row
outside them, so an insert never fails. `upkeep` (called by `baogong maintain`, schema/maintain.py) keeps
them, per table:

1. creates the partitions from the range holding `now` to `ahead` (AHEAD, 7 days) into the future, and those
   inside the retention window the default partition holds rows for (after the migration, an outage, a report
   from the future that is now due). Each is built beside the table, filled with the rows the default
   partition held for its range and attached, in one transaction: no row is lost or refused meanwhile.
   Empty ranges in the past get no partition (a late row waits in the default for the next run);
2. drops every partition whose upper bound is at or before the retention cutoff (`now - retention`), whole;
3. deletes the rows before the cutoff that sit in the default partition.

So rows live up to one partition (a day, or 7 days) past the retention, as TimescaleDB's chunks do. Each
create, drop and delete is its own transaction, serialised with another run's by an advisory lock; a
failure is raised (psycopg.Error; schema.db.connect translates it) with the earlier ones committed. Running
it twice at the same `now` changes nothing the second time. Dropping takes an ACCESS EXCLUSIVE lock on the
table for a moment, so it waits for queries running on it.

`plan` is the pure part: which ranges to create and which partitions to drop for a `now`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from schema.db import SCHEMA_DIR, Row, load_queries

QUERIES = load_queries(SCHEMA_DIR / "partitions.sql")

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
#: How far into the future partitions exist: a week of maintain runs may be missed before rows go to the default.
AHEAD = timedelta(days=7)
#: Ranges are aligned on this Monday midnight UTC: days start at 00:00 UTC, weeks on Monday (as migration 0018).
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
_UNBOUNDED_LOW = datetime.min.replace(tzinfo=UTC)
_UNBOUNDED_HIGH = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Series:
    """A partitioned raw table: its time column and the span of one partition."""

    table: str
    column: str
    interval: timedelta


#: The partitioned raw tables, in the order upkeep visits them (the same ranges as migration 0018).
SERIES = (
    Series("outlet_reports", "reported_at", DAY),
    Series("prices", "reported_at", WEEK),
    Series("circle_levels", "computed_at", DAY),
    Series("feed_health", "minute", WEEK),
)


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A partition's range, [start, end)."""

    start: datetime
    end: datetime

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end

    def name(self, table: str) -> str:
        """`circle_levels_p20261201`: the table and the range's first day (UTC)."""
        return f"{table}_p{self.start.astimezone(UTC):%Y%m%d}"


@dataclass(frozen=True, slots=True)
class Plan:
    create: tuple[Span, ...]  # oldest first
    drop: tuple[str, ...]  # partition names, oldest first


@dataclass(frozen=True, slots=True)
class Change:
    """One thing upkeep did: `rows` moved into a new partition, held by a dropped one, or deleted."""

    what: str
    rows: int
    seconds: float


def grid_start(at: datetime, interval: timedelta) -> datetime:
    """The start of the range of `interval` holding `at` (aligned on ORIGIN)."""
    return ORIGIN + ((at - ORIGIN) // interval) * interval


def plan(
    *,
    now: datetime,
    retention: timedelta,
    interval: timedelta,
    existing: Mapping[str, Span],
    occupied: Iterable[datetime] = (),
    ahead: timedelta = AHEAD,
) -> Plan:
    """Which ranges to create and which partitions to drop, as of `now`.

    Created: every range from the one holding `now` to the one holding `now + ahead`, and the ranges starting
    at or after the cutoff (`now - retention`) whose start is in `occupied` (the default partition holds rows
    there), unless a partition in `existing` overlaps them. Dropped: the partitions in `existing` whose end is
    at or before the cutoff. Pure; `existing` holds no default partition.
    """
    cutoff = now - retention
    wanted = set()
    start = grid_start(now, interval)
    while start < now + ahead:
        wanted.add(start)
        start += interval
    wanted.update(s for s in occupied if s >= cutoff and s == grid_start(s, interval) and s < now + ahead)
    spans = [Span(s, s + interval) for s in sorted(wanted)]
    create = tuple(s for s in spans if not any(s.overlaps(e) for e in existing.values()))
    drop = tuple(name for name, span in sorted(existing.items(), key=lambda kv: kv[1]) if span.end <= cutoff)
    return Plan(create, drop)


def upkeep(
    conn: psycopg.Connection[Row], *, now: datetime, retention: timedelta, ahead: timedelta = AHEAD
) -> tuple[list[Change], list[str]]:
    """Keep every partitioned table of SERIES (see the module docstring); `conn` is in autocommit mode.

    Returns what was done and the tables of SERIES that are not partitioned (the caller purges those itself).
    """
    changes: list[Change] = []
    plain: list[str] = []
    for series in SERIES:
        found = conn.execute(QUERIES["is_partitioned"], {"table": series.table}).fetchone()
        if found is None or not found["partitioned"]:
            plain.append(series.table)
            continue
        changes.extend(_upkeep(conn, series, now=now, retention=retention, ahead=ahead))
    return changes, plain


def _upkeep(
    conn: psycopg.Connection[Row], series: Series, *, now: datetime, retention: timedelta, ahead: timedelta
) -> list[Change]:
    existing: dict[str, Span] = {}
    default: str | None = None
    for row in conn.execute(QUERIES["partitions"], {"table": series.table}).fetchall():
        if row["is_default"]:
            default = row["name"]
        else:
            existing[row["name"]] = Span(row["start_at"] or _UNBOUNDED_LOW, row["end_at"] or _UNBOUNDED_HIGH)
    cutoff = now - retention
    occupied: list[datetime] = []
    if default is not None:
        query = _format("default_occupied", series, default=default)
        params = {"stride": series.interval, "origin": ORIGIN, "from": cutoff, "to": now + ahead}
        occupied = [r["start_at"] for r in conn.execute(query, params).fetchall()]
    todo = plan(
        now=now, retention=retention, interval=series.interval, existing=existing, occupied=occupied, ahead=ahead
    )

    changes = [_create(conn, series, span, default) for span in todo.create]
    changes.extend(_drop(conn, name) for name in todo.drop)
    if default is not None:
        started = time.perf_counter()
        with conn.transaction():
            deleted = conn.execute(_format("purge_default", series, default=default), {"before": cutoff}).rowcount
        what = f"delete {default} before {cutoff:%Y-%m-%d %H:%M}"
        changes.append(Change(what, deleted, time.perf_counter() - started))
    return changes


def _create(conn: psycopg.Connection[Row], series: Series, span: Span, default: str | None) -> Change:
    """Build the partition for `span` beside the table, move the default's rows for it in, attach it."""
    name = span.name(series.table)
    started = time.perf_counter()
    moved = 0
    with conn.transaction():
        conn.execute(QUERIES["lock_partitions"])
        taken = conn.execute(QUERIES["exists"], {"name": name}).fetchone()
        if taken is not None and taken["found"]:  # another run created it meanwhile
            return Change(f"create partition {name} (done by another run)", 0, time.perf_counter() - started)
        fill: dict[str, str | datetime] = {
            "partition": name,
            "check": f"{name}_bound",
            "start": span.start,
            "end": span.end,
        }
        conn.execute(_format("create_standalone", series, **fill))
        conn.execute(_format("bound_check", series, **fill))
        if default is not None:
            moved = conn.execute(_format("move_from_default", series, default=default, **fill)).rowcount
        conn.execute(_format("attach", series, **fill))
        conn.execute(_format("drop_bound_check", series, **fill))
    what = f"create partition {name}" + (f" (rows moved from {default})" if moved else "")
    return Change(what, moved, time.perf_counter() - started)


def _drop(conn: psycopg.Connection[Row], name: str) -> Change:
    started = time.perf_counter()
    with conn.transaction():
        conn.execute(QUERIES["lock_partitions"])
        taken = conn.execute(QUERIES["exists"], {"name": name}).fetchone()
        if taken is None or not taken["found"]:
            return Change(f"drop partition {name} (done by another run)", 0, time.perf_counter() - started)
        counted = conn.execute(QUERIES["count_rows"].format(partition=sql.Identifier(name))).fetchone()
        conn.execute(QUERIES["drop_partition"].format(partition=sql.Identifier(name)))
    return Change(f"drop partition {name}", counted["n"] if counted else 0, time.perf_counter() - started)


def _format(query: str, series: Series, **names: str | datetime) -> sql.Composed:
    """A named statement with the series' identifiers, the partition names given and the bounds as literals."""
    fields: dict[str, sql.Composable] = {"table": sql.Identifier(series.table), "column": sql.Identifier(series.column)}
    for key, value in names.items():
        fields[key] = sql.Literal(value) if isinstance(value, datetime) else sql.Identifier(value)
    return QUERIES[query].format(**fields)
