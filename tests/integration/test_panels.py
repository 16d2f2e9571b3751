"""Every panel's SQL, expanded as Grafana expands it, on the real PostgreSQL with a simulated day of the demo city.

The day is written straight into the database (tests/panel_history.py: the demo city, levels every 15 min,
latest stock with silent outlets, prices, per-minute feed health, alerts, heartbeat, offsets) and the rollups
are filled by `baogong maintain`'s own function. Each panel runs with its dashboard's template variables as a
viewer leaves them ("All" where the variable has it, rice for the single-necessity view; a repeated panel
once per value, as Grafana repeats it) and the dashboard's time range (the simulated day).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from baogong.grafana import dashboards as d
from baogong.grafana.macros import Variable, expand
from schema.db import connect
from tests.conftest import copy_template, drop_database
from tests.panel_history import History, fill_rollups, write_history

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def city(admin_url: str, template_url: str) -> Iterator[tuple[str, History]]:
    name = f"baogong_test_panels_{uuid.uuid4().hex[:8]}"
    url = copy_template(admin_url, name)
    try:
        history = write_history(url, NOW, days=1.0)
        try:
            fill_rollups(url, NOW)
        except ImportError:
            pytest.skip("the rollups (schema/maintain.py, migration 0016) are not on this branch yet")
        yield url, history
    finally:
        drop_database(admin_url, name)


def variables(conn: psycopg.Connection[Any], dash: d.Dashboard, start: datetime, end: datetime) -> dict[str, Variable]:
    """Each variable's options from its own query (expanded with the ones before it), then the viewer's choice."""
    chosen: dict[str, Variable] = {}
    for v in dash.variables:
        rows = conn.execute(expand(v.query, start=start, end=end, variables=chosen)).fetchall()
        options = [str(r.get("__value", next(iter(r.values())))) for r in rows]
        assert options, f"variable {v.name} of {dash.title} has no options"
        if v.include_all:
            chosen[v.name] = Variable(tuple(options), multi=v.multi, include_all=True)
        else:
            chosen[v.name] = Variable(("rice",) if "rice" in options else (options[0],), multi=v.multi)
    return chosen


def runs(dash: d.Dashboard, panel: d.Panel, chosen: dict[str, Variable]) -> list[dict[str, Variable]]:
    if panel.repeat is None:
        return [chosen]
    var = chosen[panel.repeat]  # Grafana repeats the panel once per value, each with that value alone
    return [{**chosen, panel.repeat: Variable((value,), multi=var.multi, include_all=var.include_all)}
            for value in var.values]  # fmt: skip


def check_rows(label: str, panel: d.Panel, columns: list[str], rows: list[dict[str, Any]], h: History) -> None:
    assert tuple(columns) == panel.columns, f"{label}: columns {columns}, expected {panel.columns}"
    assert rows, f"{label}: no rows"
    for column in panel.non_null or panel.columns:
        assert any(r[column] is not None for r in rows), f"{label}: column {column} is NULL in every row"
    for r in rows:
        for column, value in r.items():
            if isinstance(value, float | int | Decimal) and not isinstance(value, bool):
                assert math.isfinite(float(value)) and float(value) >= 0, f"{label}: {column} = {value}"
                if panel.unit == "percentunit" and column == "value":
                    assert float(value) <= 1, f"{label}: a share above 1: {value}"
    if panel.fmt == "time_series":
        times = [r["time"] for r in rows]
        as_dt = [t if isinstance(t, datetime) else datetime.fromtimestamp(float(t), UTC) for t in times]
        assert as_dt == sorted(as_dt), f"{label}: a time series must be sorted by time"
        window = (h.start - timedelta(days=1), h.now + timedelta(minutes=1))
        assert all(window[0] <= t <= window[1] for t in as_dt), f"{label}: a time outside the range"


def test_every_panel_returns_its_columns_with_plausible_values(city: tuple[str, History]) -> None:
    url, h = city
    ran = 0
    with connect(url) as conn:
        for dash in d.DASHBOARDS:
            chosen = variables(conn, dash, h.start, h.now)
            for panel in dash.panels:
                for scoped in runs(dash, panel, chosen):
                    query = expand(panel.sql, start=h.start, end=h.now, variables=scoped)
                    assert "$" not in query.replace("$$", ""), f"{dash.title}/{panel.title}: unexpanded: {query}"
                    cur = conn.execute(query)
                    columns = [c.name for c in cur.description or []]
                    check_rows(f"{dash.title}/{panel.title}", panel, columns, cur.fetchall(), h)
                    ran += 1
    assert ran >= sum(len(dash.panels) for dash in d.DASHBOARDS) + len(h.necessities) - 1


def test_the_city_shows_the_drain_of_c03(city: tuple[str, History]) -> None:
    """Content, not just shape: the map colours C03 critical, the counts agree, its alerts are open."""
    url, h = city
    with connect(url) as conn:
        chosen = variables(conn, d.CITY, h.start, h.now)
        by_title = {p.title: p for p in d.CITY.panels}
        rows = conn.execute(expand(by_title["生活圈状态地图"].sql, start=h.start, end=h.now, variables=chosen))
        ranks = {r["circle_id"]: r["status_rank"] for r in rows}
        counts = conn.execute(expand(by_title["各状态生活圈数"].sql, start=h.start, end=h.now, variables=chosen))
        (count_row,) = counts.fetchall()
        opened = conn.execute(expand(by_title["未关闭告警"].sql, start=h.start, end=h.now, variables=chosen))
        open_rows = opened.fetchall()
    assert ranks["C03"] == 4  # CRITICAL
    assert len(ranks) == len(h.circles) == sum(count_row.values())
    assert count_row["危急"] >= 1
    assert {r["状态"] for r in open_rows} == {"firing", "acknowledged", "pending"}
    assert {r["生活圈"] for r in open_rows} == {"北林区·文化社区生活圈"} or all(r["生活圈"] for r in open_rows)


def test_panels_run_as_the_read_only_grafana_role(city: tuple[str, History]) -> None:
    """The role helper R's migration creates (baogong_grafana) can run every panel and variable query."""
    url, h = city
    with connect(url) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'baogong_grafana'").fetchone() is None:
            pytest.skip("no baogong_grafana role on this branch yet")
        refused = []
        for dash in d.DASHBOARDS:
            chosen = variables(conn, dash, h.start, h.now)
            queries = [v.query for v in dash.variables] + [p.sql for p in dash.panels]
            for q in queries:
                with conn.transaction(force_rollback=True):
                    conn.execute("SET LOCAL ROLE baogong_grafana")
                    try:
                        with conn.transaction():
                            conn.execute(expand(q, start=h.start, end=h.now, variables=chosen))
                    except psycopg.errors.InsufficientPrivilege as exc:
                        refused.append(f"{dash.title}: {exc.diag.message_primary}")
    assert not refused, "baogong_grafana lacks SELECT for panels:\n" + "\n".join(sorted(set(refused)))
