"""Convert a database set up on plain PostgreSQL to TimescaleDB, keeping its data (`baogong migrate --timescaledb`).

A database migrated before TimescaleDB was installed keeps plain tables: migrations run once, and 0003/0016 chose
the plain branch then. `convert(url)` brings it to the state a database created on TimescaleDB has:

1. refuses (`CannotConvert`, saying what to do) unless the server has TimescaleDB installed and preloaded; a
   database already on TimescaleDB is left as it is (`converted=False`);
2. in ONE transaction: creates the extension; turns each raw time series (outlet_reports, prices, circle_levels,
   feed_health) into a hypertable with the chunk interval of migrations 0003/0016 — whether it is an ordinary or a
   range-partitioned table, it is renamed aside, recreated `LIKE` it (columns, defaults, constraints, indexes),
   made a hypertable, filled with every row, and the old one dropped; replaces the plain rollup tables with the
   continuous aggregates, and adds compression, refresh and retention policies; grants the Grafana role again.
   Any failure rolls all of it back: the database stays plain and whole;
3. after the commit, materialises the continuous aggregates over the whole history (`refresh_continuous_aggregate`
   cannot run inside a transaction). If this step fails, `baogong maintain` refreshes them later.

The statements are in schema/timescaledb.sql. Blocking (psycopg); run while the pipeline is stopped: the tables are
locked for the copy (about a minute per 10 M rows here).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from schema.db import SCHEMA_DIR, DatabaseError, Row, connect, load_queries
from schema.maintain import ROLLUPS, engine

QUERIES = load_queries(SCHEMA_DIR / "timescaledb.sql") | load_queries(SCHEMA_DIR / "rollups.sql")

#: (table, time column, chunk interval): as migrations 0003 and 0016 create them on TimescaleDB.
HYPERTABLES = (
    ("outlet_reports", "reported_at", "1 day"),
    ("prices", "reported_at", "7 days"),
    ("circle_levels", "computed_at", "1 day"),
    ("feed_health", "minute", "7 days"),
)


class CannotConvert(DatabaseError):
    """The server cannot take the conversion now; the message says what to set or install."""


@dataclass
class Conversion:
    """What `convert` did: rows copied per table, and how long it took."""

    converted: bool
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def convert(url: str, *, progress: Callable[[str], None] = lambda line: None) -> Conversion:
    """Convert the database at `url` to TimescaleDB with its data; see the module docstring. Raises CannotConvert."""
    started = time.perf_counter()
    result = Conversion(converted=False)
    with connect(url, autocommit=True) as conn:
        found = engine(conn)
        if found.rollups is None:
            raise CannotConvert("this database is not migrated yet: run `baogong migrate` first")
        if found.rollups == "v":
            progress("already on TimescaleDB: nothing to convert")
            return result
        if not found.available:
            raise CannotConvert(
                "TimescaleDB is not installed on this PostgreSQL server: install the TimescaleDB package for its "
                "PostgreSQL version, set shared_preload_libraries = 'timescaledb', restart, and run this again"
            )
        if not found.preloaded:
            raise CannotConvert(
                "TimescaleDB is installed but not preloaded: add shared_preload_libraries = 'timescaledb' to "
                "postgresql.conf (or ALTER SYSTEM SET shared_preload_libraries = 'timescaledb'), restart PostgreSQL "
                "and run `baogong migrate --timescaledb` again"
            )
        with conn.transaction():
            conn.execute(QUERIES["create_extension"])
            for table, column, chunk in HYPERTABLES:
                t0 = time.perf_counter()
                result.rows[table] = _to_hypertable(conn, table, column, chunk)
                progress(
                    f"{table}: hypertable by {column}, chunks of {chunk}, {result.rows[table]:,} rows copied "
                    f"in {time.perf_counter() - t0:.1f} s"
                )
            for rollup in ROLLUPS:
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(rollup)))
                conn.execute(QUERIES[f"cagg_{rollup}"])
            for step in ("policies", "compression", "retention", "grants"):
                conn.execute(QUERIES[step])
            progress("rollups: continuous aggregates with refresh, compression and retention policies")
        for rollup in ROLLUPS:
            t0 = time.perf_counter()
            conn.execute(QUERIES["refresh_invalidated"], {"view": rollup})
            progress(f"{rollup}: materialised from the whole history in {time.perf_counter() - t0:.1f} s")
    result.converted = True
    result.seconds = time.perf_counter() - started
    return result


def _to_hypertable(conn: psycopg.Connection[Row], table: str, column: str, chunk: str) -> int:
    """Recreate `table` as a hypertable holding every row it had; the number of rows copied."""
    old = sql.Identifier(f"{table}_plain")
    new = sql.Identifier(table)
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(new, old))
    conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)").format(new, old)
    )
    conn.execute(QUERIES["create_hypertable"], {"relation": table, "column": column, "chunk": chunk})
    copied = conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(new, old)).rowcount
    conn.execute(sql.SQL("DROP TABLE {}").format(old))
    return copied
