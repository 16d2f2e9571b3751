"""Declaring, lifting and listing emergencies; operator keys (blocking psycopg, one caller transaction).

The callers are the operator endpoints of the responder app (`alerts.emergency_http`) and
`baogong emergency …` (`baogong.cli_emergency`); each passes an open connection and the time the
action happens at (`at`: the app's clock, or the database's `now()` for the CLI), and commits.

Every declaration is a row of `emergencies` that is never changed again except to be lifted once
(migration 0019 enforces it): who, when, why and where is the audit. A declaration takes effect in the
next levels computed at or after its `declared_at` (`circle_grades(at)` in SQL, `schema.emergency`
for what a grade changes); lifting takes effect in the next levels after `lifted_at`.

Operator keys look like every Baogong key (`schema.keys`: `bg_<prefix>_<secret>`, SHA-256 stored,
shown once) but live in their own table: a supplier's or a responder's key never declares anything.

Errors: `UnknownScope` (no such district or circle: fix the scope), `EmergencyNotFound`,
`OperatorAuthError` (401 or 403), `ValueError` for a bad grade or an empty reason, and
`psycopg` errors from the database (the caller translates them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from schema.db import SCHEMA_DIR, Row, load_queries
from schema.emergency import Grade, Scope, parse_grade, rules
from schema.keys import IssuedKey, new_key, parse_prefix, verify

QUERIES = load_queries(SCHEMA_DIR / "emergencies.sql")
MAX_TEXT_CHARS = 2000
_MAX_DRAWS = 5


class UnknownScope(ValueError):
    """The district or circle named does not exist; the message names some that do."""


class EmergencyNotFound(LookupError):
    """No emergency has this id."""


class OperatorAuthError(Exception):
    """No operator can be named: `status` 401 (no, malformed or unknown key) or 403 (revoked, or a key of
    another kind: a supplier's or a responder's). The message never repeats the key."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    prefix: str  # of the key used: log-safe


@dataclass(frozen=True, slots=True)
class Emergency:
    """One declaration as stored (grade as Grade)."""

    id: int
    scope: Scope
    grade: Grade
    reason: str
    declared_by: str
    declared_at: datetime
    lifted_by: str | None = None
    lifted_at: datetime | None = None
    lift_reason: str | None = None
    active: bool | None = None  # at the time it was listed at (None: not asked)
    circles: int | None = None  # how many circles it covers (None: not asked)

    @classmethod
    def from_row(cls, r: Row) -> Emergency:
        return cls(
            int(r["id"]),
            Scope(r["scope_kind"], r["scope_id"]),
            Grade(r["grade"]),
            r["reason"],
            r["declared_by"],
            r["declared_at"],
            r["lifted_by"],
            r["lifted_at"],
            r["lift_reason"],
            r.get("active"),
            None if r.get("circles") is None else int(r["circles"]),
        )

    def as_doc(self) -> dict[str, Any]:
        """The JSON the API answers with: grade as Roman numeral and integer, times ISO 8601, and what the
        grade changes (multiplier, threshold factor, expected report cadence, alert timer factor)."""
        r = rules(self.grade)
        assert r is not None
        return {
            "id": self.id,
            "scope": str(self.scope),
            "scope_kind": self.scope.kind,
            "scope_id": self.scope.id,
            "grade": self.grade.roman,
            "grade_number": int(self.grade),
            "reason": self.reason,
            "declared_by": self.declared_by,
            "declared_at": self.declared_at.isoformat(),
            "lifted_by": self.lifted_by,
            "lifted_at": None if self.lifted_at is None else self.lifted_at.isoformat(),
            "lift_reason": self.lift_reason,
            "active": self.active,
            "circles": self.circles,
            "rules": {
                "demand_multiplier": r.demand_multiplier,
                "threshold_factor": r.threshold_factor,
                "report_every_h": r.report_every_h,
                "alert_timer_factor": r.timer_factor,
            },
        }


def _text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be empty: say why, it is the audit")
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"{what} is longer than {MAX_TEXT_CHARS} characters")
    return value


def _check_scope(conn: psycopg.Connection[Row], scope: Scope) -> None:
    if scope.kind == "district":
        if conn.execute(QUERIES["district_exists"], {"district": scope.id}).fetchone() is None:
            known = [r["district"] for r in conn.execute(QUERIES["districts"]).fetchall()]
            raise UnknownScope(f"no district {scope.id!r}; districts: {', '.join(known) or '(none recorded)'}")
    elif scope.kind == "circle" and conn.execute(QUERIES["circle_exists"], {"circle_id": scope.id}).fetchone() is None:
        raise UnknownScope(f"no circle {scope.id!r}; see `baogong status` or the circles table for their ids")


def declare(
    conn: psycopg.Connection[Row], scope: Scope, grade: Grade | int | str, reason: str, by: str, at: datetime
) -> Emergency:
    """Declare an emergency of `grade` over `scope` at `at`, by `by`; the stored row.

    Overlapping declarations are allowed (a circle at II inside a city at IV): each circle is under the
    most severe one covering it. Raises UnknownScope, ValueError (grade, empty reason or name).
    """
    _check_scope(conn, scope)
    row = conn.execute(
        QUERIES["insert_emergency"],
        {
            "scope_kind": scope.kind,
            "scope_id": scope.id,
            "grade": int(grade if isinstance(grade, Grade) else parse_grade(grade)),
            "reason": _text(reason, "the reason"),
            "declared_by": _text(by, "who declares"),
            "at": at,
        },
    ).fetchone()
    assert row is not None
    return Emergency.from_row(row)


def lift(
    conn: psycopg.Connection[Row], emergency_id: int, by: str, reason: str, at: datetime
) -> tuple[Emergency, bool]:
    """Lift emergency `emergency_id` at `at` (never before it was declared); (the row, whether this call
    lifted it). A lifted one stays lifted as it was (False). Raises EmergencyNotFound, ValueError."""
    params = {"id": emergency_id, "lifted_by": _text(by, "who lifts"), "reason": _text(reason, "the reason"), "at": at}
    row = conn.execute(QUERIES["lift_emergency"], params).fetchone()
    if row is not None:
        return Emergency.from_row(row), True
    found = conn.execute(QUERIES["emergency"], {"id": emergency_id}).fetchone()
    if found is None:
        raise EmergencyNotFound(f"no emergency {emergency_id}; `baogong emergency list --all` shows them all")
    return Emergency.from_row(found), False


def list_emergencies(conn: psycopg.Connection[Row], at: datetime, *, include_lifted: bool = False) -> list[Emergency]:
    """Emergencies active at `at` (all of them with `include_lifted`), newest first."""
    rows = conn.execute(QUERIES["list_emergencies"], {"at": at, "all": include_lifted}).fetchall()
    return [Emergency.from_row(r) for r in rows]


def circle_grades(conn: psycopg.Connection[Row], at: datetime) -> dict[str | None, Grade]:
    """The grade each circle is under at `at` (circles under none are absent); key None: the city-wide one."""
    return {r["circle_id"]: Grade(r["grade"]) for r in conn.execute(QUERIES["circle_grades"], {"at": at})}


# ---------------------------------------------------------------- operator keys


def create_operator_key(conn: psycopg.Connection[Row], name: str) -> IssuedKey:
    """A new operator key for `name` (recorded as declared_by / lifted_by); the plaintext is only in the
    returned IssuedKey: show it once."""
    name = _text(name, "the operator's name")
    for _ in range(_MAX_DRAWS):
        key = new_key()
        params = {"prefix": key.prefix, "name": name, "key_hash": key.key_hash}
        if conn.execute(QUERIES["insert_operator_key"], params).fetchone() is not None:
            return key
    raise RuntimeError(f"{_MAX_DRAWS} random key prefixes in a row were taken; is the random source broken?")


def revoke_operator_key(conn: psycopg.Connection[Row], prefix: str, at: datetime) -> bool:
    """Revoke the operator key with `prefix` at `at`; False when unknown or already revoked."""
    return conn.execute(QUERIES["revoke_operator_key"], {"prefix": prefix, "at": at}).fetchone() is not None


def list_operator_keys(conn: psycopg.Connection[Row]) -> list[Row]:
    """Every operator key (prefix, name, created_at, revoked_at): never key material."""
    return conn.execute(QUERIES["list_operator_keys"]).fetchall()


def authenticate_operator(conn: psycopg.Connection[Row], key: str | None) -> Operator:
    """The operator `key` belongs to; raises OperatorAuthError (401 or 403) saying what to fix."""
    if not key:
        raise OperatorAuthError(401, "missing key: send 'Authorization: Bearer <operator key>'")
    prefix = parse_prefix(key)
    if prefix is None:
        raise OperatorAuthError(401, "malformed key: keys look like bg_<8 hex>_<secret>")
    row = conn.execute(QUERIES["operator_key_lookup"], {"prefix": prefix}).fetchone()
    if row is None or not verify(key, row["key_hash"]):
        other = conn.execute(QUERIES["other_key_kind"], {"prefix": prefix}).fetchone()
        if other is not None:
            raise OperatorAuthError(
                403,
                f"key {prefix}… is a {other['kind']} key; emergencies need an operator key "
                "(baogong emergency key create NAME)",
            )
        raise OperatorAuthError(401, f"key {prefix}… is unknown; ask for one (baogong emergency key create NAME)")
    if row["revoked_at"] is not None:
        raise OperatorAuthError(403, f"operator key {prefix}… was revoked at {row['revoked_at']:%Y-%m-%d %H:%M %Z}")
    return Operator(row["name"], prefix)
