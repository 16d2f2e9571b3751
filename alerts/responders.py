"""Responder keys: a team member's own key for the responder app (`baogong responders keys …`).

A key belongs to one member of one team (`team_members`, schema/teams.py)
and looks like a supplier key (`schema.keys`: `bg_<prefix>_<secret>`, only
SHA-256 of it stored, constant-time verification). It is shown once, when
created. It authenticates while it is not revoked AND its member is still
in the team: taking someone out of the teams file disables their keys
without anyone remembering to revoke them (import again with them in and
the key works again; revoke it if that is not meant).

The responder app asks `authenticate` on every request (no cache: a revoked
key stops at once). Only a key's public prefix ever reaches a log line.
The actor a key acts as is `<team>/<member>` (`Responder.actor`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from alerts.actions import QUERIES
from schema.db import Row
from schema.keys import IssuedKey, new_key, parse_prefix, verify


class ResponderAuthError(Exception):
    """The request cannot act as anyone: `status` 401 (no, malformed or unknown key) or 403 (revoked, or
    the member left the team). The message says what to do; it never repeats the key."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UnknownMember(ValueError):
    """No such member (or the id is in several teams: name the team too, TEAM/MEMBER)."""


@dataclass(frozen=True, slots=True)
class Responder:
    team_id: str
    member_id: str
    name: str
    prefix: str  # of the key used: log-safe

    @property
    def actor(self) -> str:
        return f"{self.team_id}/{self.member_id}"


def find_member(conn: psycopg.Connection[Row], spec: str) -> Row:
    """`TEAM/MEMBER` or a `MEMBER` id found in exactly one team -> its row (team_id, member_id, name, team_name)."""
    team_id, sep, member_id = spec.strip().rpartition("/")
    rows = conn.execute(
        QUERIES["find_member"], {"member_id": member_id, "team_id": team_id if sep else None}
    ).fetchall()
    if not rows:
        raise UnknownMember(f"no member {spec!r}; see `baogong teams list` (give TEAM/MEMBER, e.g. C03-team/sun.xs)")
    if len(rows) > 1:
        teams = ", ".join(f"{r['team_id']}/{r['member_id']}" for r in rows)
        raise UnknownMember(f"{spec!r} is a member of several teams; say which: {teams}")
    return rows[0]


def create_key(conn: psycopg.Connection[Row], spec: str, created_by: str) -> tuple[IssuedKey, Row]:
    """A new key for member `spec` (find_member); the plaintext is in the IssuedKey only: show it once."""
    member = find_member(conn, spec)
    while True:
        key = new_key()
        row = conn.execute(
            QUERIES["insert_responder_key"],
            {
                "prefix": key.prefix,
                "team_id": member["team_id"],
                "member_id": member["member_id"],
                "key_hash": key.key_hash,
                "created_by": created_by,
            },
        ).fetchone()
        if row is not None:
            return key, member


def list_keys(conn: psycopg.Connection[Row], team_id: str | None = None) -> list[Row]:
    """Every key (no key material), by team and member; `member_name` None: the member left the team."""
    return conn.execute(QUERIES["list_responder_keys"], {"team_id": team_id}).fetchall()


def revoke_key(conn: psycopg.Connection[Row], prefix: str, actor: str, now: datetime) -> Row | None:
    """Revoke the key with `prefix` at `now`; None when it is unknown or already revoked."""
    return conn.execute(QUERIES["revoke_responder_key"], {"prefix": prefix, "now": now, "actor": actor}).fetchone()


def authenticate(conn: psycopg.Connection[Row], key: str | None) -> Responder:
    """The responder `key` belongs to; raises ResponderAuthError (401 or 403) saying what to fix."""
    if not key:
        raise ResponderAuthError(401, "missing key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    prefix = parse_prefix(key)
    if prefix is None:
        raise ResponderAuthError(401, "malformed key: keys look like bg_<8 hex>_<secret>")
    row = conn.execute(QUERIES["responder_key_lookup"], {"prefix": prefix}).fetchone()
    if row is None or not verify(key, row["key_hash"]):
        raise ResponderAuthError(401, f"key {prefix}… is unknown; ask an operator for one (baogong responders keys)")
    if row["revoked_at"] is not None:
        raise ResponderAuthError(
            403, f"key {prefix}… was revoked at {row['revoked_at']:%Y-%m-%d %H:%M %Z}; ask an operator for a new one"
        )
    if row["member_name"] is None:
        raise ResponderAuthError(
            403, f"key {prefix}…: {row['team_id']}/{row['member_id']} is no longer a member of the team"
        )
    return Responder(row["team_id"], row["member_id"], row["member_name"], prefix)


def check_may_act(conn: psycopg.Connection[Row], who: Responder, alert_id: int) -> None:
    """Raise ResponderAuthError(403) unless `who`'s team may act on alert `alert_id`.

    A team may act on an alert it was told about (routed or escalated to), on
    any alert of the circle it answers for (the circle's team, its owner, one
    of its communities), and, for the bureaus and the operators, on any alert.
    A missing alert passes: the action itself answers 404.
    """
    row = conn.execute(QUERIES["responder_may_act"], {"team_id": who.team_id, "alert_id": alert_id}).fetchone()
    if row is not None and not row["may_act"]:
        raise ResponderAuthError(
            403,
            f"{who.actor}: alert {alert_id} is not for {row['team_name']}; "
            "it was neither sent to your team nor is it in your circle",
        )
