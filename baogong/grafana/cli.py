"""`baogong grafana build|sync`: the dashboards as code (baogong/grafana/dashboards.py) and pushing them."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from baogong.settings import Settings


def _build(settings: Settings, args: argparse.Namespace) -> int:
    from baogong.grafana.dashboards import write_all

    for path, changed in write_all(args.out):
        print(f"{'wrote    ' if changed else 'unchanged'} {path}")
    return 0


def _sync(settings: Settings, args: argparse.Namespace) -> int:
    from baogong.grafana.sync import DatasourceSpec, SyncRefused, load_dashboards, sync

    token = args.token or os.environ.get("BAOGONG_GRAFANA_TOKEN")
    if not token:
        print("baogong grafana sync: give --token (or BAOGONG_GRAFANA_TOKEN): a Grafana service-account token "
              "with the Admin role", file=sys.stderr)  # fmt: skip
        return 2
    db: dict[str, Any] = conninfo_to_dict(settings.database_url.get_secret_value())
    spec = DatasourceSpec(
        host=args.db_host or f"{db.get('host', '127.0.0.1')}:{db.get('port', 5432)}",
        database=args.db_name or str(db.get("dbname", "baogong")),
        password=os.environ.get("BAOGONG_GRAFANA_DB_PASSWORD"),
        sslmode=args.db_sslmode,
        timescaledb=args.timescaledb,
    )
    try:
        sync(args.url, token, spec, load_dashboards(args.dashboards), reset_password=args.reset_password)
    except SyncRefused as exc:
        print(f"baogong grafana sync: {exc}", file=sys.stderr)
        return 2
    return 0


def register(sub: Any) -> None:
    from baogong.grafana.dashboards import OUT_DIR

    p = sub.add_parser("grafana", help="dashboards as code: build the JSON, push it to a Grafana")
    actions = p.add_subparsers(dest="action", required=True)
    b = actions.add_parser("build", help="regenerate deploy/grafana/dashboards/*.json")
    b.add_argument("--out", type=Path, default=OUT_DIR)
    b.set_defaults(func=_build)
    s = actions.add_parser("sync", help="push data source, folder and dashboards to a running Grafana (by uid)")
    s.add_argument("--url", required=True, help="Grafana's base URL, e.g. http://grafana:3000")
    s.add_argument("--token", help="service-account token (default BAOGONG_GRAFANA_TOKEN; prefer the variable)")
    s.add_argument("--dashboards", type=Path, default=OUT_DIR, help="directory of dashboard JSON")
    s.add_argument("--db-host", help="host:port Grafana reaches the database at (default: BAOGONG_DATABASE_URL's)")
    s.add_argument("--db-name", help="database name (default: BAOGONG_DATABASE_URL's)")
    s.add_argument("--db-sslmode", default="disable", choices=["disable", "require", "verify-ca", "verify-full"])
    s.add_argument("--timescaledb", action="store_true", help="the database runs TimescaleDB")
    s.add_argument("--reset-password", action="store_true",
                   help="send BAOGONG_GRAFANA_DB_PASSWORD again even if nothing else changed")  # fmt: skip
    s.set_defaults(func=_sync)
