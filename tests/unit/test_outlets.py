"""The outlet registry file: reading it as text cells and checking each row (pure, no database)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from ingest.outlets import (
    FAR_KM,
    OutletFileError,
    Reference,
    Rejection,
    check_columns,
    read_table,
    validate_rows,
)
from schema.catalogue import BUSINESS_TYPES
from schema.circles import haversine_km
from schema.demo_city import Circle

LAT, LON = 46.65, 126.97


def east(km: float, lat: float = LAT, lon: float = LON) -> tuple[float, float]:
    """The point `km` east of (lat, lon)."""
    return lat, lon + km / (111.195 * math.cos(math.radians(lat)))


def north(km: float, lat: float = LAT, lon: float = LON) -> tuple[float, float]:
    return lat + km / 111.195, lon


def _circle(id: str, point: tuple[float, float]) -> Circle:
    return Circle(id=id, name=id, center_lat=point[0], center_lon=point[1], owner="", team="")


@pytest.fixture
def ref() -> Reference:
    """Circles A, B (1.6 km east of A) and C (3 km north of A); one community in each."""
    types = {b.code: b.code for b in BUSINESS_TYPES}
    types |= {b.name_zh: b.code for b in BUSINESS_TYPES} | {b.name_en.lower(): b.code for b in BUSINESS_TYPES}
    return Reference(
        business_types=types,
        suppliers=frozenset({"S01", "S02"}),
        community_circle={"A-1": "A", "B-1": "B", "C-1": "C"},
        circles=(_circle("A", (LAT, LON)), _circle("B", east(1.6)), _circle("C", north(3.0))),
    )


def row(line: int = 2, **cells: object) -> tuple[int, dict[str, str]]:
    base = {
        "id": "O1",
        "name": "惠民超市1号店",
        "business_type": "supermarket",
        "supplier": "S01",
        "latitude": str(LAT),
        "longitude": str(LON),
        "community": "A-1",
    }
    base.update({k: str(v) for k, v in cells.items()})
    return line, base


def reasons(rejected: list[Rejection]) -> list[str]:
    return [str(r) for r in rejected]


def test_a_good_row_serves_its_communitys_circle(ref: Reference) -> None:
    good, rejected = validate_rows([row()], ref)
    assert rejected == []
    (o,) = good
    assert (o.id, o.business_type, o.supplier_id, o.community_id, o.lat, o.lon) == (
        "O1",
        "supermarket",
        "S01",
        "A-1",
        LAT,
        LON,
    )
    assert o.circle_ids == ("A",)
    assert (o.chain, o.has_chain, o.active) == (None, False, None), "absent optional columns keep stored values"


def test_an_outlet_between_two_centres_serves_both_its_own_first(ref: Reference) -> None:
    lat, lon = east(0.8)
    assert haversine_km(lat, lon, LAT, LON) < 1.0 and haversine_km(lat, lon, *east(1.6)) < 1.0
    good, _ = validate_rows([row(latitude=lat, longitude=lon, community="B-1")], ref)
    assert good[0].circle_ids == ("B", "A")


def test_a_community_far_from_its_circle_still_serves_that_circle(ref: Reference) -> None:
    lat, lon = north(3.0)  # at C's centre, but registered in A's community
    good, _ = validate_rows([row(latitude=lat, longitude=lon)], ref)
    assert good[0].circle_ids == ("A", "C")


def test_unknown_business_type_suggests_the_closest(ref: Reference) -> None:
    good, rejected = validate_rows([row(7, business_type="supermaket")], ref)
    assert good == []
    assert reasons(rejected) == ["line 7: business_type: unknown 'supermaket' (did you mean 'supermarket'?)"]


def test_unknown_business_type_with_nothing_close_lists_the_codes(ref: Reference) -> None:
    _, (rej,) = validate_rows([row(business_type="zzz")], ref)
    assert rej.field == "business_type"
    assert rej.reason.startswith("unknown 'zzz'; valid: ")
    assert all(b.code in rej.reason for b in BUSINESS_TYPES)


@pytest.mark.parametrize("given", ["supermarket", "Supermarket", " SUPERMARKET", "超市"])
def test_business_type_by_code_any_case_or_chinese_name(ref: Reference, given: str) -> None:
    line, cells = row()
    cells["business_type"] = given.strip()  # read_table strips cells
    good, rejected = validate_rows([(line, cells)], ref)
    assert rejected == [] and good[0].business_type == "supermarket"


def test_unknown_supplier_and_community_are_named_with_a_suggestion(ref: Reference) -> None:
    _, rejected = validate_rows([row(3, supplier="S1", community="A-2")], ref)
    assert reasons(rejected) == [
        "line 3: supplier: unknown supplier 'S1' (did you mean 'S01'?)",
        "line 3: community: unknown community 'A-2' (did you mean 'A-1'?)",
    ]


@pytest.mark.parametrize(
    ("cells", "field", "reason"),
    [
        ({"latitude": "46,65"}, "latitude", "'46,65' is not a number"),
        ({"latitude": "nan"}, "latitude", "'nan' is not a number"),
        ({"latitude": ""}, "latitude", "empty"),
        ({"longitude": "east"}, "longitude", "'east' is not a number"),
        ({"latitude": "95"}, "latitude", "95 is out of range (-90 to 90)"),
        ({"longitude": "-181"}, "longitude", "-181 is out of range (-180 to 180)"),
        (
            {"latitude": str(LON), "longitude": str(LAT)},
            "latitude",
            "126.97 is out of range (-90 to 90); latitude and longitude look swapped",
        ),
        ({"latitude": "39.9", "longitude": "116.4"}, "latitude", "is far from every living circle"),
        ({"id": ""}, "id", "empty"),
        ({"name": ""}, "name", "empty"),
        ({"active": "maybe"}, "active", "'maybe' is not one of true/false"),
    ],
)
def test_bad_fields_are_rejected_with_field_and_reason(
    ref: Reference, cells: dict[str, str], field: str, reason: str
) -> None:
    good, rejected = validate_rows([row(5, **cells)], ref)
    assert good == []
    assert [(r.line, r.field) for r in rejected] == [(5, field)]
    assert reason in rejected[0].reason


def test_far_from_every_circle_says_how_far(ref: Reference) -> None:
    _, (far,) = validate_rows([row(latitude="39.9", longitude="116.4")], ref)  # Beijing
    assert far.reason.startswith("(39.9, 116.4) is far from every living circle (nearest centre 1,")
    assert "swapped" not in far.reason
    assert int(far.reason.split("nearest centre ")[1].split(" km")[0].replace(",", "")) > FAR_KM


def test_far_from_every_circle_spots_a_swap_when_both_readings_are_valid(ref: Reference) -> None:
    # A city where both numbers are valid latitudes: only the swapped reading is in it.
    southern = Reference(ref.business_types, ref.suppliers, {"A-1": "A"}, (_circle("A", (-33.9, 18.4)),))
    _, (far,) = validate_rows([row(latitude="18.4", longitude="-33.9")], southern)
    assert far.field == "latitude" and far.reason.endswith("; latitude and longitude look swapped")


def test_every_problem_of_a_row_is_reported_at_once(ref: Reference) -> None:
    _, rejected = validate_rows([row(4, business_type="supermaket", supplier="S99", latitude="x")], ref)
    assert [r.field for r in rejected] == ["business_type", "supplier", "latitude"]
    assert {r.line for r in rejected} == {4}


def test_a_later_row_with_the_same_id_is_rejected_naming_the_first(ref: Reference) -> None:
    good, rejected = validate_rows([row(2), row(3, name="other"), row(4, id="O2")], ref)
    assert [g.id for g in good] == ["O1", "O2"]
    assert reasons(rejected) == ["line 3: id: duplicate id 'O1' (first on line 2)"]


def test_one_bad_row_costs_only_that_row(ref: Reference) -> None:
    rows = [row(2, id="O1"), row(3, id="O2", business_type="nope"), row(4, id="O3")]
    good, rejected = validate_rows(rows, ref)
    assert [g.id for g in good] == ["O1", "O3"] and {r.line for r in rejected} == {3}


@pytest.mark.parametrize(
    ("text", "active"), [("true", True), ("1", True), ("Yes", True), ("FALSE", False), ("0", False), ("no", False)]
)
def test_active_accepts_true_false_one_zero_yes_no(ref: Reference, text: str, active: bool) -> None:
    good, _ = validate_rows([row(active=text)], ref)
    assert good[0].active is active


def test_an_empty_chain_cell_clears_the_chain(ref: Reference) -> None:
    (named, empty), _ = validate_rows([row(2, chain="惠民超市"), row(3, id="O2", chain="")], ref)
    assert (named.chain, named.has_chain) == ("惠民超市", True)
    assert (empty.chain, empty.has_chain) == (None, True)


def test_progress_every_thousand_rows_and_at_the_end(ref: Reference) -> None:
    calls: list[tuple[int, int]] = []
    rows = [row(i + 2, id=f"O{i}") for i in range(2_500)]
    good, _ = validate_rows(rows, ref, progress=lambda done, total: calls.append((done, total)))
    assert len(good) == 2_500
    assert calls == [(1_000, 2_500), (2_000, 2_500), (2_500, 2_500)]


# ---------------------------------------------------------------- columns and files


def test_missing_columns_are_named_with_what_was_found() -> None:
    with pytest.raises(OutletFileError) as exc:
        check_columns(("id", "name", "type", "supplier", "lat", "lng", "community"))
    message = str(exc.value)
    assert "missing column(s) business_type, latitude, longitude" in message
    assert "found id, name, type, supplier, lat, lng, community" in message


def test_unknown_columns_are_ignored_and_reported() -> None:
    columns = ("id", "name", "business_type", "supplier", "latitude", "longitude", "community", "chain", "remark")
    assert check_columns(columns) == ("remark",)


def test_csv_lines_count_like_a_spreadsheet(tmp_path: Path) -> None:
    path = tmp_path / "outlets.csv"
    path.write_text(" ID ,Name,Latitude\nO1,a,46.65\n\nO2,b,007\n,,\n", encoding="utf-8-sig")
    table = read_table(path)
    assert table.columns == ("id", "name", "latitude")
    assert table.rows == [
        (2, {"id": "O1", "name": "a", "latitude": "46.65"}),
        (4, {"id": "O2", "name": "b", "latitude": "007"}),
    ]


def test_csv_exported_by_a_chinese_excel_reads(tmp_path: Path) -> None:
    path = tmp_path / "outlets.csv"
    path.write_bytes("id,name\nO1,惠民超市\n".encode("gb18030"))
    assert read_table(path).rows == [(2, {"id": "O1", "name": "惠民超市"})]


def test_xlsx_cells_are_text_and_lines_count_like_a_spreadsheet(tmp_path: Path) -> None:
    path = tmp_path / "outlets.xlsx"
    frame = pd.DataFrame({"ID": ["O1", None, 42], "latitude": [46.65, None, 46.7], "active": [True, None, False]})
    frame.to_excel(path, index=False)
    table = read_table(path)
    assert table.columns == ("id", "latitude", "active")
    assert table.rows == [
        (2, {"id": "O1", "latitude": "46.65", "active": "True"}),
        (4, {"id": "42", "latitude": "46.7", "active": "False"}),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("outlets.json", b"[]", "unsupported file type '.json'"),
        ("outlets.csv", b"", "the file is empty"),
        ("outlets.csv", b"id,ID\n1,2\n", "column(s) id appear more than once"),
        ("outlets.xlsx", b"not a zip", "cannot read the XLSX file"),
    ],
)
def test_unusable_files_say_why(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(OutletFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_table(path)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(OutletFileError, match="no such file"):
        read_table(tmp_path / "nope.csv")
