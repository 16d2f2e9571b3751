"""`baogong outlets import FILE`: load the operator's outlet registry (CSV/XLSX) into the database.

    baogong outlets import FILE [--dry-run] [--show N]

Progress goes to stderr; the summary (rows read, created, updated,
unchanged, rejected with line, field and reason, outlets moved to another
supplier, outlets serving more than one circle) to stdout. Exit status: 0 when
every row was good, 3 when some rows were rejected (the good ones were
written), 2 when the file as a whole is unusable (nothing written).
`--dry-run` makes every check and count and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from baogong.settings import Settings
from ingest.outlets import ImportResult, OutletFileError, import_outlets

USAGE_ERROR = 2
SOME_REJECTED = 3
DEFAULT_SHOW = 100


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def summary(result: ImportResult, show: int = DEFAULT_SHOW) -> list[str]:
    """The lines `outlets import` prints; `show` caps the rejections listed (0: all)."""
    dry = " (dry run: what an import would do)" if result.dry_run else ""
    lines = [f"{result.path}: {result.rows_read:,} rows read{dry}"]
    lines += [
        f"  {label:<10} {count:>7,}{note}"
        for label, count, note in (
            ("created", result.created, ""),
            ("updated", result.updated, ""),
            ("unchanged", result.unchanged, ""),
            ("rejected", result.rejected_rows, " rows"),
            ("moved", len(result.moved), " to another supplier (counted in updated)"),
        )
    ]
    lines.append(f"  outlets serving more than one circle: {result.serving_several_circles:,}")
    if result.ignored_columns:
        lines.append(f"  ignored columns: {', '.join(result.ignored_columns)}")
    if result.rejected:
        then = "" if result.dry_run else "; the good rows are in"
        lines.append(f"rejected (fix these rows and import the file again{then}):")
        listed = result.rejected if show <= 0 else result.rejected[:show]
        lines += [f"  {r}" for r in listed]
        if len(listed) < len(result.rejected):
            lines.append(f"  … and {len(result.rejected) - len(listed):,} more (--show 0 lists them all)")
    if result.moved:
        lines.append("moved to another supplier (its old supplier's key no longer reports for it):")
        lines += [f"  line {m.line}: {m.outlet_id} {m.from_supplier} → {m.to_supplier}" for m in result.moved]
    if result.dry_run:
        lines.append(f"dry run: nothing was written ({result.elapsed_s:.2f} s)")
    else:
        lines.append(f"{result.written:,} outlets written in {result.elapsed_s:.2f} s")
    return lines


def _import(settings: Settings, args: argparse.Namespace) -> int:
    try:
        result = import_outlets(
            settings.database_url.get_secret_value(),
            args.file,
            dry_run=args.dry_run,
            walk_km=settings.circle_walk_km,
            progress=_progress,
        )
    except OutletFileError as exc:
        print(f"baogong outlets import: {exc}; nothing was written", file=sys.stderr)
        return USAGE_ERROR
    for line in summary(result, args.show):
        print(line)
    return SOME_REJECTED if result.rejected else 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `outlets` and its actions to the `baogong` subcommands; each sets `func(settings, args) -> int`."""
    outlets = sub.add_parser("outlets", help="the outlet registry: import a CSV/XLSX")
    actions = outlets.add_subparsers(dest="action", required=True)

    p = actions.add_parser(
        "import",
        help="add and update outlets from a CSV/XLSX (id, name, business_type, supplier, latitude, longitude, "
        "community; optional chain, active)",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--dry-run", action="store_true", help="check the file and print the summary; write nothing")
    p.add_argument(
        "--show",
        type=int,
        default=DEFAULT_SHOW,
        metavar="N",
        help=f"rejections to list ({DEFAULT_SHOW}; 0: all)",
    )
    p.set_defaults(func=_import)
