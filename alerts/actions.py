"""Acting on alerts: acknowledge, resolve, comment, and silences — each one transaction, each audited.

Who acts is the caller's to say (`actor`: a responder's `team/member` from
their key, `operator:<name>` from the CLI, `link` or `link:<name>` from a
signed link; `who`, a display name, and `via`, how the action came, go into
the event's detail) and when (`now`, the caller's clock). Every change is a row in
`alert_events` (kinds acknowledged, resolved, commented) written in the same
transaction as the change, so the history never misses one and never shows
one that did not happen. Two people acting on one alert at once act one
after the other (the alert row is locked for the action).

Contract of the three actions (what HTTP answers and the CLI prints):

- `acknowledge`: a firing alert becomes `acknowledged` (who, when; the
  lifecycle stops escalating it). A pending alert has paged nobody and is
  refused (`ActionRefused`; silence it instead). Acknowledging an acknowledged
  alert is a no-op answered clearly (`changed` False, who acknowledged it
  first); a comment given then is still kept, as a `commented` event. A
  resolved alert is refused (`ActionRefused`): it is over. Acknowledging a
  shortage opens the circle's supply task (`alerts.tasks_store.open_task`,
  in the same transaction) when that module is installed.
- `resolve`: any open alert becomes `resolved` by hand (`ends_at`,
  `resolved_by`). Resolving a resolved alert is a no-op answered clearly.
  If the condition still holds, the next evaluation opens it again (W).
- `comment`: a note on any alert, open or resolved (after-action review).

Unknown alert: `AlertNotFound`. Bad input (empty comment, too long): ValueError.
Database errors come as psycopg errors; `schema.db.connect` and the HTTP app
translate them. Functions take a blocking `psycopg.Connection` (the CLI's,
or one from the responder app's pool in a worker thread): each opens a
transaction block on it (a savepoint inside the caller's transaction).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alerts.rules.shortage import RULE as SHORTAGE_RULE
from alerts.silence import Silence, SilenceMatcher, check, from_row
from schema.db import SCHEMA_DIR, Row, load_queries

log = logging.getLogger(__name__)
QUERIES = load_queries(SCHEMA_DIR / "actions.sql")
MAX_TEXT_CHARS = 2000
MAX_ACTOR_CHARS = 200


class ActionError(Exception):
    """Root of the errors of acting on alerts; the message says what to do instead."""


class AlertNotFound(ActionError):
    """No alert with that id: check it (`baogong alerts list`, GET /v1/alerts)."""


class ActionRefused(ActionError):
    """The action makes no sense in the alert's `state` (e.g. acknowledging a resolved alert). Do not retry."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


class SilenceNotFound(ActionError):
    """No silence with that id (`baogong alerts silence list --all`)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action did. `changed` False: nothing needed doing (said in `message`)."""

    alert_id: int
    action: str  # acknowledge | resolve | comment
    changed: bool
    state: str  # the alert's state afterwards
    message: str
    event_id: int | None = None
    task_id: int | None = None
    by: str | None = None  # who acknowledged / resolved it (maybe someone else, earlier)
    at: datetime | None = None  # when

    def as_doc(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "action": self.action,
            "changed": self.changed,
            "state": self.state,
            "message": self.message,
            "event_id": self.event_id,
            "task_id": self.task_id,
            "by": self.by,
            "at": self.at.isoformat() if self.at else None,
        }


def _actor(actor: str) -> str:
    actor = actor.strip()
    if not actor:
        raise ValueError("who acts must be said (actor)")
    if len(actor) > MAX_ACTOR_CHARS:
        raise ValueError(f"actor longer than {MAX_ACTOR_CHARS} characters")
    return actor


def _text(text: str | None, what: str, required: bool = False) -> str | None:
    text = (text or "").strip()
    if not text:
        if required:
            raise ValueError(f"the {what} is empty; say something")
        return None
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the {what} is longer than {MAX_TEXT_CHARS} characters")
    return text


def _when(at: datetime | None) -> str:
    return f" at {at:%Y-%m-%d %H:%M:%S %Z}" if at else ""


def _locked(conn: psycopg.Connection[Row], alert_id: int) -> Row:
    row = conn.execute(QUERIES["alert_for_action"], {"id": alert_id}).fetchone()
    if row is None:
        raise AlertNotFound(f"no alert {alert_id}; list open alerts with `baogong alerts list` or GET /v1/alerts")
    return row


def record_event(
    conn: psycopg.Connection[Row], alert_id: int, kind: str, actor: str | None, at: datetime, detail: Mapping[str, Any]
) -> int:
    """Append one `alert_events` row (in the caller's transaction); its id."""
    row = conn.execute(
        QUERIES["insert_alert_event"],
        {"alert_id": alert_id, "at": at, "kind": kind, "actor": actor, "detail": Jsonb(dict(detail))},
    ).fetchone()
    assert row is not None
    return int(row["id"])


def _detail(via: str, who: str | None, **extra: Any) -> dict[str, Any]:
    """An event's detail: how the action came (`via`: http, link, cli), the actor's name, and the rest."""
    return {"via": via, **{k: v for k, v in {"name": who, **extra}.items() if v is not None}}


def acknowledge(
    conn: psycopg.Connection[Row],
    alert_id: int,
    actor: str,
    now: datetime,
    comment: str | None = None,
    *,
    via: str = "api",
    who: str | None = None,
) -> Outcome:
    """Acknowledge alert `alert_id` as `actor` at `now` (see the module contract)."""
    actor, note = _actor(actor), _text(comment, "comment")
    with conn.transaction():
        alert = _locked(conn, alert_id)
        state = alert["state"]
        if state == "resolved":
            raise ActionRefused(
                f"alert {alert_id} is already resolved{_when(alert['ends_at'])}"
                f"{' by ' + alert['resolved_by'] if alert.get('resolved_by') else ''}; nothing to acknowledge",
                state,
            )
        if state == "pending":
            raise ActionRefused(
                f"alert {alert_id} has not fired yet (pending since {alert['pending_since']:%Y-%m-%d %H:%M:%S %Z}): "
                "nobody was paged; silence it if it must not page",
                state,
            )
        if state == "acknowledged":
            event_id = (
                record_event(conn, alert_id, "commented", actor, now, _detail(via, who, text=note)) if note else None
            )
            return Outcome(
                alert_id,
                "acknowledge",
                False,
                state,
                f"alert {alert_id} was already acknowledged by {alert['acknowledged_by']}"
                f"{_when(alert['acknowledged_at'])}; nothing changed" + ("; your comment was kept" if note else ""),
                event_id,
                by=alert["acknowledged_by"],
                at=alert["acknowledged_at"],
            )
        conn.execute(QUERIES["acknowledge_alert"], {"id": alert_id, "now": now, "actor": actor})
        event_id = record_event(conn, alert_id, "acknowledged", actor, now, _detail(via, who, comment=note, was=state))
        task_id, no_task = _open_task(conn, alert_id, now) if alert["rule"] == SHORTAGE_RULE else (None, None)
    message = f"alert {alert_id} acknowledged by {actor}"
    if task_id is not None:
        message += f"; supply task {task_id} opened"
    elif no_task:
        message += f"; no supply task opened ({no_task})"
    return Outcome(alert_id, "acknowledge", True, "acknowledged", message, event_id, task_id, actor, now)


def resolve(
    conn: psycopg.Connection[Row],
    alert_id: int,
    actor: str,
    now: datetime,
    comment: str | None = None,
    *,
    via: str = "api",
    who: str | None = None,
) -> Outcome:
    """Resolve alert `alert_id` by hand as `actor` at `now` (see the module contract)."""
    actor, note = _actor(actor), _text(comment, "comment")
    with conn.transaction():
        alert = _locked(conn, alert_id)
        if alert["state"] == "resolved":
            by = alert.get("resolved_by")
            return Outcome(
                alert_id,
                "resolve",
                False,
                "resolved",
                f"alert {alert_id} was already resolved{_when(alert['ends_at'])}"
                f"{' by ' + by if by else ' (the level recovered)'}; nothing changed",
                by=by,
                at=alert["ends_at"],
            )
        conn.execute(QUERIES["resolve_alert"], {"id": alert_id, "now": now, "actor": actor})
        event_id = record_event(
            conn, alert_id, "resolved", actor, now, _detail(via, who, comment=note, manual=True, was=alert["state"])
        )
    return Outcome(
        alert_id, "resolve", True, "resolved", f"alert {alert_id} resolved by {actor}", event_id, None, actor, now
    )


def comment(
    conn: psycopg.Connection[Row],
    alert_id: int,
    actor: str,
    now: datetime,
    text: str,
    *,
    via: str = "api",
    who: str | None = None,
) -> Outcome:
    """Add `text` to alert `alert_id`'s history as `actor` at `now` (any state: notes for the review too)."""
    actor, note = _actor(actor), _text(text, "comment", required=True)
    with conn.transaction():
        alert = _locked(conn, alert_id)
        event_id = record_event(conn, alert_id, "commented", actor, now, _detail(via, who, text=note))
    return Outcome(alert_id, "comment", True, alert["state"], f"comment added to alert {alert_id}", event_id, by=actor)


def _open_task(conn: psycopg.Connection[Row], alert_id: int, now: datetime) -> tuple[int | None, str | None]:
    """S's supply task for an acknowledged shortage, opened in this transaction: (task id, why not).

    Without the tasks module: (None, None). A task that cannot be opened
    (a `TaskError`, or a database error inside its own savepoint) does not undo
    the acknowledgement: the team must stop being escalated either way; why is
    logged and returned.
    """
    try:
        tasks_store = importlib.import_module("alerts.tasks_store")
    except ModuleNotFoundError as exc:
        if exc.name != "alerts.tasks_store":
            raise
        return None, None
    task_error: type[Exception] = getattr(importlib.import_module("alerts.tasks"), "TaskError", ActionError)
    try:
        with conn.transaction():
            task = tasks_store.open_task(conn, alert_id, now)
    except (task_error, psycopg.Error) as exc:
        log.warning("alert %s acknowledged, supply task not opened: %s", alert_id, exc)
        return None, str(exc)
    task_id = getattr(task, "id", task)
    return (int(task_id) if task_id is not None else None), None


# ---------------------------------------------------------------- reading


def alert_with_history(conn: psycopg.Connection[Row], alert_id: int) -> tuple[Row, list[Row]]:
    """The alert row (every column) and its `alert_events`, oldest first. Raises AlertNotFound."""
    alert = conn.execute(QUERIES["alert_detail"], {"id": alert_id}).fetchone()
    if alert is None:
        raise AlertNotFound(f"no alert {alert_id}; list open alerts with `baogong alerts list` or GET /v1/alerts")
    return alert, conn.execute(QUERIES["alert_history"], {"id": alert_id}).fetchall()


ALERT_STATES = ("open", "all", "pending", "firing", "acknowledged", "resolved")


def list_alerts(
    conn: psycopg.Connection[Row],
    *,
    state: str = "open",
    circle: str | None = None,
    necessity: str | None = None,
    rule: str | None = None,
    severity: str | None = None,
    limit: int = 100,
) -> list[Row]:
    """Alerts newest first; `state` 'open' (not resolved), 'all', or one state. ValueError on a bad filter."""
    if state not in ALERT_STATES:
        raise ValueError(f"state {state!r}: one of {', '.join(ALERT_STATES)}")
    params = {
        "state": state,
        "circle": circle,
        "necessity": necessity,
        "rule": rule,
        "severity": severity,
        "limit": max(1, min(limit, 1000)),
    }
    return conn.execute(QUERIES["list_alerts"], params).fetchall()


# ---------------------------------------------------------------- silences


def create_silence(
    conn: psycopg.Connection[Row],
    matchers: Iterable[SilenceMatcher],
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str,
    now: datetime,
) -> Silence:
    """Store a silence (checked by `alerts.silence.check`: ValueError saying why when it cannot be meant)."""
    ms = tuple(matchers)
    created_by = _actor(created_by)
    check(ms, starts_at, ends_at, comment)
    row = conn.execute(
        QUERIES["insert_silence"],
        {
            "matchers": Jsonb([m.as_doc() for m in ms]),
            "starts_at": starts_at,
            "ends_at": ends_at,
            "created_by": created_by,
            "comment": comment.strip(),
            "now": now,
        },
    ).fetchone()
    assert row is not None
    return from_row(row)


def expire_silence(conn: psycopg.Connection[Row], silence_id: int, actor: str, now: datetime) -> tuple[Silence, bool]:
    """End silence `silence_id` at `now` as `actor`; (the silence, whether this call ended it).

    Expiring an ended silence changes nothing (False). Raises SilenceNotFound.
    """
    actor = _actor(actor)
    with conn.transaction():
        row = conn.execute(QUERIES["silence_by_id"], {"id": silence_id}).fetchone()
        if row is None:
            raise SilenceNotFound(f"no silence {silence_id}; see `baogong alerts silence list --all`")
        expired = conn.execute(QUERIES["expire_silence"], {"id": silence_id, "now": now, "actor": actor}).fetchone()
    return from_row(expired or row), expired is not None


def list_silences(
    conn: psycopg.Connection[Row], now: datetime, *, include_ended: bool = False, limit: int = 200
) -> list[Silence]:
    """Silences not yet ended at `now` (active and pending), oldest first; with `include_ended`, the newest `limit`."""
    if include_ended:
        rows = conn.execute(QUERIES["all_silences"], {"limit": limit}).fetchall()
    else:
        rows = conn.execute(QUERIES["current_silences"], {"now": now}).fetchall()
    return [from_row(r) for r in rows]


async def current_silences_async(conn: psycopg.AsyncConnection[Row], now: datetime) -> list[Silence]:
    """Active and pending silences at `now`, on an async connection: what the dispatcher passes to `silenced`."""
    cur = await conn.execute(QUERIES["current_silences"], {"now": now})
    return [from_row(r) for r in await cur.fetchall()]
