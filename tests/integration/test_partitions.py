"""The raw time series as partitioned tables on plain PostgreSQL (migration 0018, schema/partitions.py).

Time is driven explicitly: `maintain(now=...)` at the real now (T0) and at T0 + 40 days; retention 35 days.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from schema.db import connect
from schema.maintain import Report, engine, maintain
from schema.migrate import migrate
from schema.partitions import SERIES, Series, grid_start

KEEP = {"retention_days": 35, "hourly_days": 180, "daily_days": 1095}
TABLES = {s.table: s for s in SERIES}


@pytest.fixture(autouse=True)
def plain_engine(admin_url: str) -> None:
    """Partitions are the plain engine's; on a server with TimescaleDB preloaded the tables are hypertables."""
    with connect(admin_url) as conn:
        found = engine(conn)
    if found.available and found.preloaded:
        pytest.skip("TimescaleDB is preloaded on this server: the raw tables are hypertables, not partitions")


def insert(conn: Any, table: str, at: datetime, key: str = "A") -> None:
    """One row of `table` at `at` (`key`: the circle, outlet or supplier)."""
    if table == "circle_levels":
        conn.execute(
            "INSERT INTO circle_levels (computed_at, circle_id, necessity, stock, daily_demand, coverage, "
            "outlets_expected, outlets_fresh, status) VALUES (%s, %s, 'rice', 10, 2, 1, 1, 1, 'OK') "
            "ON CONFLICT (circle_id, necessity, computed_at) DO NOTHING",
            (at, key),
        )
    elif table == "outlet_reports":
        conn.execute(
            "INSERT INTO outlet_reports (reported_at, outlet_id, necessity, quantity, supplier_id, received_at) "
            "VALUES (%s, %s, 'rice', 10, 's1', %s) "
            "ON CONFLICT (outlet_id, necessity, reported_at, line_key) DO NOTHING",
            (at, key, at),
        )
    elif table == "prices":
        conn.execute(
            "INSERT INTO prices (reported_at, outlet_id, necessity, price, supplier_id, received_at) "
            "VALUES (%s, %s, 'rice', 5, 's1', %s) ON CONFLICT (outlet_id, necessity, reported_at) DO NOTHING",
            (at, key, at),
        )
    else:
        conn.execute(
            "INSERT INTO feed_health (supplier_id, minute, source, accepted) VALUES (%s, %s, 'http', 1) "
            "ON CONFLICT (supplier_id, minute, source) DO UPDATE SET accepted = feed_health.accepted + 1",
            (key, at),
        )


def where(url: str, series: Series) -> dict[datetime, str]:
    """Each row's time and the partition holding it."""
    query = sql.SQL("SELECT {col} AS at, tableoid::regclass::text AS part FROM {table}").format(
        col=sql.Identifier(series.column), table=sql.Identifier(series.table)
    )
    with connect(url) as conn:
        return {r["at"]: r["part"] for r in conn.execute(query).fetchall()}


def steps(report: Report, prefix: str) -> dict[str, int]:
    return {s.what: s.rows or 0 for s in report.steps if s.what.startswith(prefix)}


def test_the_raw_tables_are_partitioned_with_keys_indexes_and_grants(database_url: str) -> None:
    with connect(database_url) as conn:
        partitioned = conn.execute(
            "SELECT c.relname, pg_get_partkeydef(c.oid) AS key, d.relname AS default_partition "
            "FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "JOIN pg_class d ON d.oid = p.partdefid ORDER BY 1"
        ).fetchall()
        keys = {
            r["tab"]: r["def"]
            for r in conn.execute(
                "SELECT conrelid::regclass::text AS tab, pg_get_constraintdef(oid) AS def FROM pg_constraint "
                "WHERE contype = 'p' AND conrelid = ANY (%s::regclass[])",
                (list(TABLES),),
            )
        }
        indexes = {
            r["indexname"]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = ANY (%s)", (list(TABLES),))
        }
        grafana = {
            r["tab"]: r["ok"]
            for r in conn.execute(
                "SELECT t AS tab, has_table_privilege('baogong_grafana', t, 'SELECT') AS ok FROM unnest(%s::text[]) t",
                (list(TABLES),),
            )
        }
        checks = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'circle_levels'::regclass AND contype = 'c' ORDER BY 1"
        ).fetchall()
    assert [(r["relname"], r["key"], r["default_partition"]) for r in partitioned] == [
        ("circle_levels", "RANGE (computed_at)", "circle_levels_default"),
        ("feed_health", "RANGE (minute)", "feed_health_default"),
        ("outlet_reports", "RANGE (reported_at)", "outlet_reports_default"),
        ("prices", "RANGE (reported_at)", "prices_default"),
    ]
    assert keys == {
        "circle_levels": "PRIMARY KEY (circle_id, necessity, computed_at)",
        "feed_health": "PRIMARY KEY (supplier_id, minute, source)",
        "outlet_reports": "PRIMARY KEY (outlet_id, necessity, reported_at, line_key)",
        "prices": "PRIMARY KEY (outlet_id, necessity, reported_at)",
    }
    assert {
        "circle_levels_time",
        "prices_time",
        "prices_received",
        "feed_health_minute",
    } <= indexes
    assert "outlet_reports_time" not in indexes  # dropped by 0025: nothing reads outlet_reports by time
    assert grafana == {"outlet_reports": False, "prices": False, "circle_levels": True, "feed_health": True}
    assert [r["conname"] for r in checks] == ["circle_levels_demand_source_check", "circle_levels_status_check"]


def test_rows_far_in_the_past_or_future_land_in_the_default_partition(database_url: str) -> None:
    now = datetime.now(UTC)
    times = [datetime(1990, 1, 1, tzinfo=UTC), now, now + timedelta(days=400), datetime(2199, 12, 31, tzinfo=UTC)]
    with connect(database_url) as conn:
        for table in TABLES:
            for at in times:
                insert(conn, table, at)
            insert(conn, table, now)  # a redelivery: the primary key (it holds the time column) absorbs it
    for table, series in TABLES.items():
        parts = where(database_url, series)
        assert set(parts) == set(times), table
        assert parts[times[0]] == parts[times[2]] == parts[times[3]] == f"{table}_default"
        assert parts[now] == f"{table}_p{grid_start(now, series.interval):%Y%m%d}"


def test_maintain_creates_moves_drops_and_a_second_run_changes_nothing(database_url: str) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)
    later = t0 + timedelta(days=40)
    cutoff = later - timedelta(days=35)
    times = {
        "three days ago": t0 - timedelta(days=3),
        "now": t0,
        "in six days": t0 + timedelta(days=6),
        "in 30 days": t0 + timedelta(days=30),  # no partition yet: the default holds it
        "in 45 days": t0 + timedelta(days=45),
        "year 2000": datetime(2000, 1, 1, tzinfo=UTC),
        "in 400 days": t0 + timedelta(days=400),
    }
    maintain(database_url, now=t0, **KEEP)
    with connect(database_url) as conn:
        for table in TABLES:
            for at in times.values():
                insert(conn, table, at)
    before = {t: where(database_url, s) for t, s in TABLES.items()}
    assert before["circle_levels"][times["in 30 days"]] == "circle_levels_default"

    report = maintain(database_url, now=later, **KEEP)
    assert report.ok
    rendered = report.render()

    for table, series in TABLES.items():
        after = where(database_url, series)
        # Nothing at or after the cutoff is lost; nothing before the cutoff's partition is left; the default
        # keeps nothing past retention.
        assert {at for at in before[table] if at >= cutoff} <= set(after), table
        assert all(at >= grid_start(cutoff, series.interval) for at in after), table
        assert all(at >= cutoff for at, part in after.items() if part == f"{table}_default"), table
        for moved in ("in 30 days", "in 45 days"):
            at = times[moved]
            assert after[at] == f"{table}_p{grid_start(at, series.interval):%Y%m%d}", (table, moved)
        assert after[times["in 400 days"]] == f"{table}_default"
        assert times["year 2000"] not in after
        created = steps(report, f"create partition {table}_p")
        assert sum(created.values()) == 2, (table, created)  # the two rows moved out of the default
        dropped = steps(report, f"drop partition {table}_p")
        purged = steps(report, f"delete {table}_default before")
        assert list(purged.values()) == [1], (table, purged)  # year 2000
        # Count before == after, less what the dropped partitions held and the purge deleted.
        assert len(after) == len(before[table]) - sum(dropped.values()) - 1, table

    # Levels (one partition a day): today's and three days ago's partitions ended before the cutoff.
    levels = where(database_url, TABLES["circle_levels"])
    assert sorted(levels) == sorted(times[k] for k in ("in six days", "in 30 days", "in 45 days", "in 400 days"))
    dropped = steps(report, "drop partition circle_levels_p")
    assert dropped[f"drop partition circle_levels_p{t0:%Y%m%d}"] == 1
    assert dropped[f"drop partition circle_levels_p{times['three days ago']:%Y%m%d}"] == 1
    assert sum(dropped.values()) == 2
    assert f"drop partition circle_levels_p{t0:%Y%m%d}" in rendered
    with connect(database_url) as conn:
        parts = conn.execute(
            "SELECT min(c.relname) AS first, max(c.relname) AS last FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'circle_levels'::regclass "
            "AND c.relname <> 'circle_levels_default'"
        ).fetchone()
    assert parts is not None
    assert parts["first"] >= f"circle_levels_p{grid_start(cutoff, TABLES['circle_levels'].interval):%Y%m%d}"
    assert parts["last"] == f"circle_levels_p{later + timedelta(days=7):%Y%m%d}"

    state = {t: where(database_url, s) for t, s in TABLES.items()}
    again = maintain(database_url, now=later, **KEEP)
    assert not [s for s in again.steps if s.what.startswith(("create partition", "drop partition"))]
    assert {s.what: s.rows for s in again.steps if s.what.startswith("delete")} == {
        s.what: 0 for s in report.steps if s.what.startswith("delete")
    }
    assert {t: where(database_url, s) for t, s in TABLES.items()} == state


@pytest.fixture
def empty_database(admin_url: str) -> Iterator[str]:
    """A new database nothing was migrated into."""
    name = f"baogong_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(admin_url)
    params["dbname"] = name
    yield make_conninfo(**params)  # type: ignore[arg-type]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_database_with_history_before_0018_keeps_every_row(empty_database: str) -> None:
    migrate(empty_database, target=17)
    now = datetime.now(UTC).replace(microsecond=0)
    times = [now - timedelta(hours=h) for h in range(0, 24 * 40, 7)] + [now + timedelta(days=300)]
    with connect(empty_database) as conn:
        assert not conn.execute("SELECT 1 FROM pg_partitioned_table").fetchall()
        for table in TABLES:
            for i, at in enumerate(times):
                insert(conn, table, at, key=f"K{i % 3}")
    dump = {t: _rows(empty_database, t) for t in TABLES}
    assert all(len(rows) == len(times) for rows in dump.values())

    applied = migrate(empty_database, target=18)  # later migrations may add columns; compare these
    assert [m.version for m in applied] == [18]
    for table, series in TABLES.items():
        assert _rows(empty_database, table) == dump[table], table
        parts = where(empty_database, series)
        assert parts[now] == f"{table}_p{grid_start(now, series.interval):%Y%m%d}"
        assert parts[times[-1]] == f"{table}_default"  # beyond the partitions 0018 creates
    with connect(empty_database) as conn:
        assert len(conn.execute("SELECT 1 FROM pg_partitioned_table").fetchall()) == 4
        assert not conn.execute("SELECT 1 FROM pg_class WHERE relname LIKE '%%_unpartitioned'").fetchall()
        insert(conn, "circle_levels", now, key="K0")  # the key still absorbs a repeat
    assert len(_rows(empty_database, "circle_levels")) == len(times)
    migrate(empty_database)  # and the migrations after 0018 apply to the partitioned tables


def _rows(url: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        query = sql.SQL("SELECT * FROM {} ORDER BY 1, 2, 3").format(sql.Identifier(table))
        return sorted(conn.execute(query).fetchall(), key=repr)
