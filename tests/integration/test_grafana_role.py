"""The read-only role Grafana's datasource uses (migration 0016): panels' tables readable, keys and writes refused."""

from __future__ import annotations

import psycopg
import pytest

from schema.db import connect


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM circle_levels_hourly",
        "SELECT * FROM circle_levels_daily",
        "SELECT * FROM prices_daily",
        "SELECT * FROM feed_health_hourly",
        "SELECT * FROM circle_levels_latest",
        "SELECT * FROM alerts",
        "SELECT * FROM supply_tasks",
        "SELECT * FROM pipeline_status",
        "SELECT id, name, kind FROM suppliers",
    ],
)
def test_grafana_reads_what_panels_need(database_url: str, query: str) -> None:
    with connect(database_url) as conn:
        conn.execute("INSERT INTO suppliers (id, name, kind) VALUES ('s1', 'Test chain', 'chain')")
        conn.execute("SET ROLE baogong_grafana")
        conn.execute(query).fetchall()


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM api_keys",
        "SELECT * FROM responder_keys",
        "SELECT * FROM ingest_claims",
        "SELECT * FROM suppliers",  # only id, name and kind
        "SELECT * FROM outlet_reports",  # panels read rollups, not raw reports
        "INSERT INTO circles (id, name, center_lat, center_lon) VALUES ('X', 'X', 0, 0)",
        "UPDATE alerts SET state = 'resolved'",
        "DELETE FROM circle_levels_hourly",
        "CREATE TABLE grafana_was_here (x int)",
    ],
)
def test_grafana_cannot_read_keys_or_write(database_url: str, statement: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("SET ROLE baogong_grafana")
        # On TimescaleDB the rollups are views nobody can delete from; the role must be refused either way.
        with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectNotInPrerequisiteState)):
            conn.execute(statement)
