"""XLSX limits judged from the zip directory and a streaming scan, each just under and just over."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest

from alerts.model import Condition
from alerts.rules.refusals import evaluate
from ingest.limits import TooLarge, XlsxLimits, check_xlsx
from ingest.publisher import MAX_LETTER_BYTES, encode_letter

ROOMY = XlsxLimits(unpacked_bytes=10**9, ratio=10**6, rows=10**6, columns=10**4)


def sheet(rows: int, columns: int) -> bytes:
    out = io.BytesIO()
    pd.DataFrame([["v"] * columns] * rows, columns=[f"c{i}" for i in range(columns)]).to_excel(out, index=False)
    return out.getvalue()


def unpacked(body: bytes) -> int:
    return sum(m.file_size for m in zipfile.ZipFile(io.BytesIO(body)).infolist())


def test_unpacked_size_just_under_and_over() -> None:
    body = sheet(10, 3)
    size = unpacked(body)
    check_xlsx(body, XlsxLimits(size, ROOMY.ratio, ROOMY.rows, ROOMY.columns))
    with pytest.raises(TooLarge, match="unpacks to"):
        check_xlsx(body, XlsxLimits(size - 1, ROOMY.ratio, ROOMY.rows, ROOMY.columns))


def test_rows_and_columns_just_under_and_over() -> None:
    body = sheet(10, 3)  # 11 rows with the header
    check_xlsx(body, XlsxLimits(ROOMY.unpacked_bytes, ROOMY.ratio, 11, 3))
    with pytest.raises(TooLarge, match="more than 10 rows"):
        check_xlsx(body, XlsxLimits(ROOMY.unpacked_bytes, ROOMY.ratio, 10, 3))
    with pytest.raises(TooLarge, match="column 3"):
        check_xlsx(body, XlsxLimits(ROOMY.unpacked_bytes, ROOMY.ratio, 11, 2))


def test_a_compression_bomb_is_refused_by_its_ratio() -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/sharedStrings.xml", b"<sst>" + b"a" * 4_000_000 + b"</sst>")
    member = zipfile.ZipFile(io.BytesIO(bomb.getvalue())).infolist()[0]
    ratio = member.file_size / member.compress_size
    check_xlsx(bomb.getvalue(), XlsxLimits(ROOMY.unpacked_bytes, ratio, ROOMY.rows, ROOMY.columns))
    with pytest.raises(TooLarge, match="compressed"):
        check_xlsx(bomb.getvalue(), XlsxLimits(ROOMY.unpacked_bytes, ratio - 1, ROOMY.rows, ROOMY.columns))


def test_a_dead_letter_json_cannot_carry_is_truncated() -> None:
    deep: object = "x"
    for _ in range(300):
        deep = [deep]
    letter = encode_letter({"supplier_id": "s1", "field": "unit", "payload": {"id": "m1", "deep": deep}})
    assert b'"payload_truncated":true' in letter and b"m1" in letter
    huge = encode_letter({"supplier_id": "s1", "payload": "y" * (2 * MAX_LETTER_BYTES)})
    assert len(huge) < MAX_LETTER_BYTES and b'"payload_truncated":true' in huge
    plain = encode_letter({"supplier_id": "s1", "payload": {"a": 1}})
    assert b"payload_truncated" not in plain


def test_a_key_that_keeps_being_refused_alerts_the_operators() -> None:
    row = {"supplier_id": "s1", "supplier_name": "Chain", "key_prefix": "abcd1234", "requests": 40, "refused": 20}
    row |= {"oversize": 20, "throttled": 0, "timeout": 0, "bad_request": 0, "rejected": 0}
    assert evaluate(row, 0.5, 20, 10).condition == Condition.ACTIVE
    assert evaluate(row | {"refused": 19, "oversize": 19}, 0.5, 20, 10).condition == Condition.BAND
    assert evaluate(row | {"requests": 41}, 0.5, 20, 10).condition == Condition.BAND
    assert evaluate(row | {"refused": 9}, 0.5, 20, 10).condition == Condition.RECOVERED
    assert evaluate(row | {"requests": 0, "refused": 0}, 0.5, 20, 10).condition == Condition.RECOVERED
