from __future__ import annotations

import io
import random

import pandas as pd
import pytest

from ingest.formats import BodyError, _csv_rows, _plain_csv, kind_of, parse


def test_kind_from_content_type_or_filename() -> None:
    assert kind_of("application/json; charset=utf-8") == "json"
    assert kind_of("application/x-ndjson") == "ndjson"
    assert kind_of("text/csv") == "csv"
    assert kind_of(None, "Stock.XLSX") == "xlsx"
    with pytest.raises(BodyError, match="unsupported content type 'text/plain'"):
        kind_of("text/plain")


def test_csv_cells_are_text_and_empty_cells_absent() -> None:
    parsed = parse(b"outlet_id,quantity,sold_24h\n007,12.5,\n", "csv")
    assert parsed.records == [{"outlet_id": "007", "quantity": "12.5"}]
    assert parsed.lines == [2]


def test_xlsx_rows_have_spreadsheet_line_numbers() -> None:
    buf = io.BytesIO()
    pd.DataFrame([{"outlet_id": "O1"}, {"outlet_id": "O2"}]).to_excel(buf, index=False)
    assert parse(buf.getvalue(), "xlsx").lines == [2, 3]


def test_ndjson_bad_line_is_a_rejection_not_a_failure() -> None:
    parsed = parse(b'{"a": 1}\n\nnope\n{"b": 2}\n', "ndjson")
    assert parsed.records == [{"a": 1}, {"b": 2}] and parsed.lines == [1, 4]
    assert parsed.rejected[0].line == 3


@pytest.mark.parametrize(
    ("body", "kind", "message"),
    [
        (b"", "json", "empty body"),
        (b"[]", "json", "non-empty"),
        (b"{x", "json", "not valid JSON"),
        (b"outlet_id\n", "csv", "no rows"),
        (b"PK\x03\x04garbage", "xlsx", "cannot read"),
    ],
)
def test_unusable_bodies_say_what_to_send(body: bytes, kind: str, message: str) -> None:
    with pytest.raises(BodyError, match=message):
        parse(body, kind)


SHEET = [
    {"Outlet_ID ": "007", "necessity": "rice", "quantity": "12.5", "unit": "斤", "note": "a, b"},
    {"Outlet_ID ": "O2", "necessity": "", "quantity": "3", "unit": "kg", "note": 'say "hi"'},
    {"Outlet_ID ": "O3", "necessity": "milk", "quantity": "", "unit": "L", "note": ""},
]


def test_csv_and_xlsx_of_the_same_sheet_give_the_same_records() -> None:
    frame = pd.DataFrame(SHEET)
    xlsx = io.BytesIO()
    frame.to_excel(xlsx, index=False)
    csv_body = "\ufeff" + frame.to_csv(index=False, lineterminator="\r\n")
    from_csv, from_xlsx = parse(csv_body.encode(), "csv"), parse(xlsx.getvalue(), "xlsx")
    assert from_csv.records == from_xlsx.records
    assert from_csv.lines == from_xlsx.lines == [2, 3, 4]
    assert from_csv.records[0] == {
        "outlet_id": "007",
        "necessity": "rice",
        "quantity": "12.5",
        "unit": "斤",
        "note": "a, b",
    }
    assert "necessity" not in from_csv.records[1] and from_csv.records[1]["note"] == 'say "hi"'


def test_csv_lines_count_blank_lines_and_quoted_line_breaks() -> None:
    body = b'outlet_id,note\n\nO1,"two\nlines"\n,\nO2, x\n'
    parsed = parse(body, "csv")
    assert parsed.records == [{"outlet_id": "O1", "note": "two\nlines"}, {"outlet_id": "O2", "note": "x"}]
    assert parsed.lines == [3, 6]


def test_a_csv_row_with_too_many_cells_costs_that_row_only() -> None:
    parsed = parse(b"outlet_id,quantity\nO1,5\nO2,5,7\nO3,6\n", "csv")
    assert [r["outlet_id"] for r in parsed.records] == ["O1", "O3"] and parsed.lines == [2, 4]
    (rejected,) = parsed.rejected
    assert rejected.line == 3 and "3 cells, but the header names 2 columns" in rejected.reason


def test_a_csv_that_is_not_utf8_says_how_to_save_it() -> None:
    with pytest.raises(BodyError, match="CSV UTF-8"):
        parse("outlet_id\n门店\n".encode("gbk"), "csv")


PLAIN_CSV = "Outlet_ID ,necessity,quantity,unit\r\nO1,rice, 12.5,kg\r\nO2,milk,3,L\r\n"


@pytest.mark.parametrize(
    ("variant", "lines"),
    [
        (PLAIN_CSV, [2, 3]),  # the usual export: read without a Python loop per row
        (PLAIN_CSV.replace("O2", '"O2"'), [2, 3]),  # a quote sends it through the row loop
        (PLAIN_CSV.replace("\r\nO2", "\r\n\r\nO2"), [2, 4]),  # so does a blank line
        (PLAIN_CSV.replace("O1,rice", "O1,rice,"), [3]),  # and a row wider than the header, rejected by line
    ],
)
def test_a_plain_csv_reads_the_same_on_either_path(variant: str, lines: list[int]) -> None:
    parsed = parse(variant.encode(), "csv")
    rows = {
        2: {"outlet_id": "O1", "necessity": "rice", "quantity": "12.5", "unit": "kg"},
        3: {"outlet_id": "O2", "necessity": "milk", "quantity": "3", "unit": "L"},
        4: {"outlet_id": "O2", "necessity": "milk", "quantity": "3", "unit": "L"},
    }
    assert parsed.records == [rows[n] for n in lines] and parsed.lines == lines
    assert [r.line for r in parsed.rejected] == ([2] if len(lines) == 1 else [])


def test_the_plain_csv_path_agrees_with_the_csv_reader_on_random_text() -> None:
    """Wherever `_plain_csv` takes a text, the csv reader row by row must read exactly the same."""
    rng = random.Random(2024)
    cells = ["O1", "rice", "12.5", "", " ", " x", "a b", '"q"', 'say "hi"', "\r", "\0", "门店"]
    taken = 0
    for _ in range(10_000):
        width = rng.randint(1, 4)
        header = ",".join(rng.choice(["outlet_id", " Unit ", "qty", "", "a"]) for _ in range(width))
        rows = [
            ",".join(
                rng.choice(cells) if rng.random() < 0.3 else rng.choice(cells[:3])
                for _ in range(rng.choice([width, width, width, width + 1, width - 1]))
            )
            for _ in range(rng.randint(0, 4))
        ]
        text = rng.choice(["\n", "\r\n"]).join([header, *rows]) + rng.choice(["", "\n", "\r\n", "\n\n"])
        plain = _plain_csv(text)
        if plain is None:
            continue
        taken += 1
        assert plain == _csv_rows(text), text
    assert taken > 250  # the comparison ran on plenty of texts the plain path took
