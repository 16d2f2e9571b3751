"""Connections, named queries and driver-error translation: the only module that talks psycopg.

Every SQL statement Baogong runs lives in `schema/queries.sql` as a named
block (`-- name: upsert_outlet_stock`); code refers to it as `QUERIES["..."]`.
Driver errors are translated here into `DatabaseError` subclasses that keep
the constraint name and say what the caller should do.
"""

from __future__ import annotations

import re
import struct
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.adapt import Dumper
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

SCHEMA_DIR = Path(__file__).resolve().parent
#: A row as every Baogong query returns it: column name -> value.
Row = dict[str, Any]

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


class DatabaseError(Exception):
    """Root of Baogong's database errors."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached. Retry with back-off; check BAOGONG_DATABASE_URL."""


class ConstraintViolation(DatabaseError):
    """A write broke a constraint; `constraint` names it. Do not retry the same write."""

    def __init__(self, message: str, constraint: str | None) -> None:
        super().__init__(message)
        self.constraint = constraint


def load_queries(path: Path = SCHEMA_DIR / "queries.sql") -> dict[str, sql.SQL]:
    """Parse `-- name: x` blocks of a .sql file into composable statements."""
    text = path.read_text(encoding="utf-8")
    parts = _NAME.split(text)
    queries: dict[str, sql.SQL] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{path}: query {name!r} defined twice")
        # Whole-line comments are documentation, not SQL: a placeholder named in one would be a parameter.
        code = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--"))
        queries[name] = sql.SQL(code.strip().rstrip(";"))  # type: ignore[arg-type]
    return queries


QUERIES = load_queries()


class ByteaArray:
    """A list of byte strings sent as one binary `bytea[]` parameter (`%(name)b::bytea[]`).

    psycopg's generic list dumper looks up a dumper and packs a header for
    every element; the ingest API sends two arrays of ~100 keys a request
    (ingest/claims.py), and building the array in one join cost less client
    CPU per transaction (tests/bench).
    """

    __slots__ = ("items",)

    def __init__(self, items: Sequence[bytes]) -> None:
        self.items = items


_ARRAY_HEAD = struct.Struct("!iiiii")  # dimensions, has nulls, element type, length, lower bound
_BYTEA_OID = 17
_BYTEA_ARRAY_OID = 1001


class _ByteaArrayDumper(Dumper):
    """PostgreSQL's binary array format: a header, then each element as a 4-byte length and its bytes."""

    format = pq.Format.BINARY
    oid = _BYTEA_ARRAY_OID

    def dump(self, obj: ByteaArray) -> bytes:
        items = obj.items
        if not items:
            return struct.pack("!iii", 0, 0, _BYTEA_OID)
        head = _ARRAY_HEAD.pack(1, 0, _BYTEA_OID, len(items), 1)
        return head + b"".join([len(x).to_bytes(4, "big") + x for x in items])


psycopg.adapters.register_dumper(ByteaArray, _ByteaArrayDumper)


def translate(exc: psycopg.Error) -> DatabaseError:
    """Map a psycopg error to the Baogong error that tells the caller what to do next."""
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailable(
            f"database unavailable: {exc}. Is it running? `baogong services up` starts a local one."
        )
    if isinstance(exc, psycopg.IntegrityError):
        constraint = exc.diag.constraint_name if exc.diag else None
        return ConstraintViolation(f"constraint {constraint} violated: {exc.diag.message_primary}", constraint)
    return DatabaseError(str(exc))


@contextmanager
def connect(url: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection[Row]]:
    """A blocking connection for CLI commands and tests; commits on success."""
    try:
        conn = psycopg.connect(url, autocommit=autocommit, row_factory=dict_row)
    except psycopg.Error as exc:
        raise translate(exc) from exc
    try:
        with conn:
            yield conn
    except psycopg.Error as exc:
        raise translate(exc) from exc


def make_pool(url: str, *, min_size: int = 1, max_size: int = 4) -> AsyncConnectionPool[Any]:
    """An async pool for long-running processes; open it with `await pool.open()`."""
    return AsyncConnectionPool(url, min_size=min_size, max_size=max_size, open=False, kwargs={"row_factory": dict_row})


@asynccontextmanager
async def transaction(pool: AsyncConnectionPool[Any]) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
    """One transaction from the pool; commits on success, rolls back and translates on error.

    Not in pipeline mode: for the API's two-statement transactions psycopg's
    pipeline machinery cost more CPU than the round trips it saved (tests/bench).
    """
    try:
        async with pool.connection() as conn, conn.transaction():
            yield conn
    except psycopg.Error as exc:
        raise translate(exc) from exc
