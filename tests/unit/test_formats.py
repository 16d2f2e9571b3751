from __future__ import annotations

import io

import pandas as pd
import pytest

from ingest.formats import BodyError, kind_of, parse


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
