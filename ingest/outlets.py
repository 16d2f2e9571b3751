"""The outlet registry import: an operator's CSV/XLSX list of outlets into `outlets` and `outlet_circles`.

The file has one outlet per row and the columns `id`, `name`,
`business_type`, `supplier`, `latitude`, `longitude`, `community`, and
optionally `chain` and `active` (header case and surrounding spaces do not
matter; other columns are ignored and listed). `business_type` is a
catalogue code (`supermarket`) or its Chinese or English name (`超市`).

Contract of `import_outlets`:

- A whole-file problem (unreadable file, missing column) raises
  `OutletFileError` before anything is written: fix the file and run again.
- Each row is checked on its own (`validate_rows`, pure); a bad row is
  reported by spreadsheet line (header = line 1), field and reason, and costs
  only that row: the good rows are written.
- The good rows are written in one transaction (all or none): an upsert of
  each outlet, and its `outlet_circles` recomputed — its community's circle
  plus every circle within a walk (`schema.circles`, `walk_km`) — with links no
  longer valid deleted. Outlets not in the file are left alone (an import
  adds and changes; it never deletes or deactivates by omission).
- An absent `chain` / `active` column, or an empty `active` cell, keeps the
  stored value (a new outlet: no chain, active). An empty `chain` cell clears it.
- An outlet may move to another supplier (the registry is the operator's);
  the result lists each move so the operator sees whose feed it left.
- Re-importing the same file changes nothing and reports every row unchanged.

Database errors surface as `schema.db.DatabaseError` subclasses (nothing written).
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from schema.circles import WALK_KM, haversine_km, served_circles
from schema.db import SCHEMA_DIR, Row, connect, load_queries
from schema.demo_city import Circle

QUERIES = load_queries(SCHEMA_DIR / "outlets.sql")

REQUIRED = ("id", "name", "business_type", "supplier", "latitude", "longitude", "community")
OPTIONAL = ("chain", "active")
#: A point farther than this from every circle centre is a typo, not an outlet of this city.
FAR_KM = 50.0
#: `progress` hears about validation once per this many rows.
PROGRESS_EVERY = 1_000

_TRUE = frozenset({"true", "1", "yes", "y", "t", "是"})
_FALSE = frozenset({"false", "0", "no", "n", "f", "否"})
_SWAPPED = "; latitude and longitude look swapped"


class OutletFileError(ValueError):
    """The file as a whole is unusable (unreadable, missing columns); nothing was written. The message says why."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """One problem with one row: `line` as a spreadsheet shows it (header = line 1)."""

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class OutletRow:
    """A valid row. `active` is None, and `has_chain` False, when the file does not say (keep the stored value)."""

    line: int
    id: str
    name: str
    business_type: str  # the catalogue code, whatever alias the file used
    supplier_id: str
    community_id: str
    lat: float
    lon: float
    chain: str | None  # None with has_chain: clear it
    has_chain: bool  # False: the file has no chain column, keep the stored chain
    active: bool | None
    circle_ids: tuple[str, ...]  # its community's circle first, then the others within reach, sorted


@dataclass(frozen=True, slots=True)
class Reference:
    """What a row is checked against, as loaded from the database (or built by a test)."""

    business_types: Mapping[str, str]  # code, name_zh or lower-case name_en -> code
    suppliers: frozenset[str]
    community_circle: Mapping[str, str]  # community id -> its circle id
    circles: tuple[Circle, ...]

    @property
    def codes(self) -> list[str]:
        return sorted(set(self.business_types.values()))


@dataclass(frozen=True, slots=True)
class Table:
    """A file's cells as text: normalised column names, and each non-blank row with its spreadsheet line."""

    columns: tuple[str, ...]
    rows: list[tuple[int, dict[str, str]]]


@dataclass(frozen=True, slots=True)
class Move:
    """An outlet the import gave to another supplier."""

    line: int
    outlet_id: str
    from_supplier: str
    to_supplier: str


@dataclass
class ImportResult:
    """What `import_outlets` did (or, with `dry_run`, would do)."""

    path: Path
    dry_run: bool
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)  # one per problem, in line order
    moved: list[Move] = field(default_factory=list)
    serving_several_circles: int = 0  # good rows whose outlet serves more than one circle
    ignored_columns: tuple[str, ...] = ()
    elapsed_s: float = 0.0

    @property
    def rejected_rows(self) -> int:
        return len({r.line for r in self.rejected})

    @property
    def written(self) -> int:
        """Outlets written (0 on a dry run)."""
        return 0 if self.dry_run else self.created + self.updated


# ---------------------------------------------------------------- reading (file -> text cells)


def read_table(path: Path) -> Table:
    """Read a CSV or XLSX (first sheet) with every cell as text; raise OutletFileError if it cannot be read.

    Blank rows are skipped but still counted for line numbers, so line N is row N of the spreadsheet.
    A CSV is read as UTF-8 (with or without BOM), falling back to GB18030 (Excel's default export in China).
    """
    import pandas as pd

    kind = path.suffix.lower()
    if kind not in (".csv", ".xlsx"):
        raise OutletFileError(f"{path}: unsupported file type {kind or '(none)'!r}; give a .csv or .xlsx file")
    try:
        if kind == ".csv":
            try:
                frame = _read_csv(path, "utf-8-sig")
            except UnicodeDecodeError:
                frame = _read_csv(path, "gb18030")
        else:
            frame = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
    except FileNotFoundError:
        raise OutletFileError(f"{path}: no such file") from None
    except pd.errors.EmptyDataError:
        raise OutletFileError(f"{path}: the file is empty; the first line must name the columns") from None
    except Exception as exc:  # pandas and openpyxl raise many types for unreadable input
        raise OutletFileError(f"{path}: cannot read the {kind[1:].upper()} file: {exc}") from exc
    columns = tuple(str(c).strip().lower() for c in frame.columns)
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise OutletFileError(f"{path}: column(s) {', '.join(twice)} appear more than once; keep one of each")
    frame = frame.fillna("")
    rows: list[tuple[int, dict[str, str]]] = []
    for index, values in enumerate(frame.itertuples(index=False, name=None)):
        cells = {name: str(value).strip() for name, value in zip(columns, values, strict=True)}
        if any(cells.values()):
            rows.append((index + 2, cells))
    return Table(columns, rows)


def _read_csv(path: Path, encoding: str) -> Any:
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding=encoding)


def check_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """Raise OutletFileError naming every missing required column; return the columns that will be ignored."""
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        found = ", ".join(c for c in columns if c) or "(none)"
        raise OutletFileError(
            f"missing column(s) {', '.join(missing)}; found {found}. "
            f"An outlet file needs {', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})"
        )
    return tuple(c for c in columns if c not in REQUIRED and c not in OPTIONAL)


# ---------------------------------------------------------------- validation (pure)


def _unknown(value: str, known: Iterable[str], what: str, *, list_all: bool = False) -> str:
    """`unknown 'x' (did you mean 'y'?)`, or the valid values when nothing is close and `list_all`."""
    candidates = sorted(set(known))
    close = difflib.get_close_matches(value, candidates, n=1)
    if not close:  # 'SuperMaket' is as close to 'supermarket' as 'supermaket' is
        close = difflib.get_close_matches(value.lower(), candidates, n=1)
    if close:
        return f"unknown {what}{value!r} (did you mean {close[0]!r}?)"
    if list_all:
        return f"unknown {what}{value!r}; valid: {', '.join(candidates)}"
    return f"unknown {what}{value!r}"


def _number(text: str, name: str, problems: list[tuple[str, str]]) -> float | None:
    if not text:
        problems.append((name, "empty"))
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        problems.append((name, f"{text!r} is not a number (decimal degrees, e.g. 46.65)"))
        return None
    return value


def _nearest_km(lat: float, lon: float, circles: Sequence[Circle]) -> float:
    return min(haversine_km(lat, lon, c.center_lat, c.center_lon) for c in circles)


def _check_position(
    lat: float, lon: float, lat_text: str, lon_text: str, ref: Reference, problems: list[tuple[str, str]]
) -> bool:
    """True when the point is within FAR_KM of some circle centre (or there are no circles to compare with)."""
    if not ref.circles:
        return True
    nearest = _nearest_km(lat, lon, ref.circles)
    if nearest <= FAR_KM:
        return True
    hint = ""
    if -90 <= lon <= 90 and _nearest_km(lon, lat, ref.circles) <= FAR_KM:
        hint = _SWAPPED
    problems.append(
        (
            "latitude",
            f"({lat_text}, {lon_text}) is far from every living circle (nearest centre {nearest:,.0f} km){hint}",
        )
    )
    return False


def validate_rows(
    rows: Sequence[tuple[int, Mapping[str, str]]],
    ref: Reference,
    *,
    walk_km: float = WALK_KM,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[OutletRow], list[Rejection]]:
    """Pure: the good rows (with the circles each serves) and one Rejection per problem of each bad row.

    `rows` are (spreadsheet line, cells by lower-case column name), as `read_table` gives them.
    Every field of a row is checked, so one pass shows all its problems. The first row
    with an id claims it; a later row with the same id is rejected. `progress(done, total)`
    is called every PROGRESS_EVERY rows and once at the end.
    """
    good: list[OutletRow] = []
    rejected: list[Rejection] = []
    first_line: dict[str, int] = {}
    total = len(rows)
    for done, (line, cells) in enumerate(rows, start=1):
        problems: list[tuple[str, str]] = []
        outlet_id = cells.get("id", "")
        if not outlet_id:
            problems.append(("id", "empty"))
        elif outlet_id in first_line:
            problems.append(("id", f"duplicate id {outlet_id!r} (first on line {first_line[outlet_id]})"))
        else:
            first_line[outlet_id] = line
        name = cells.get("name", "")
        if not name:
            problems.append(("name", "empty"))

        given_type = cells.get("business_type", "")
        business_type = ref.business_types.get(given_type) or ref.business_types.get(given_type.lower())
        if not given_type:
            problems.append(("business_type", "empty"))
        elif business_type is None:
            problems.append(("business_type", _unknown(given_type, ref.codes, "", list_all=True)))

        supplier = cells.get("supplier", "")
        if not supplier:
            problems.append(("supplier", "empty"))
        elif supplier not in ref.suppliers:
            problems.append(("supplier", _unknown(supplier, ref.suppliers, "supplier ")))

        community = cells.get("community", "")
        home_circle = ref.community_circle.get(community)
        if not community:
            problems.append(("community", "empty"))
        elif home_circle is None:
            problems.append(("community", _unknown(community, ref.community_circle, "community ")))

        lat_text, lon_text = cells.get("latitude", ""), cells.get("longitude", "")
        lat = _number(lat_text, "latitude", problems)
        lon = _number(lon_text, "longitude", problems)
        if lat is not None and not -90 <= lat <= 90:
            swapped = lon is not None and -90 <= lon <= 90 and -180 <= lat <= 180
            problems.append(("latitude", f"{lat:g} is out of range (-90 to 90){_SWAPPED if swapped else ''}"))
            lat = None
        if lon is not None and not -180 <= lon <= 180:
            problems.append(("longitude", f"{lon:g} is out of range (-180 to 180)"))
            lon = None
        placed = lat is not None and lon is not None and _check_position(lat, lon, lat_text, lon_text, ref, problems)

        active: bool | None = None
        active_text = cells.get("active", "").lower()
        if active_text in _TRUE:
            active = True
        elif active_text in _FALSE:
            active = False
        elif active_text:
            problems.append(("active", f"{cells['active']!r} is not one of true/false, 1/0, yes/no"))

        if problems:
            rejected.extend(Rejection(line, name_, reason) for name_, reason in problems)
        elif placed and lat is not None and lon is not None and business_type and home_circle:
            good.append(
                OutletRow(
                    line=line,
                    id=outlet_id,
                    name=name,
                    business_type=business_type,
                    supplier_id=supplier,
                    community_id=community,
                    lat=lat,
                    lon=lon,
                    chain=cells.get("chain") or None,
                    has_chain="chain" in cells,
                    active=active,
                    circle_ids=served_circles(lat, lon, home_circle, ref.circles, walk_km),
                )
            )
        if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
            progress(done, total)
    return good, rejected


# ---------------------------------------------------------------- writing


def _load_reference(conn: psycopg.Connection[Row]) -> Reference:
    types = conn.execute(QUERIES["business_types"]).fetchall()
    aliases = {r["name_en"].lower(): r["code"] for r in types} | {r["name_zh"]: r["code"] for r in types}
    aliases |= {r["code"]: r["code"] for r in types}  # a code always wins over another type's name
    return Reference(
        business_types=aliases,
        suppliers=frozenset(r["id"] for r in conn.execute(QUERIES["supplier_ids"]).fetchall()),
        community_circle={r["id"]: r["circle_id"] for r in conn.execute(QUERIES["community_circles"]).fetchall()},
        circles=tuple(Circle(**r) for r in conn.execute(QUERIES["circles"]).fetchall()),
    )


def _settle(row: OutletRow, stored: Row | None) -> tuple[Any, ...]:
    """The outlet as it will be stored: absent optional values take the stored ones (or the defaults)."""
    chain = row.chain if row.has_chain or stored is None else stored["chain"]
    active = row.active if row.active is not None else (True if stored is None else stored["active"])
    return (row.id, row.name, row.business_type, chain, row.supplier_id, row.community_id, row.lat, row.lon, active)


def _as_stored(stored: Row) -> tuple[Any, ...]:
    return tuple(
        stored[k]
        for k in ("id", "name", "business_type", "chain", "supplier_id", "community_id", "lat", "lon", "active")
    )


def import_outlets(
    url: str,
    path: Path,
    *,
    dry_run: bool = False,
    walk_km: float = WALK_KM,
    progress: Callable[[str], None] = print,
) -> ImportResult:
    """Validate `path` against the registry at `url` and write its good rows (see the module docstring).

    Blocks for the whole import (about a second for 7,000 rows). `progress` receives a line per
    PROGRESS_EVERY rows validated and per step. With `dry_run` the same checks and counts are made
    and nothing is written. Raises OutletFileError (nothing written) or schema.db.DatabaseError.
    """
    started = time.perf_counter()
    path = Path(path)
    table = read_table(path)
    result = ImportResult(path=path, dry_run=dry_run, rows_read=len(table.rows))
    result.ignored_columns = check_columns(table.columns)
    progress(f"{path}: {len(table.rows):,} rows")

    def validated(done: int, total: int) -> None:
        progress(f"validated {done:,} of {total:,} rows")

    with connect(url) as conn:
        if not dry_run:
            conn.execute(QUERIES["lock_outlets"])
        ref = _load_reference(conn)
        good, result.rejected = validate_rows(
            table.rows, ref, walk_km=walk_km, progress=validated if table.rows else None
        )
        ids = [g.id for g in good]
        stored = {r["id"]: r for r in conn.execute(QUERIES["existing_outlets"], {"ids": ids}).fetchall()}
        links = {
            r["outlet_id"]: tuple(r["circle_ids"])
            for r in conn.execute(QUERIES["existing_outlet_circles"], {"ids": ids}).fetchall()
        }
        changed: list[tuple[OutletRow, tuple[Any, ...]]] = []
        for g in good:
            before = stored.get(g.id)
            values = _settle(g, before)
            if before is None:
                result.created += 1
            elif _as_stored(before) == values and links.get(g.id, ()) == tuple(sorted(g.circle_ids)):
                result.unchanged += 1
                continue
            else:
                result.updated += 1
                if before["supplier_id"] != g.supplier_id:
                    result.moved.append(Move(g.line, g.id, before["supplier_id"], g.supplier_id))
            changed.append((g, values))
        result.serving_several_circles = sum(1 for g in good if len(g.circle_ids) > 1)
        if dry_run:
            progress("dry run: nothing written")
        elif changed:
            progress(f"writing {len(changed):,} outlets and their circles")
            _write(conn, changed)
    result.elapsed_s = time.perf_counter() - started
    return result


def _write(conn: psycopg.Connection[Row], changed: list[tuple[OutletRow, tuple[Any, ...]]]) -> None:
    with conn.cursor() as cur:
        cur.execute(QUERIES["create_import_staging"])
        with cur.copy(QUERIES["copy_import_staging"]) as copy:
            for _, values in changed:
                copy.write_row(values)
        cur.execute(QUERIES["upsert_outlets_from_import"])
        cur.execute(QUERIES["create_import_circle_staging"])
        with cur.copy(QUERIES["copy_import_circle_staging"]) as copy:
            for row, _ in changed:
                for circle_id in row.circle_ids:
                    copy.write_row((row.id, circle_id))
        cur.execute(QUERIES["delete_stale_import_circles"])
        cur.execute(QUERIES["insert_import_circles"])
