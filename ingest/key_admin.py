"""Supplier API key administration: issue, rotate, revoke and list keys in `api_keys`.

Every function takes the database URL, opens one blocking connection and runs
one transaction (the operator's CLI is the caller; nothing here is async).
Only SHA-256 of a key is stored (`schema.keys`); the plaintext exists in the
`IssuedKey` returned to the caller, who shows it once and drops it.

A key is *active* while `revoked_at IS NULL OR revoked_at > now()` (database
time). A rotation revokes the old keys in the future, after a grace period,
so a supplier's ERP can switch to the new key without a gap.

Errors: `UnknownSupplier` (fix the supplier id), `InvalidKeyReference` (not a
prefix or a key), and `schema.db.DatabaseError` subclasses from the database
(retry `DatabaseUnavailable` later). Statements live in `schema/keys.sql`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from schema.db import SCHEMA_DIR, Row, connect, load_queries
from schema.keys import KEY_PREFIX, IssuedKey, new_key, parse_prefix

KEY_QUERIES = load_queries(SCHEMA_DIR / "keys.sql")

_PREFIX = re.compile(r"^[0-9a-f]{8}$")
_MAX_DRAWS = 5  # prefixes are 32 random bits: a second draw is already rare
_SAMPLE = 10


class KeyAdminError(Exception):
    """Root of key-administration errors: the operator's input was wrong; fix it and run again."""


class UnknownSupplier(KeyAdminError):
    """No supplier has this id. The message names some that exist and how to list them all."""

    def __init__(self, supplier_id: str, known: list[str], total: int) -> None:
        self.supplier_id = supplier_id
        self.known = known
        self.total = total
        if known:
            more = f" (and {total - len(known)} more)" if total > len(known) else ""
            hint = f"known suppliers: {', '.join(known)}{more}"
        else:
            hint = "there are no suppliers yet (`baogong seed demo` loads the demo city's)"
        super().__init__(
            f"unknown supplier {supplier_id!r}; {hint}. List them all with: "
            "psql \"$BAOGONG_DATABASE_URL\" -c 'SELECT id, name, kind FROM suppliers ORDER BY id'"
        )


class InvalidKeyReference(KeyAdminError):
    """Neither a key prefix (8 hex characters) nor a whole key. The message never repeats the input."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One stored key as operators see it: never the key or its hash."""

    prefix: str
    supplier_id: str
    created_at: datetime
    revoked_at: datetime | None  # in the future while a rotation's grace period runs
    active: bool  # revoked_at IS NULL OR revoked_at > now(), in database time

    @classmethod
    def from_row(cls, row: Row) -> KeyInfo:
        return cls(row["prefix"], row["supplier_id"], row["created_at"], row["revoked_at"], bool(row["active"]))


def prefix_of(reference: str) -> str:
    """The public prefix named by `reference`: a prefix itself, or a whole key (`bg_<prefix>_<secret>`).

    Raises InvalidKeyReference otherwise; its message does not contain `reference`,
    which may be a mistyped secret.
    """
    reference = reference.strip()
    if reference.startswith(KEY_PREFIX):
        prefix = parse_prefix(reference)
        if prefix is not None and _PREFIX.match(prefix):
            return prefix
    elif _PREFIX.match(reference):
        return reference
    raise InvalidKeyReference(
        "not a key prefix (8 lowercase hex characters, as `baogong keys list` shows) nor a key (bg_<prefix>_<secret>)"
    )


def _unknown_supplier(conn: psycopg.Connection[Row], supplier_id: str) -> UnknownSupplier:
    rows = conn.execute(KEY_QUERIES["supplier_sample"], {"limit": _SAMPLE}).fetchall()
    return UnknownSupplier(supplier_id, [r["id"] for r in rows], int(rows[0]["total"]) if rows else 0)


def _insert_new_key(conn: psycopg.Connection[Row], supplier_id: str) -> IssuedKey:
    for _ in range(_MAX_DRAWS):
        issued = new_key()
        row = conn.execute(
            KEY_QUERIES["insert_api_key"],
            {"prefix": issued.prefix, "supplier_id": supplier_id, "key_hash": issued.key_hash},
        ).fetchone()
        if row is not None:
            return issued
    raise RuntimeError(f"{_MAX_DRAWS} random key prefixes in a row were taken; is the random source broken?")


def create_key(url: str, supplier_id: str) -> IssuedKey:
    """Issue a new key for `supplier_id`, storing only its hash; the supplier's other keys stay active.

    The returned `IssuedKey.key` is the only copy of the plaintext: show it once,
    never log it. Raises UnknownSupplier, or a DatabaseError (nothing is written then).
    """
    with connect(url) as conn:
        if conn.execute(KEY_QUERIES["supplier_exists"], {"supplier_id": supplier_id}).fetchone() is None:
            raise _unknown_supplier(conn, supplier_id)
        return _insert_new_key(conn, supplier_id)


def rotate_key(url: str, supplier_id: str, grace: timedelta) -> IssuedKey:
    """Issue a new key for `supplier_id` and revoke its other active keys at now() + `grace`.

    One transaction: either the new key exists and the old ones are scheduled
    for revocation, or nothing changed. `grace` of zero revokes them at once;
    a key already due to be revoked sooner keeps its sooner time. Concurrent
    rotations of one supplier run one after the other (row lock on the
    supplier), so the last one's key is the one left standing. The API stops
    accepting an old key when its `revoked_at` passes (its key cache never holds
    a key past that time). Raises ValueError for a negative grace, UnknownSupplier, or a DatabaseError.
    """
    if grace < timedelta(0):
        raise ValueError(f"grace must not be negative, got {grace}")
    with connect(url) as conn:
        if conn.execute(KEY_QUERIES["lock_supplier"], {"supplier_id": supplier_id}).fetchone() is None:
            raise _unknown_supplier(conn, supplier_id)
        issued = _insert_new_key(conn, supplier_id)
        conn.execute(
            KEY_QUERIES["revoke_other_keys"],
            {"supplier_id": supplier_id, "keep_prefix": issued.prefix, "grace": grace},
        )
        return issued


def revoke_key(url: str, prefix: str) -> bool:
    """Revoke the key with public `prefix` now (also one whose rotation grace is still running).

    True if this call revoked it; False if no key has that prefix or it was
    already revoked (`key_info` tells which). Idempotent. The API stops
    accepting the key within a second (its key cache, `key_cache_s`). Raises a DatabaseError.
    """
    with connect(url) as conn:
        return conn.execute(KEY_QUERIES["revoke_key"], {"prefix": prefix}).fetchone() is not None


def key_info(url: str, prefix: str) -> KeyInfo | None:
    """The stored key with public `prefix`, or None."""
    with connect(url) as conn:
        row = conn.execute(KEY_QUERIES["key_info"], {"prefix": prefix}).fetchone()
    return None if row is None else KeyInfo.from_row(row)


def list_keys(url: str, supplier_id: str | None = None) -> list[KeyInfo]:
    """Every stored key (revoked ones too), or only `supplier_id`'s, by supplier then age.

    Carries no key material. An unknown `supplier_id` raises UnknownSupplier
    (an empty list means the supplier exists and has no keys).
    """
    with connect(url) as conn:
        if (
            supplier_id is not None
            and conn.execute(KEY_QUERIES["supplier_exists"], {"supplier_id": supplier_id}).fetchone() is None
        ):
            raise _unknown_supplier(conn, supplier_id)
        rows = conn.execute(KEY_QUERIES["list_keys"], {"supplier_id": supplier_id}).fetchall()
    return [KeyInfo.from_row(r) for r in rows]
