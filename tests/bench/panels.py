"""Panel-query benchmark: every Grafana panel over 30 days of the demo city (on demand).

    python -m tests.bench.panels [--days 30] [--runs 7] [--keep]

Creates its own database beside BAOGONG_DATABASE_URL's (migrated), writes the history straight into it
(tests/panel_history.py: the demo city, circle levels every 15 min, latest stock, daily prices, per-minute feed
health for every supplier and path, alerts), fills the rollups with `baogong maintain`'s function, then runs
each panel's SQL, expanded as Grafana expands it for the last `--days` days with every variable on "All"
(rice for the single-necessity view; a repeated panel with one necessity), `--runs` times after one warm-up.
Prints a table sorted by median time with the ratio to the fastest, then EXPLAIN (ANALYZE, BUFFERS) of the
slowest three. Goal: every panel under 100 ms median on plain PostgreSQL.

The raw levels are every 15 min rather than the worker's 5 s: panels never read raw levels, and the rollups
they read have the same size either way (one row per circle, necessity and hour or day).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from baogong.grafana import dashboards as d
from baogong.grafana.macros import Variable, expand
from baogong.settings import Settings
from schema.db import connect
from schema.migrate import migrate
from tests.conftest import _with_db
from tests.panel_history import fill_rollups, write_history

DB = "baogong_bench_panels"
GOAL_MS = 100.0
TABLES = (
    "circle_levels", "circle_levels_hourly", "circle_levels_daily", "prices", "prices_daily", "feed_health",
    "feed_health_hourly", "outlet_stock", "alerts",
)  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args()

    admin = Settings.from_env().database_url.get_secret_value()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    url = _with_db(admin, DB)
    try:
        migrate(url)
        now = datetime.now(UTC).replace(microsecond=0)
        t0 = time.perf_counter()
        h = write_history(url, now, days=args.days)
        t1 = time.perf_counter()
        fill_rollups(url, now)
        t2 = time.perf_counter()
        with connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
            sizes = {}
            for t in TABLES:
                row = conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(t))).fetchone()
                sizes[t] = row["n"] if row else 0
        print(f"history: {args.days:g} days ending {now:%Y-%m-%d %H:%M} UTC, written in {t1 - t0:.1f} s, "
              f"rollups filled in {t2 - t1:.1f} s")  # fmt: skip
        print("rows: " + ", ".join(f"{t} {n:,}" for t, n in sizes.items()))

        results: list[tuple[str, float, list[float], str]] = []
        with connect(url, autocommit=True) as conn:
            for dash in d.DASHBOARDS:
                chosen: dict[str, Variable] = {}
                for v in dash.variables:
                    rows = conn.execute(expand(v.query, start=h.start, end=now, variables=chosen)).fetchall()
                    options = tuple(str(r.get("__value", next(iter(r.values())))) for r in rows)
                    if v.include_all:
                        chosen[v.name] = Variable(options, multi=v.multi, include_all=True)
                    else:
                        chosen[v.name] = Variable(("rice",), multi=v.multi)
                for panel in dash.panels:
                    scoped = dict(chosen)
                    if panel.repeat:
                        var = chosen[panel.repeat]
                        scoped[panel.repeat] = Variable(("rice",), multi=var.multi, include_all=var.include_all)
                    query = expand(panel.sql, start=h.start, end=now, variables=scoped)
                    conn.execute(query).fetchall()  # warm-up
                    times = []
                    for _ in range(args.runs):
                        started = time.perf_counter()
                        conn.execute(query).fetchall()
                        times.append((time.perf_counter() - started) * 1000)
                    results.append((f"{dash.title} / {panel.title}", statistics.median(times), times, query))

            results.sort(key=lambda r: r[1])
            fastest = results[0][1]
            width = max(len(r[0]) for r in results)
            print(f"\n{'panel':{width}}  median ms  min ms  max ms  x fastest")
            for name, median, times, _ in results:
                flag = "" if median < GOAL_MS else f"  over {GOAL_MS:.0f} ms"
                print(f"{name:{width}}  {median:9.2f}  {min(times):6.2f}  {max(times):6.2f}  "
                      f"{median / fastest:9.1f}{flag}")  # fmt: skip
            over = [r for r in results if r[1] >= GOAL_MS]
            print(f"\n{len(results)} panel queries, {args.runs} runs each; "
                  f"{'all under' if not over else f'{len(over)} at or over'} {GOAL_MS:.0f} ms median")  # fmt: skip
            for name, median, _, query in results[-3:][::-1]:
                print(f"\n--- EXPLAIN (ANALYZE, BUFFERS): {name} ({median:.2f} ms median)")
                for row in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query):
                    print(row["QUERY PLAN"])
        return 1 if over else 0
    finally:
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))


if __name__ == "__main__":
    raise SystemExit(main())
