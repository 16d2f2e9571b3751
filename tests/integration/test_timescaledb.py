"""Both engines, on whatever server the suite runs against.

On plain PostgreSQL (CI here) the TimescaleDB-only tests skip with the reason; on a server with TimescaleDB
preloaded (`BAOGONG_PG_BINDIR` pointing at binaries that have it, see the README) they check what a data centre
relies on: hypertables and continuous aggregates from `baogong migrate`, `baogong maintain` running every job
explicitly, a plain database converted with every row kept, and the local cluster preloading the extension.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from baogong.services import postgres, procs
from baogong.services.procs import ServiceError
from baogong.settings import Settings
from schema.db import connect
from schema.maintain import Engine, engine, maintain
from schema.migrate import TimescaleNotPreloaded, discover, migrate
from schema.timescaledb import HYPERTABLES, ROLLUPS, CannotConvert, convert
from tests.conftest import _with_db, drop_database
from tests.panel_history import fill_rollups, write_history

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _engine(url: str) -> Engine:
    with connect(url) as conn:
        return engine(conn)


def _needs_timescaledb(url: str) -> None:
    found = _engine(url)
    if not (found.available and found.preloaded):
        pytest.skip("the server does not have TimescaleDB installed and preloaded (plain PostgreSQL)")


def test_convert_refuses_or_does_nothing_with_a_reason(database_url: str) -> None:
    found = _engine(database_url)
    lines: list[str] = []
    if found.rollups == "v":
        assert convert(database_url, progress=lines.append).converted is False
        assert lines == ["already on TimescaleDB: nothing to convert"]
    elif not found.available:
        with pytest.raises(CannotConvert, match="not installed on this PostgreSQL server"):
            convert(database_url)
        assert _engine(database_url).rollups == "r"  # nothing was touched
    else:
        pytest.skip("a plain database on a TimescaleDB server is converted by the test below")


def test_migrated_database_is_on_timescaledb_and_maintain_runs_every_job(database_url: str) -> None:
    _needs_timescaledb(database_url)
    with connect(database_url) as conn:
        tables = {
            r["hypertable_name"]: r["interval"]
            for r in conn.execute(
                "SELECT hypertable_name::text, time_interval AS interval FROM timescaledb_information.dimensions"
            )
        }
        caggs = {
            r["view_name"]
            for r in conn.execute("SELECT view_name::text FROM timescaledb_information.continuous_aggregates")
        }
        kinds = {
            r["proc_name"]
            for r in conn.execute("SELECT proc_name::text FROM timescaledb_information.jobs WHERE job_id >= 1000")
        }
    for table, _column, chunk in HYPERTABLES:
        assert table in tables and str(tables[table].days) == chunk.split()[0], tables
    assert caggs == set(ROLLUPS)
    assert kinds == {"policy_refresh_continuous_aggregate", "policy_compression", "policy_retention"}
    report = maintain(database_url, now=NOW, retention_days=35, hourly_days=180, daily_days=1095)
    assert report.engine == "timescaledb" and report.ok, report.render()
    # each aggregate's late rows, then every refresh, compression and retention job, run explicitly
    assert len(report.steps) == 4 + 4 + 4 + 8


@pytest.fixture
def plain_database(admin_url: str) -> Iterator[str]:
    """A database migrated as a server without TimescaleDB migrates it: 0003 ran as a no-op there."""
    name = f"baogong_test_plain_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_db(admin_url, name)
    three = next(m for m in discover() if m.version == 3)
    with connect(url) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
            (three.version, three.name, three.checksum),
        )
    migrate(url)
    try:
        yield url
    finally:
        drop_database(admin_url, name)


def _counts(url: str) -> dict[str, int]:
    with connect(url) as conn:
        return {
            t: int(conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(t))).fetchone()["n"])  # type: ignore[index]
            for t, _, _ in HYPERTABLES
        }


def _hourly(url: str) -> set[tuple[object, ...]]:
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT bucket, circle_id, necessity, samples, status_worst, round(days_min::numeric, 6) AS d "
            "FROM circle_levels_hourly WHERE bucket < %(end)s",
            {"end": NOW - timedelta(hours=1)},
        ).fetchall()
    return {tuple(r.values()) for r in rows}


def test_plain_database_converts_to_timescaledb_with_every_row(plain_database: str) -> None:
    _needs_timescaledb(plain_database)
    assert _engine(plain_database).rollups == "r"
    write_history(plain_database, NOW, days=0.5)
    with connect(plain_database) as conn:  # the history has no raw reports: a few hundred, every outlet's rice
        conn.execute(
            "INSERT INTO outlet_reports (reported_at, outlet_id, necessity, quantity, supplier_id, received_at) "
            "SELECT %(at)s, id, 'rice', 10, supplier_id, %(at)s FROM outlets",
            {"at": NOW - timedelta(hours=2)},
        )
    fill_rollups(plain_database, NOW)
    before, hourly = _counts(plain_database), _hourly(plain_database)
    assert min(before.values()) > 0 and hourly

    lines: list[str] = []
    done = convert(plain_database, progress=lines.append)

    assert done.converted and done.rows == before
    assert _engine(plain_database).rollups == "v"
    assert _counts(plain_database) == before
    assert _hourly(plain_database) == hourly  # the continuous aggregate holds what the plain rollup held
    assert any(line.startswith("circle_levels: hypertable by computed_at") for line in lines), lines
    with connect(plain_database) as conn:
        conn.execute("SET ROLE baogong_grafana")
        conn.execute("SELECT count(*) FROM circle_levels_hourly, feed_health_hourly LIMIT 1")
    assert convert(plain_database).converted is False  # a second run changes nothing
    report = maintain(plain_database, now=NOW, retention_days=35, hourly_days=180, daily_days=1095)
    assert report.ok, report.render()


def _timescaledb_bindir(settings: Settings) -> Path:
    try:
        bindir, _, _ = postgres.find_bindir(None, settings.pg_bindir)
    except ServiceError as exc:
        pytest.skip(str(exc))
    if not postgres.timescaledb_installed(bindir):
        pytest.skip(f"the PostgreSQL server binaries in {bindir} do not have TimescaleDB installed")
    return bindir


@pytest.mark.timeout(300)
def test_local_cluster_preloads_timescaledb_or_migrate_says_what_to_set(settings: Settings) -> None:
    bindir = _timescaledb_bindir(settings)
    for preload in ("auto", "off"):
        state = Path(tempfile.mkdtemp(prefix="baogong-ts-test-", dir="/tmp"))
        url = f"postgresql://baogong_test@127.0.0.1:{procs.free_port()}/baogong_test"
        local = Settings.from_env(
            {}, state_dir=state, database_url=SecretStr(url), pg_bindir=bindir, pg_timescaledb=preload
        )
        lines: list[str] = []
        try:
            postgres.up(local, progress=lines.append)
            if preload == "auto":
                assert any("TimescaleDB preloaded" in line for line in lines), lines
                migrate(url)
                assert _engine(url).rollups == "v"
            else:
                with pytest.raises(TimescaleNotPreloaded, match="shared_preload_libraries = 'timescaledb'"):
                    migrate(url)
                with connect(url) as conn:
                    assert conn.execute("SELECT to_regclass('outlet_reports') AS t").fetchone()["t"] is None  # type: ignore[index]
        finally:
            postgres.stop(local, progress=lines.append)
            shutil.rmtree(state, ignore_errors=True)
