"""Limits that hold before work is done: body size while streaming, slow bodies, multipart, XLSX bombs.

Every check here runs before the expensive step it protects: the body is
counted chunk by chunk as it arrives (a chunked upload with no
Content-Length is refused at the first byte over the limit, not after it was
read whole), the whole read runs under one deadline (a client trickling
bytes holds a connection for `body_timeout_s` at most), and an XLSX file is
judged from its zip central directory and a streaming scan of its sheets
before pandas builds anything.

Failures raise `TooLarge` (answer 413: send less) or `TooSlow` (answer 408:
send faster or smaller), both carrying a sentence for the supplier; an
unreadable body raises `ingest.formats.BodyError` (answer 400).
"""

from __future__ import annotations

import asyncio
import io
import re
import zipfile
import zlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from ingest.formats import BodyError, kind_of


class TooLarge(Exception):
    """The body, or what it unpacks to, is over a limit: split it and send the parts. args[0] says which."""


class TooSlow(Exception):
    """The client did not finish sending the body within the deadline."""


@dataclass(frozen=True, slots=True)
class XlsxLimits:
    unpacked_bytes: int  # every zip member together, as the central directory declares them
    ratio: float  # the largest unpacked/packed ratio of one member (bombs are in the thousands)
    rows: int  # rows of a worksheet, header included
    columns: int  # the widest row's last column


async def bounded(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The request body chunk by chunk; raises TooLarge as soon as more than `limit` bytes arrived.

    A Content-Length over the limit is refused before anything is read.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body of {int(declared)} bytes exceeds the {limit}-byte limit")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body of more than {limit} bytes exceeds the {limit}-byte limit")
        yield chunk


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, at most `limit` bytes, read within `timeout_s`; raises TooLarge or TooSlow."""
    chunks: list[bytes] = []

    async def collect() -> None:
        async for chunk in bounded(request, limit):
            chunks.append(chunk)

    try:
        await asyncio.wait_for(collect(), timeout_s)
    except TimeoutError as exc:
        raise TooSlow(
            f"the body was not received within {timeout_s:g} s; send it faster or in smaller batches"
        ) from exc
    return b"".join(chunks)


async def read_upload(request: Request, limit: int, timeout_s: float) -> tuple[bytes, str]:
    """The `file` field of a multipart upload and its format, the whole request bounded as `read_body`.

    Raises TooLarge, TooSlow, or BodyError (no `file` field, not multipart).
    """
    parser = MultiPartParser(request.headers, bounded(request, limit), max_files=1, max_fields=16)
    try:
        form = await asyncio.wait_for(parser.parse(), timeout_s)
    except TimeoutError as exc:
        raise TooSlow(f"the upload was not received within {timeout_s:g} s; send it faster or smaller") from exc
    except MultiPartException as exc:
        raise BodyError(f"unreadable multipart upload ({exc.message}); send the file as the `file` field") from exc
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BodyError("multipart upload without a `file` field; send the spreadsheet as `file`")
        body = await upload.read()
        media = upload.content_type if upload.content_type != "application/octet-stream" else None
        return body, kind_of(media, upload.filename)
    finally:
        await form.close()


_ROW = re.compile(rb"<(?:\w+:)?row[\s>/]")
_CELL_COLUMN = re.compile(rb"<(?:\w+:)?c\s[^>]*?\br=\"([A-Z]{1,4})[0-9]+\"")
_SCAN_CHUNK = 1 << 20


def check_xlsx(body: bytes, limits: XlsxLimits) -> None:
    """Refuse an XLSX file that would unpack or parse past `limits`; raises TooLarge or BodyError.

    Sizes come from the zip central directory. They can be trusted as upper
    bounds: Python's zipfile (which openpyxl reads through) never inflates a
    member past its declared size. Rows and columns come from a streaming
    scan of each worksheet's XML (at most `unpacked_bytes` inflated, in 1 MB
    pieces, nothing kept), so a sheet of a million empty rows or a cell in
    column XFD is refused before pandas would allocate for it.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise BodyError(f"cannot read the XLSX file: it is not a zip archive ({exc})") from exc
    total = sum(m.file_size for m in members)
    if total > limits.unpacked_bytes:
        raise TooLarge(
            f"the XLSX file unpacks to {total} bytes, over the {limits.unpacked_bytes}-byte limit; "
            "split it into smaller files"
        )
    for m in members:
        if m.file_size > _SCAN_CHUNK and m.file_size > limits.ratio * max(m.compress_size, 1):
            raise TooLarge(
                f"the XLSX member {m.filename} is compressed {m.file_size / max(m.compress_size, 1):.0f}:1, "
                f"over the {limits.ratio:g}:1 limit; export the sheet again as plain XLSX"
            )
    for m in members:
        if m.filename.startswith("xl/worksheets/") and m.filename.endswith(".xml"):
            _scan_sheet(archive, m, limits)


def _scan_sheet(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limits: XlsxLimits) -> None:
    rows, widest, carry = 0, 0, b""
    try:
        with archive.open(member) as sheet:
            while chunk := sheet.read(_SCAN_CHUNK):
                text = carry + chunk
                cut = text.rfind(b">") + 1  # a tag never spans the cut: the rest waits for the next piece
                done, carry = text[:cut], text[cut:][-4096:]
                rows += len(_ROW.findall(done))
                for letters in set(_CELL_COLUMN.findall(done)):
                    widest = max(widest, _column_number(letters))
                if rows > limits.rows:
                    raise TooLarge(
                        f"sheet {member.filename} has more than {limits.rows} rows; split it into smaller files"
                    )
                if widest > limits.columns:
                    raise TooLarge(
                        f"sheet {member.filename} has a cell in column {widest}, past the {limits.columns}-column "
                        "limit; send only the record's columns"
                    )
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise BodyError(f"cannot read the XLSX file ({exc})") from exc


def _column_number(letters: bytes) -> int:
    number = 0
    for c in letters:
        number = number * 26 + (c - 64)
    return number
