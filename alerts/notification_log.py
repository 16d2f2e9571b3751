"""The notification log: who was told what, when, and whether it got through.

Read from the outbox (`notifications`: one row per alert, receiver and
status) and its attempts (`notification_attempts`), newest first; shown by
`baogong alerts log [--alert ID] [--receiver NAME] [--undelivered] [--attempts]`.
`read` does I/O, `render` is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from schema.db import QUERIES, Row


@dataclass(frozen=True, slots=True)
class Entry:
    """One notification and, when asked for, its attempts (oldest first)."""

    notification: Row
    attempts: tuple[Row, ...] = ()


def read(
    conn: psycopg.Connection[Any],
    *,
    alert_id: int | None = None,
    receiver: str | None = None,
    undelivered: bool = False,
    attempts: bool = False,
    limit: int = 50,
) -> list[Entry]:
    """The newest `limit` notifications matching the filters; `undelivered` = queued or expired."""
    rows = conn.execute(
        QUERIES["notification_log"],
        {"alert_id": alert_id, "receiver": receiver, "undelivered": undelivered, "limit": limit},
    ).fetchall()
    by_id: dict[int, list[Row]] = {int(r["id"]): [] for r in rows}
    if attempts and rows:
        for a in conn.execute(QUERIES["notification_attempts"], {"ids": list(by_id)}).fetchall():
            by_id[int(a["notification_id"])].append(a)
    return [Entry(r, tuple(by_id[int(r["id"])])) for r in rows]


def _t(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value is not None else "-"


def outcome(n: Row) -> str:
    """Where one notification stands, in one phrase."""
    tries = f"{n['attempts']} attempt{'s' if n['attempts'] != 1 else ''}"
    if n["state"] == "delivered":
        return f"delivered {_t(n['delivered_at'])} ({tries})"
    if n["state"] == "expired":
        return f"EXPIRED {_t(n['expired_at'])} ({tries}); last error: {n['last_error'] or 'never attempted'}"
    if n["lease_owner"] is not None:
        return f"sending by {n['lease_owner']} (lease until {_t(n['leased_until'])}, {tries})"
    if n["last_error"]:
        return f"queued, retry at {_t(n['next_attempt_at'])} ({tries}); last error: {n['last_error']}"
    return "queued"


def render(entries: Sequence[Entry]) -> str:
    """The log as text, one line per notification and one indented line per attempt."""
    if not entries:
        return "no notifications match"
    lines = []
    for e in entries:
        n = e.notification
        subject = " ".join(str(x) for x in (n["rule"], n["circle_id"], n["necessity"]) if x)
        others = len(n.get("alert_ids") or ()) - 1  # a grouped page lists several alerts (alerts/group.py)
        if others > 0:
            subject += f" +{others} more"
        if n.get("reasons"):
            subject += f" [{', '.join(n['reasons'])}]"
        lines.append(
            f"{n['id']:>6} {_t(n['created_at'])}  alert {n['alert_id']} {subject} ({n['severity']})  "
            f"{n['status']:8} -> {n['receiver']}: {outcome(n)}"
        )
        for a in e.attempts:
            error = f": {a['error']}" if a["error"] else ""
            number = f"#{a['attempt']}" if a["outcome"] != "expired" else "  "
            lines.append(f"         {number} {_t(a['finished_at'])} {a['outcome']} by {a['dispatcher']}{error}")
    return "\n".join(lines)
