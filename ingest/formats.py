"""Request bodies and files into records: JSON array, NDJSON, CSV, XLSX (pure, no I/O beyond the bytes).

`parse(body, content_type)` returns the records and, for line-oriented
formats, the line a person would look at for each record (NDJSON: line in
the body; CSV/XLSX: spreadsheet row, header = line 1). A line that cannot be
parsed at all (bad JSON on one NDJSON line) becomes a `Rejection` for that
line; it never sinks the rest. A body that is not parseable at all raises
`BodyError` with a sentence a person understands.

Every cell is read as text (no type guessing: "007" stays "007") and empty
cells are absent fields. CSV is read with the standard library's C csv
reader: pandas cost ~3 µs more per row (DataFrame construction, then rows
back out of it), a sixth of the API's whole budget per record at 50,000
records/s (tests/bench), and the csv reader lets one malformed row cost one
row: a line with more cells than the header is rejected by line, not the
file. The usual export (no quotes, blank lines or empty cells) takes a
shorter way, split in C without a Python loop per row (`_plain_csv`), and
reads exactly as the csv reader would. XLSX goes through pandas (openpyxl).
Both give the same records for the same sheet (tests/unit/test_formats.py).
"""

from __future__ import annotations

import csv
import io
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import orjson

from schema.contract import Rejection

JSON = "application/json"
NDJSON = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")
CSV = ("text/csv", "application/csv")
XLSX = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",)
SUPPORTED = f"{JSON}, {NDJSON[0]}, {CSV[0]} or {XLSX[0]}"


class BodyError(ValueError):
    """The whole body is unusable; the message says what to send instead."""


@dataclass
class Parsed:
    records: list[Any]
    lines: list[int] | None = None  # lines[i] is record i's line, for line-oriented formats
    rejected: list[Rejection] = field(default_factory=list)  # lines that were not even records


def kind_of(content_type: str | None, filename: str | None = None) -> str:
    """'json', 'ndjson', 'csv' or 'xlsx' from a media type or, failing that, a file name."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == JSON:
        return "json"
    if media in NDJSON:
        return "ndjson"
    if media in CSV:
        return "csv"
    if media in XLSX:
        return "xlsx"
    name = (filename or "").lower()
    for ext, kind in (
        (".json", "json"),
        (".ndjson", "ndjson"),
        (".jsonl", "ndjson"),
        (".csv", "csv"),
        (".xlsx", "xlsx"),
    ):
        if name.endswith(ext):
            return kind
    raise BodyError(f"unsupported content type {media or '(none)'!r}; send {SUPPORTED}")


def parse(body: bytes, kind: str) -> Parsed:
    if not body.strip():
        raise BodyError("empty body: send at least one record")
    if kind == "json":
        return _json(body)
    if kind == "ndjson":
        return _ndjson(body)
    if kind == "csv":
        return _csv(body)
    return _xlsx(body)


def _json(body: bytes) -> Parsed:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"body is not valid JSON ({exc}); send a JSON array of records") from exc
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        raise BodyError("body must be a non-empty JSON array of records")
    return Parsed(value)


def _ndjson(body: bytes) -> Parsed:
    parsed = Parsed([], [])
    assert parsed.lines is not None
    for number, raw in enumerate(body.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            parsed.rejected.append(Rejection(-1, "record", f"not valid JSON: {exc}", line=number))
            continue
        parsed.records.append(value)
        parsed.lines.append(number)
    if not parsed.records and not parsed.rejected:
        raise BodyError("no records: send one JSON object per line")
    return parsed


def _csv(body: bytes) -> Parsed:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BodyError(f'the CSV file is not UTF-8 ({exc}); save it as "CSV UTF-8" and send it again') from exc
    return _plain_csv(text) or _csv_rows(text)


def _csv_rows(text: str) -> Parsed:
    """Any CSV, row by row with the csv reader: blank lines, quoted line breaks and odd rows included."""
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    parsed = Parsed([], [])
    assert parsed.lines is not None
    records, lines = parsed.records, parsed.lines
    columns: list[str] | None = None
    width = 0
    last_line = 0
    try:
        for row in reader:
            first_line, last_line = last_line + 1, reader.line_num
            if not any(row):
                continue  # a blank line, or a row of empty cells (spreadsheet exports end with them)
            if columns is None:
                columns = _header(row)
                width = len(columns)
                continue
            if len(row) > width:
                reason = f"{len(row)} cells, but the header names {width} columns; check quotes and commas"
                parsed.rejected.append(Rejection(-1, "record", reason, line=first_line))
                continue
            records.append(_record(columns, row) if "" in row else dict(zip(columns, row, strict=False)))
            lines.append(first_line)
    except csv.Error as exc:
        raise BodyError(f"cannot read the CSV file at line {reader.line_num}: {exc}") from exc
    if columns is None:
        raise BodyError("the CSV file is empty: send a header row and at least one record")
    if not parsed.records and not parsed.rejected:
        raise BodyError("the CSV file has a header but no rows")
    return parsed


#: What makes `_plain_csv` step aside: quotes, a space the csv reader would skip at the start of a
#: cell, a lone carriage return (a line end to the csv reader), NUL (an error to it).
_NOT_PLAIN = ('"', ", ", "\n ", "\r", "\0")
_FIELD_LIMIT = csv.field_size_limit()


def _plain_csv(text: str) -> Parsed | None:
    """The usual export, read without a Python loop per row; None when it needs `_csv_rows`.

    Usual means: none of `_NOT_PLAIN` (so a row is one line, split at its
    commas, and row i of the data is line i + 2), no blank line, every row as
    wide as the header, and no empty cell. Then rows are split and zipped with
    the header in C, at a third of the csv reader's cost. Anything else goes
    through the csv reader row by row, which gives the same records wherever
    both apply (tests/unit/test_formats.py holds them together on random text).
    """
    text = text.replace("\r\n", "\n")
    if text.startswith(" ") or any(c in text for c in _NOT_PLAIN):
        return None
    rows = text.split("\n")
    if rows[-1] == "":
        rows.pop()  # the last line's newline
    if len(rows) < 2 or "" in rows or max(map(len, rows)) >= _FIELD_LIMIT:
        return None
    header = rows[0].split(",")
    if "" in header:
        return None  # a row of empty cells is no header to the row loop
    columns = _header(header)
    data = list(map(str.split, rows[1:], repeat(",")))
    if set(map(len, data)) != {len(columns)} or any(map(operator.contains, data, repeat(""))):
        return None
    records: list[Any] = list(map(dict, map(zip, repeat(columns), data)))
    return Parsed(records, list(range(2, len(records) + 2)))


def _xlsx(body: bytes) -> Parsed:
    import pandas as pd

    try:
        frame = pd.read_excel(io.BytesIO(body), dtype=str, keep_default_na=False, engine="openpyxl")
    except Exception as exc:  # pandas raises many types for unreadable input
        raise BodyError(f"cannot read the XLSX file: {exc}") from exc
    if frame.empty:
        raise BodyError("the XLSX file has a header but no rows")
    columns = _header(str(c) for c in frame.columns)
    records = [_record(columns, row) for row in frame.to_numpy().tolist()]
    return Parsed(records, list(range(2, len(records) + 2)))


def _header(cells: Iterable[str]) -> list[str]:
    """Column names as the contract spells them: trimmed, lower case."""
    return [c.strip().lower() for c in cells]


def _record(columns: list[str], row: list[str]) -> dict[str, str]:
    """A sheet row as a record; an empty cell is an absent field (a short row lacks its last fields).

    The CSV loop inlines the usual case, a row without empty cells, as `dict(zip(columns, row))`.
    """
    if "" not in row:
        return dict(zip(columns, row, strict=False))
    return {k: v for k, v in zip(columns, row, strict=False) if v != ""}
