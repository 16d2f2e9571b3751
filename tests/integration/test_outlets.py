"""The outlet registry import on a real PostgreSQL: what is written, what is reported, what is left alone."""

from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from baogong.settings import Settings
from ingest import cli_outlets
from ingest.outlets import OutletFileError, import_outlets
from schema.circles import haversine_km
from schema.db import connect
from schema.demo_city import build_demo_city
from schema.seed import seed_demo, seed_reference

LAT, LON = 46.65, 126.97
COLUMNS = ("id", "name", "business_type", "supplier", "latitude", "longitude", "community")


def east(km: float) -> tuple[float, float]:
    return LAT, round(LON + km / (111.195 * math.cos(math.radians(LAT))), 6)


B_CENTRE = east(1.6)  # 1.6 km apart: a point halfway is 0.8 km from both
MIDWAY = east(0.8)


def _quiet(line: str) -> None:
    pass


@pytest.fixture
def url(database_url: str) -> str:
    """Two circles 1.6 km apart (A, B), one community in each, suppliers S01 and S02."""
    with connect(database_url) as conn:
        seed_reference(conn)
        conn.execute("INSERT INTO suppliers (id, name, kind) VALUES ('S01', 'chain', 'chain'), ('S02', 'm', 'market')")
        conn.execute(
            "INSERT INTO circles (id, name, center_lat, center_lon) VALUES ('A', 'A', %s, %s), ('B', 'B', %s, %s)",
            (LAT, LON, *B_CENTRE),
        )
        conn.execute(
            "INSERT INTO communities (id, name, street_office, population, circle_id) VALUES "
            "('A-1', 'a', 'x', 1000, 'A'), ('B-1', 'b', 'x', 1000, 'B')"
        )
    return database_url


def outlet(id: str, **fields: Any) -> dict[str, Any]:
    base = {
        "id": id,
        "name": f"shop {id}",
        "business_type": "supermarket",
        "supplier": "S01",
        "latitude": LAT,
        "longitude": LON,
        "community": "A-1",
    }
    return base | fields


GOOD = [
    outlet("O1"),
    outlet(
        "O2", business_type="pharmacy", supplier="S02", latitude=B_CENTRE[0], longitude=B_CENTRE[1], community="B-1"
    ),
    outlet("O3", business_type="超市", latitude=MIDWAY[0], longitude=MIDWAY[1]),
]


def write(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] | None = None) -> Path:
    frame = pd.DataFrame(rows, columns=list(columns) if columns else None)
    if path.suffix == ".xlsx":
        frame.to_excel(path, index=False, engine="openpyxl")
    else:
        frame.to_csv(path, index=False)
    return path


def snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    with connect(url) as conn:
        return {
            "outlets": conn.execute("SELECT * FROM outlets ORDER BY id").fetchall(),
            "outlet_circles": conn.execute("SELECT * FROM outlet_circles ORDER BY 1, 2").fetchall(),
        }


def circles_of(url: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in snapshot(url)["outlet_circles"]:
        out.setdefault(r["outlet_id"], set()).add(r["circle_id"])
    return out


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_csv_and_xlsx_import(url: str, tmp_path: Path, suffix: str) -> None:
    result = import_outlets(url, write(tmp_path / f"outlets{suffix}", GOOD), progress=_quiet)
    assert (result.rows_read, result.created, result.updated, result.unchanged, result.rejected) == (3, 3, 0, 0, [])
    rows = {r["id"]: r for r in snapshot(url)["outlets"]}
    assert set(rows) == {"O1", "O2", "O3"}
    assert rows["O2"] | {} == {
        "id": "O2",
        "name": "shop O2",
        "business_type": "pharmacy",
        "chain": None,
        "supplier_id": "S02",
        "community_id": "B-1",
        "lat": B_CENTRE[0],
        "lon": B_CENTRE[1],
        "active": True,
        "active_since": None,  # never reactivated: all its stock reports count
    }
    assert rows["O3"]["business_type"] == "supermarket", "a Chinese type name is stored as its code"
    assert circles_of(url) == {"O1": {"A"}, "O2": {"B"}, "O3": {"A", "B"}}


def test_an_outlet_between_two_centres_serves_both(url: str, tmp_path: Path) -> None:
    assert haversine_km(*MIDWAY, LAT, LON) < 1.0 and haversine_km(*MIDWAY, *B_CENTRE) < 1.0
    result = import_outlets(url, write(tmp_path / "o.csv", GOOD), progress=_quiet)
    assert circles_of(url)["O3"] == {"A", "B"}
    assert result.serving_several_circles == 1


def test_one_bad_row_costs_only_that_row(url: str, tmp_path: Path) -> None:
    rows = [*GOOD[:2], outlet("O9", business_type="supermaket", latitude="north"), GOOD[2]]
    result = import_outlets(url, write(tmp_path / "o.csv", rows), progress=_quiet)
    assert (result.rows_read, result.created, result.rejected_rows) == (4, 3, 1)
    assert [str(r) for r in result.rejected] == [
        "line 4: business_type: unknown 'supermaket' (did you mean 'supermarket'?)",
        "line 4: latitude: 'north' is not a number (decimal degrees, e.g. 46.65)",
    ]
    assert [r["id"] for r in snapshot(url)["outlets"]] == ["O1", "O2", "O3"]


def test_unknown_references_are_rejected_with_line_and_field(url: str, tmp_path: Path) -> None:
    rows = [outlet("O1", supplier="S03"), outlet("O2", community="C-1"), outlet("O1"), outlet("O4")]
    result = import_outlets(url, write(tmp_path / "o.csv", rows), progress=_quiet)
    assert [(r.line, r.field) for r in result.rejected] == [(2, "supplier"), (3, "community"), (4, "id")]
    assert "unknown supplier 'S03'" in result.rejected[0].reason
    assert [r["id"] for r in snapshot(url)["outlets"]] == ["O4"]


def test_a_missing_column_fails_and_writes_nothing(url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", GOOD, columns=("id", "name", "supplier", "latitude", "longitude"))
    with pytest.raises(OutletFileError) as exc:
        import_outlets(url, path, progress=_quiet)
    assert "missing column(s) business_type, community" in str(exc.value)
    assert "found id, name, supplier, latitude, longitude" in str(exc.value)
    assert snapshot(url) == {"outlets": [], "outlet_circles": []}


def test_reimport_is_idempotent(url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "o.xlsx", GOOD)
    import_outlets(url, path, progress=_quiet)
    before = snapshot(url)
    again = import_outlets(url, path, progress=_quiet)
    assert (again.created, again.updated, again.unchanged, again.moved) == (0, 0, 3, [])
    assert snapshot(url) == before


def test_a_move_updates_the_outlet_its_circles_and_is_reported(url: str, tmp_path: Path) -> None:
    import_outlets(url, write(tmp_path / "o.csv", GOOD), progress=_quiet)
    moved = [GOOD[0], GOOD[1], outlet("O3", supplier="S02", business_type="supermarket")]  # no longer midway
    result = import_outlets(url, write(tmp_path / "o2.csv", moved), progress=_quiet)
    assert (result.created, result.updated, result.unchanged) == (0, 1, 2)
    assert [(m.line, m.outlet_id, m.from_supplier, m.to_supplier) for m in result.moved] == [(4, "O3", "S01", "S02")]
    assert circles_of(url)["O3"] == {"A"}, "the link to B is no longer valid and is deleted"
    assert {r["id"]: r["supplier_id"] for r in snapshot(url)["outlets"]}["O3"] == "S02"


def test_circle_changes_alone_count_as_updates(url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", GOOD)
    import_outlets(url, path, progress=_quiet)
    with connect(url) as conn:
        conn.execute("DELETE FROM outlet_circles WHERE outlet_id = 'O3' AND circle_id = 'B'")
    result = import_outlets(url, path, progress=_quiet)
    assert (result.updated, result.unchanged) == (1, 2)
    assert circles_of(url)["O3"] == {"A", "B"}


def test_optional_columns_absent_keep_stored_values(url: str, tmp_path: Path) -> None:
    with_extras = [GOOD[0] | {"chain": "惠民超市", "active": "no"}, GOOD[1] | {"chain": "", "active": ""}]
    import_outlets(url, write(tmp_path / "o.csv", with_extras), progress=_quiet)
    rows = {r["id"]: r for r in snapshot(url)["outlets"]}
    assert (rows["O1"]["chain"], rows["O1"]["active"]) == ("惠民超市", False)
    assert (rows["O2"]["chain"], rows["O2"]["active"]) == (None, True)

    result = import_outlets(url, write(tmp_path / "plain.csv", GOOD[:2]), progress=_quiet)
    assert result.unchanged == 2, "no chain/active column: stored values stay"
    rows = {r["id"]: r for r in snapshot(url)["outlets"]}
    assert (rows["O1"]["chain"], rows["O1"]["active"]) == ("惠民超市", False)

    import_outlets(url, write(tmp_path / "clear.csv", [GOOD[0] | {"chain": "", "active": "1"}]), progress=_quiet)
    rows = {r["id"]: r for r in snapshot(url)["outlets"]}
    assert (rows["O1"]["chain"], rows["O1"]["active"]) == (None, True)
    # Reactivated: only stock reported from now on counts in its circles (streams/levels.py).
    since = rows["O1"]["active_since"]
    assert since is not None and rows["O2"]["active_since"] is None
    import_outlets(url, write(tmp_path / "again.csv", [GOOD[0] | {"chain": "x", "active": "yes"}]), progress=_quiet)
    assert {r["id"]: r for r in snapshot(url)["outlets"]}["O1"]["active_since"] == since, "still active: unmoved"


def test_dry_run_counts_and_writes_nothing(url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", [*GOOD, outlet("O9", business_type="supermaket")])
    result = import_outlets(url, path, dry_run=True, progress=_quiet)
    assert (result.created, result.rejected_rows, result.written, result.dry_run) == (3, 1, 0, True)
    assert snapshot(url) == {"outlets": [], "outlet_circles": []}

    import_outlets(url, write(tmp_path / "o1.csv", GOOD), progress=_quiet)
    before = snapshot(url)
    moved = import_outlets(url, write(tmp_path / "o2.csv", [outlet("O1", supplier="S02")]), dry_run=True)
    assert (moved.updated, [m.outlet_id for m in moved.moved]) == (1, ["O1"])
    assert snapshot(url) == before


# ---------------------------------------------------------------- the CLI


def run(url: str, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="baogong")
    cli_outlets.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["outlets", *argv])
    return int(args.func(Settings.from_env({}, database_url=url), args))


def test_cli_prints_the_summary_and_exits_3_on_rejections(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "o.csv", [*GOOD, outlet("O9", business_type="supermaket")])
    assert run(url, "import", str(path)) == 3
    out, err = capsys.readouterr()
    assert "4 rows read" in out
    assert re.search(r"created +3\n", out) and re.search(r"rejected +1 rows", out)
    assert "line 5: business_type: unknown 'supermaket' (did you mean 'supermarket'?)" in out
    assert "outlets serving more than one circle: 1" in out
    assert "validated 4 of 4 rows" in err

    assert run(url, "import", str(write(tmp_path / "m.csv", [outlet("O1", supplier="S02")]))) == 0
    out, _ = capsys.readouterr()
    assert "line 2: O1 S01 → S02" in out and re.search(r"moved +1 to another supplier", out)


def test_cli_dry_run_writes_nothing(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(url, "import", str(write(tmp_path / "o.xlsx", GOOD)), "--dry-run") == 0
    out, _ = capsys.readouterr()
    assert re.search(r"created +3\n", out) and "dry run: nothing was written" in out
    assert snapshot(url) == {"outlets": [], "outlet_circles": []}


def test_cli_missing_column_exits_2_and_writes_nothing(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "o.csv", GOOD, columns=COLUMNS[:-1])
    assert run(url, "import", str(path)) == 2
    _, err = capsys.readouterr()
    assert "missing column(s) community" in err and "nothing was written" in err
    assert snapshot(url) == {"outlets": [], "outlet_circles": []}


# ---------------------------------------------------------------- a city's worth


def test_seven_thousand_outlets_import_fast_with_the_seeds_circles(database_url: str, tmp_path: Path) -> None:
    seed_demo(database_url, progress=_quiet)
    with connect(database_url) as conn:
        conn.execute("DELETE FROM outlet_circles")
        conn.execute("DELETE FROM outlets")
    city = build_demo_city()
    rows = [
        {
            "ID": o.id,
            "Name": o.name,
            "Business_Type": o.business_type,
            "Supplier": o.supplier_id,
            "Latitude": o.lat,
            "Longitude": o.lon,
            "Community": o.community_id,
            "Chain": o.chain or "",
        }
        for o in city.outlets
    ]
    extra = [r | {"ID": f"X{i:05d}", "Name": f"{r['Name']}（分店）"} for i, r in enumerate(rows[: 7_000 - len(rows)])]
    path = write(tmp_path / "registry.csv", rows + extra)
    lines: list[str] = []

    started = time.perf_counter()
    result = import_outlets(database_url, path, progress=lines.append)
    elapsed = time.perf_counter() - started

    assert (result.rows_read, result.created, result.rejected) == (7_000, 7_000, [])
    assert elapsed < 3.0, f"7,000 outlets took {elapsed:.2f} s"
    assert [line for line in lines if line.startswith("validated")] == [
        f"validated {n:,} of 7,000 rows" for n in range(1_000, 8_000, 1_000)
    ]
    pairs = {(r["outlet_id"], r["circle_id"]) for r in snapshot(database_url)["outlet_circles"]}
    assert {p for p in pairs if p[0].startswith("O")} == set(city.outlet_circles()), "same circles as the seed"
    assert result.serving_several_circles == sum(1 for o in city.outlets if len(o.circle_ids) > 1) + sum(
        1 for o in city.outlets[: len(extra)] if len(o.circle_ids) > 1
    )

    started = time.perf_counter()
    again = import_outlets(database_url, path, progress=_quiet)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 7_000)
    assert time.perf_counter() - started < 3.0
