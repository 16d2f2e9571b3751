"""`baogong`: the one command for everything a person runs by hand.

    baogong services up|down|status   local Kafka and PostgreSQL (no Docker needed)
    baogong migrate                   apply schema migrations (idempotent); says which engine it set up
    baogong maintain [--full]         refresh rollups, delete or compress old history (schema/maintain.py)
    baogong seed demo                 the synthetic demo city, with demo supplier keys
    baogong seed city --outlets N --circles M [--replace]   a synthetic city of any size (schema/city_gen.py)
    baogong seed history [--days 60]  past prices and stock for the city, so baselines exist (schema/history_seed.py)
    baogong api                       the supplier HTTP API
    baogong worker                    the Faust stream worker
    baogong alerts run                the alert dispatcher (rules, lifecycle, notifiers)
    baogong alerts list               recent alerts
    baogong alerts log [--alert ID] [--receiver NAME] [--undelivered] [--attempts]   who was told what, when
    baogong alerts serve              the responder app: acknowledge, resolve, comment, silences, signed links
    baogong alerts ack|resolve|comment|show ID   act on an alert as the operator (--as NAME)
    baogong alerts silence add|list|expire       silences by circle, necessity, rule (alerts/cli_alerts.py)
    baogong responders keys create|list|revoke   responders' own keys for the responder app
    baogong status                    are circle levels current? lag, offsets, levels by status
    baogong push FILE [--prices]      send a supplier's CSV/XLSX/JSON file to the API, with progress
    baogong keys create|rotate|revoke|list   supplier API keys (stored hashed)
    baogong skus import --supplier S FILE    a supplier's SKU map
    baogong outlets import FILE       the outlet registry (CSV/XLSX)
    baogong teams import|list|oncall|route   responder teams, who is on call, where a page goes
    baogong tasks list|show|dispatch|deliver|review   supply tasks of acknowledged shortages
    baogong simulate [--rate R]       feed a synthetic city's reports to the API (baogong/simulate.py)
    baogong emergency declare|lift|list|key   emergency grades IV–I and operator keys (baogong/cli_emergency.py)
    baogong prices refresh|show|leads   price watch: grades, gouging leads (baogong/cli_prices.py)
    baogong contract export           write the JSON Schemas in schema/contract/
    baogong grafana build|sync        dashboards as code; push them to a Grafana (baogong/grafana/cli.py)
    baogong demo                      all of the above plus a simulator, live in the terminal
    baogong report [--date D] [--out DIR]   the daily situation report: printable HTML page with PNG charts

Settings come from BAOGONG_* environment variables (see README); errors say
what to do next and exit non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from alerts import cli_alerts, cli_tasks, cli_teams
from baogong import cli_emergency, cli_prices
from baogong.grafana import cli as grafana_cli
from baogong.settings import Settings
from ingest import cli_keys, cli_outlets


def _services(settings: Settings, args: argparse.Namespace) -> int:
    from baogong import services

    if args.action == "up":
        services.up(settings)
    elif args.action == "down":
        services.down(settings)
    else:
        for name, state in services.status(settings).items():
            print(f"{name:10} {state}")
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from schema.migrate import migrate

    applied = migrate(
        settings.database_url.get_secret_value(), on_apply=lambda m: print(f"applied {m.version:04d}_{m.name}")
    )
    print(f"database is up to date ({len(applied)} migration(s) applied now)")
    if args.timescaledb:
        from schema.timescaledb import convert

        done = convert(settings.database_url.get_secret_value(), progress=print)
        if done.converted:
            print(f"converted to TimescaleDB in {done.seconds:.1f} s, {sum(done.rows.values()):,} rows kept")
    from schema.db import connect
    from schema.maintain import engine

    with connect(settings.database_url.get_secret_value()) as conn:
        print(engine(conn).describe())
    return 0


def _maintain(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from schema.maintain import maintain

    report = maintain(
        settings.database_url.get_secret_value(),
        now=datetime.now(UTC),
        retention_days=settings.retention_days,
        hourly_days=settings.rollup_hourly_days,
        daily_days=settings.rollup_daily_days,
        full=args.full,
    )
    print(report.render())
    return 0 if report.ok else 1


def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from schema.seed import seed_demo

    if args.what == "city":
        return _seed_city(settings, args)
    if args.what == "history":
        return _seed_history(settings, args)

    result = seed_demo(settings.database_url.get_secret_value(), seed=args.seed)
    print("SYNTHETIC demo city sized from Suihua's Beilin pilot figures (not real outlets).")
    for table, count in result.counts.items():
        print(f"  {table:18} {count:>6}")
    print("Demo supplier keys (for the demo city only):")
    for supplier_id, name, key in result.keys:
        print(f"  {supplier_id:24} {key}  {name}")
    return 0


def _seed_history(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from schema.history_seed import seed_history

    try:
        done = seed_history(settings.database_url.get_secret_value(), args.days, datetime.now(UTC), seed=args.seed)
    except ValueError as exc:
        print(f"baogong: {exc}", file=sys.stderr)
        return 2
    print(
        f"SYNTHETIC history: {done.days} days, {done.prices:,} prices and {done.levels:,} circle levels;"
        " rollups refreshed"
    )
    return 0


def _seed_city(settings: Settings, args: argparse.Namespace) -> int:
    from schema.city_seed import seed_city

    if args.outlets is None or args.circles is None:
        print("baogong: seed city needs --outlets N and --circles M (e.g. 75000 and 120)", file=sys.stderr)
        return 2
    try:
        result = seed_city(
            settings.database_url.get_secret_value(),
            outlets=args.outlets,
            circles=args.circles,
            seed=args.seed,
            population=args.population,
            replace=args.replace,
        )
    except ValueError as exc:
        print(f"baogong: {exc}", file=sys.stderr)
        return 2
    print("SYNTHETIC city (not real outlets).")
    for table, count in result.counts.items():
        print(f"  {table:18} {count:>9,}")
    print(f"Demo supplier keys ({len(result.keys)}; the same for the same --seed):")
    for supplier_id, name, key in result.keys:
        print(f"  {supplier_id:24} {key}  {name}")
    return 0


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from baogong.simulate import UnknownKeys, simulate

    try:
        done = simulate(
            settings.database_url.get_secret_value(),
            settings.api_url,
            rate=args.rate,
            duration_s=args.duration,
            seed=args.seed,
        )
    except UnknownKeys as exc:
        print(f"baogong: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 1 if done.rejected or done.failed_requests else 0


def _api(settings: Settings, args: argparse.Namespace) -> int:
    from ingest.http import create_app
    from ingest.server import serve

    serve(create_app(settings), settings)
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import faust

    from streams.app import create_app

    app = create_app(settings)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0


def _alerts(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "run":
        from alerts.pipeline import run

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(settings))
        return 0
    from schema.db import QUERIES, connect

    if args.action == "log":
        from alerts import notification_log

        with connect(settings.database_url.get_secret_value()) as conn:
            entries = notification_log.read(
                conn,
                alert_id=args.alert,
                receiver=args.receiver,
                undelivered=args.undelivered,
                attempts=args.attempts,
                limit=args.limit,
            )
        print(notification_log.render(entries))
        return 0

    with connect(settings.database_url.get_secret_value()) as conn:
        rows = conn.execute(QUERIES["alerts_list"], {"limit": args.limit}).fetchall()
    for r in rows:
        print(
            f"{r['id']:>5} {r['state']:9} {r['severity']:9} {r['circle_id'] or '':5} {r['necessity'] or '':18} "
            f"since {r['starts_at'] or r['pending_since']:%Y-%m-%d %H:%M:%S}"
        )
    return 0


def _status(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from baogong.status import read, render

    report = read(settings, datetime.now(UTC))
    print(render(report, settings))
    return 0 if report.current else 1


def _push(settings: Settings, args: argparse.Namespace) -> int:
    from ingest.formats import BodyError
    from ingest.push import PushError, push_file

    key = args.key or (settings.api_key.get_secret_value() if settings.api_key else None)
    if not key:
        print("baogong push: no API key; set BAOGONG_API_KEY or pass --key", file=sys.stderr)
        return 2
    try:
        result = push_file(
            args.file, "price" if args.prices else "inventory", args.url or settings.api_url, key, batch=args.batch
        )
    except (PushError, BodyError, OSError) as exc:
        print(f"baogong push: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.file}: {result.records:,} records, {result.accepted:,} accepted, "
        f"{result.duplicates:,} duplicates, {len(result.rejected):,} rejected"
    )
    for rej in result.rejected[: args.show]:
        where = f"line {rej['line']}" if "line" in rej else f"record {rej['index']}"
        print(f"  {where}: {rej['field']}: {rej['reason']}")
    if len(result.rejected) > args.show:
        print(f"  … and {len(result.rejected) - args.show} more (--show N to see them)")
    return 3 if result.rejected else 0


def _skus(settings: Settings, args: argparse.Namespace) -> int:
    from ingest.formats import BodyError, kind_of
    from ingest.skus import SkuMapError, import_skus

    try:
        result = import_skus(
            settings.database_url.get_secret_value(),
            args.supplier,
            args.file.read_bytes(),
            kind_of(None, args.file.name),
        )
    except (SkuMapError, BodyError, OSError) as exc:
        print(f"baogong skus import: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.file}: {result.rows} rows, {result.upserted} SKUs stored for {args.supplier}, "
        f"{len(result.rejected)} rejected"
    )
    for rej in result.rejected:
        print(f"  line {rej['line']}: {rej['field']}: {rej['reason']}")
    return 3 if result.rejected else 0


def _contract(settings: Settings, args: argparse.Namespace) -> int:
    from ingest.jsonschema import export

    for path in export():
        print(f"wrote {path}")
    return 0


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from baogong.report import write_report
    from baogong.report.fonts import FontMissing

    try:
        day = date.fromisoformat(args.date) if args.date else datetime.now(ZoneInfo("Asia/Shanghai")).date()
    except ValueError:
        print(f"baogong report: --date {args.date!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    out = args.out or settings.state_dir / "reports"
    try:
        path = write_report(settings.database_url.get_secret_value(), day, out)
    except FontMissing as exc:
        print(f"baogong report: {exc}", file=sys.stderr)
        return 2
    print(f"report: {path.resolve()}")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from baogong.demo.run import run_demo

    return run_demo(settings, duration_s=args.duration)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baogong", description="Baogong (保供) emergency supply assurance")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("services", help="local Kafka and PostgreSQL")
    p.add_argument("action", choices=["up", "down", "status"])
    p.set_defaults(func=_services)

    p = sub.add_parser("migrate", help="apply schema migrations")
    p.add_argument(
        "--timescaledb",
        action="store_true",
        help="then convert a database set up on plain PostgreSQL to TimescaleDB, keeping its data",
    )
    p.set_defaults(func=_migrate)
    p = sub.add_parser("maintain", help="refresh rollups, delete or compress old history")
    p.add_argument("--full", action="store_true", help="plain PostgreSQL: recompute every rollup bucket")
    p.set_defaults(func=_maintain)

    p = sub.add_parser("seed", help="load reference data: the demo city, or a generated city of any size")
    p.add_argument("what", choices=["demo", "city", "history"])
    p.add_argument("--days", type=int, default=60, help="history: days of past prices and stock (default 60)")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--outlets", type=int, help="city: outlets (Suihua-size 75000, a province 300000)")
    p.add_argument("--circles", type=int, help="city: living circles (Suihua-size 120, a province 500)")
    p.add_argument("--population", type=int, help="city: residents (default: the demo city's 47 per outlet)")
    p.add_argument("--replace", action="store_true", help="city: delete the database's city and its history first")
    p.set_defaults(func=_seed)

    p = sub.add_parser("simulate", help="feed a synthetic city's reports to the API at a steady pace")
    p.add_argument("--rate", type=float, default=2000.0, help="records per second (default 2,000)")
    p.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    p.add_argument("--seed", type=int, default=2024, help="the --seed the city was seeded with (its demo keys)")
    p.set_defaults(func=_simulate)

    sub.add_parser("api", help="run the supplier HTTP API").set_defaults(func=_api)

    p = sub.add_parser("worker", help="run the Faust stream worker")
    p.add_argument("--loglevel", default="info")
    p.set_defaults(func=_worker)

    alerts = sub.add_parser("alerts", help="alert dispatcher, alert listing, acting on alerts, silences")
    alert_actions = alerts.add_subparsers(dest="action", required=True)
    alert_actions.add_parser("run", help="the alert dispatcher").set_defaults(func=_alerts)
    p = alert_actions.add_parser("list", help="recent alerts")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=_alerts)
    p = alert_actions.add_parser("log", help="who was told what, when, and whether it got through")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=_alerts)
    p.add_argument("--alert", type=int, help="log: this alert's notifications only")
    p.add_argument("--receiver", help="log: this receiver's notifications only")
    p.add_argument("--undelivered", action="store_true", help="log: queued or expired ones only")
    p.add_argument("--attempts", action="store_true", help="log: every delivery attempt too")
    cli_alerts.register(alert_actions)
    cli_alerts.register_responders(sub)

    sub.add_parser("status", help="are circle levels current? (exit 1 when stalled)").set_defaults(func=_status)

    p = sub.add_parser("push", help="send a CSV/XLSX/JSON/NDJSON file of records to the API")
    p.add_argument("file", type=Path)
    p.add_argument("--prices", action="store_true", help="the file holds prices, not stock")
    p.add_argument("--url", help="API base URL (default BAOGONG_API_URL)")
    p.add_argument("--key", help="supplier API key (default BAOGONG_API_KEY; prefer the variable)")
    p.add_argument("--batch", type=int, default=1000, help="records per request")
    p.add_argument("--show", type=int, default=20, help="rejections to print")
    p.set_defaults(func=_push)

    p = sub.add_parser("skus", help="supplier SKU maps")
    p.add_argument("action", choices=["import"])
    p.add_argument("file", type=Path)
    p.add_argument("--supplier", required=True)
    p.set_defaults(func=_skus)

    p = sub.add_parser("contract", help="the record contract as JSON Schema")
    p.add_argument("action", choices=["export"])
    p.set_defaults(func=_contract)

    cli_keys.register(sub)
    cli_emergency.register(sub)
    cli_prices.register(sub)
    cli_outlets.register(sub)
    cli_teams.register(sub)
    cli_tasks.register(sub)
    grafana_cli.register(sub)

    p = sub.add_parser("report", help="the daily situation report (HTML + PNG charts, Chinese)")
    p.add_argument("--date", help="the Asia/Shanghai day, YYYY-MM-DD (default: today, up to now)")
    p.add_argument("--out", type=Path, help="directory for the page and its charts (default .baogong/reports)")
    p.set_defaults(func=_report)

    p = sub.add_parser("demo", help="run everything on the demo city, live")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "kafka", "aiokafka"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    settings = Settings.from_env()
    func: Callable[[Settings, argparse.Namespace], int] = args.func
    try:
        return func(settings, args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: one clear line, not a traceback
        from schema.db import DatabaseError

        if isinstance(exc, DatabaseError):
            print(f"baogong: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
