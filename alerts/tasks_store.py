"""Supply tasks in the database: open one on acknowledgement, move it by hand, close it on recovery.

Every function runs in the CALLER's transaction (it never commits), so an
acknowledgement and the task it opens commit together (`alerts.actions`),
and closing tasks is part of an evaluation (`alerts.evaluate`). Each comes
twice: for a blocking `psycopg.Connection` (CLI, tests) and, with the
`_async` suffix, for a `psycopg.AsyncConnection` (the dispatcher, the
responder app); both run the same steps (`_open`, `_advance`, ...: pure
generators of named statements from schema/tasks.sql).

- `open_task(conn, alert_id, now)`: idempotent. The first call for a
  shortage alert that is firing or acknowledged stores a task with the
  restock plan as of `now` (`alerts.restock`: target quantity, suggested
  sources), `paged_at` = when the alert fired (or last reopened),
  `acknowledged_at` / `opened_by` = the alert's acknowledgement (else `now`
  / 'baogong'), and writes a `task_opened` alert event; any later call (or a
  concurrent one that lost the race) returns the stored task unchanged — a
  closed one too, unless the alert reopened since: then its next
  acknowledgement opens a new task. Raises `TaskNotFound` (no such alert) or
  `NotATaskAlert`.
- `advance(conn, task_id, to_state, actor, now)`: open -> dispatched ->
  delivered, one step at a time, under a row lock; stores when and by whom,
  writes `task_dispatched` / `task_delivered`. Raises `TaskNotFound` or
  `MoveRefused` (nothing written).
- `close_recovered(conn, now)`: closes every task whose alert resolved, from
  any state (`recovered_at` = the alert's end when the level recovered, NULL
  when a person resolved it), with a `task_closed` event each (actor
  'dispatcher'); returns the ids closed. Cheap when there is nothing to close (a partial index on open
  tasks): call it in every evaluation.

Database errors are psycopg's, raised as they come: the caller's
`schema.db.connect` / `transaction` translates them.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from alerts.restock import DEFAULT_LIMIT, NEIGHBOUR_KM, plan_from_rows
from alerts.tasks import MoveRefused, NotATaskAlert, State, Task, TaskNotFound, check_move
from schema.db import SCHEMA_DIR, Row, load_queries

QUERIES = load_queries(SCHEMA_DIR / "tasks.sql")
#: The rule whose alerts carry supply tasks (alerts.rules.shortage.RULE).
SHORTAGE_RULE = "shortage"
#: Who opens a task when the alert was not acknowledged by anyone named.
SYSTEM_ACTOR = "baogong"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Q:
    """One named statement to run, and what to fetch."""

    name: str
    params: Mapping[str, Any]
    fetch: Literal["one", "all", "none"] = "all"


Steps = Generator[_Q, Any, T]


def _run(conn: psycopg.Connection[Row], steps: Steps[T]) -> T:
    try:
        q = next(steps)
        while True:
            cur = conn.execute(QUERIES[q.name], q.params)
            q = steps.send(cur.fetchone() if q.fetch == "one" else cur.fetchall() if q.fetch == "all" else None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def _run_async(conn: psycopg.AsyncConnection[Row], steps: Steps[T]) -> T:
    try:
        q = next(steps)
        while True:
            cur = await conn.execute(QUERIES[q.name], q.params)
            q = steps.send(
                await cur.fetchone() if q.fetch == "one" else await cur.fetchall() if q.fetch == "all" else None
            )
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def task_from_row(r: Row) -> Task:
    return Task(
        id=int(r["id"]),
        alert_id=int(r["alert_id"]),
        circle_id=r["circle_id"],
        necessity=r["necessity"],
        target_quantity=r["target_quantity"],
        suggestions=tuple(r["suggestions"] or ()),
        state=State(r["state"]),
        opened_at=r["opened_at"],
        opened_by=r["opened_by"],
        paged_at=r["paged_at"],
        acknowledged_at=r["acknowledged_at"],
        dispatched_at=r["dispatched_at"],
        dispatched_by=r["dispatched_by"],
        delivered_at=r["delivered_at"],
        delivered_by=r["delivered_by"],
        closed_at=r["closed_at"],
        recovered_at=r["recovered_at"],
        target_days=r["target_days"],
        unit=r.get("unit") or "",
    )


def _event(alert_id: int, kind: str, actor: str | None, now: datetime, **detail: Any) -> _Q:
    params = {"alert_id": alert_id, "kind": kind, "actor": actor, "now": now, "detail": Jsonb(detail)}
    return _Q("insert_task_event", params, "none")


def _by(task_id: int | None = None, alert_id: int | None = None) -> _Q:
    return _Q("task_get", {"id": task_id, "alert_id": alert_id}, "one")


# ---------------------------------------------------------------- the steps


def _open(alert_id: int, now: datetime, limit: int | None) -> Steps[Task]:
    alert = yield _Q("task_alert", {"alert_id": alert_id}, "one")
    if alert is None:
        raise TaskNotFound(f"no alert {alert_id}")
    alert_open = alert["state"] in ("firing", "acknowledged")
    existing = yield _by(alert_id=alert_id)
    if existing is not None and (existing["state"] != State.CLOSED or not alert_open):
        return task_from_row(existing)  # already opened (a closed one stays closed unless the alert reopened)
    if alert["rule"] != SHORTAGE_RULE or not alert["circle_id"] or not alert["necessity"]:
        raise NotATaskAlert(f"alert {alert_id} is a {alert['rule']} alert: only shortages carry supply tasks")
    if not alert_open:
        raise NotATaskAlert(f"alert {alert_id} is {alert['state']}: a task is opened for a firing shortage")
    where = {"circle_id": alert["circle_id"], "necessity": alert["necessity"], "now": now, "radius_km": NEIGHBOUR_KM}
    need = yield _Q("restock_need", where, "one")
    rows = (yield _Q("restock_candidates", where)) if need is not None else []
    plan = plan_from_rows(need, rows, limit)
    paged_at, acked_at = alert["paged_at"], alert["acknowledged_at"]
    if acked_at is None or (paged_at is not None and acked_at < paged_at):  # not acknowledged since it (re)fired
        acked_at = now
    actor = alert["acknowledged_by"] or SYSTEM_ACTOR
    inserted = yield _Q(
        "insert_task",
        {
            "alert_id": alert_id,
            "circle_id": alert["circle_id"],
            "necessity": alert["necessity"],
            "target_days": None if plan is None else plan.target_days,
            "target_quantity": None if plan is None else plan.need,
            "suggestions": Jsonb([] if plan is None else [s.as_json() for s in plan.suggestions]),
            "paged_at": paged_at,
            "acknowledged_at": acked_at,
            "now": now,
            "actor": actor,
        },
        "one",
    )
    if inserted is not None:
        yield _event(
            alert_id,
            "task_opened",
            actor,
            now,
            task_id=int(inserted["id"]),
            target_quantity=None if plan is None else plan.need,
            sources=0 if plan is None else len(plan.suggestions),
            shortfall=None if plan is None else plan.shortfall,
        )
    row = yield _by(alert_id=alert_id)  # ours, or the one a concurrent acknowledgement stored first
    return task_from_row(row)


def _advance(task_id: int, to_state: State | str, actor: str, now: datetime) -> Steps[Task]:
    row = yield _Q("lock_task", {"id": task_id}, "one")
    if row is None:
        raise TaskNotFound(f"no supply task {task_id} (baogong tasks list shows them)")
    task = task_from_row(row)
    target = check_move(task, to_state)
    if not actor:
        raise MoveRefused(f"task {task_id}: who moves it? (an actor is required)")
    yield _Q("move_task", {"id": task_id, "state": target.value, "actor": actor, "now": now}, "none")
    yield _event(task.alert_id, f"task_{target.value}", actor, now, task_id=task_id, **{"from": task.state.value})
    moved = yield _by(task_id=task_id)
    return task_from_row(moved)


def _close(now: datetime) -> Steps[list[int]]:
    rows = yield _Q("close_recovered_tasks", {"now": now})
    return [int(r["id"]) for r in rows]


def _get(task_id: int) -> Steps[Task]:
    row = yield _by(task_id=task_id)
    if row is None:
        raise TaskNotFound(f"no supply task {task_id} (baogong tasks list shows them)")
    return task_from_row(row)


def _list(open_only: bool, limit: int) -> Steps[list[Task]]:
    rows = yield _Q("task_list", {"open": open_only, "limit": limit})
    return [task_from_row(r) for r in rows]


# ---------------------------------------------------------------- blocking


def open_task(
    conn: psycopg.Connection[Row], alert_id: int, now: datetime, *, limit: int | None = DEFAULT_LIMIT
) -> Task:
    """Open the supply task of shortage alert `alert_id` (idempotent); see the module docstring."""
    return _run(conn, _open(alert_id, now, limit))


def advance(conn: psycopg.Connection[Row], task_id: int, to_state: State | str, actor: str, now: datetime) -> Task:
    """Move task `task_id` to `to_state` ('dispatched' or 'delivered') by `actor` at `now`; the task after."""
    return _run(conn, _advance(task_id, to_state, actor, now))


def close_recovered(conn: psycopg.Connection[Row], now: datetime) -> list[int]:
    """Close every task whose alert resolved; the ids closed."""
    return _run(conn, _close(now))


def get_task(conn: psycopg.Connection[Row], task_id: int) -> Task:
    return _run(conn, _get(task_id))


def list_tasks(conn: psycopg.Connection[Row], *, open_only: bool = False, limit: int = 50) -> list[Task]:
    """The newest `limit` tasks; `open_only`: those not closed."""
    return _run(conn, _list(open_only, limit))


def review(conn: psycopg.Connection[Row], since: datetime) -> list[Row]:
    """After-action review: per task closed since `since`, the seconds of each step (`task_review`)."""
    return conn.execute(QUERIES["task_review"], {"since": since}).fetchall()


# ---------------------------------------------------------------- async


async def open_task_async(
    conn: psycopg.AsyncConnection[Row], alert_id: int, now: datetime, *, limit: int | None = DEFAULT_LIMIT
) -> Task:
    return await _run_async(conn, _open(alert_id, now, limit))


async def advance_async(
    conn: psycopg.AsyncConnection[Row], task_id: int, to_state: State | str, actor: str, now: datetime
) -> Task:
    return await _run_async(conn, _advance(task_id, to_state, actor, now))


async def close_recovered_async(conn: psycopg.AsyncConnection[Row], now: datetime) -> list[int]:
    return await _run_async(conn, _close(now))


async def get_task_async(conn: psycopg.AsyncConnection[Row], task_id: int) -> Task:
    return await _run_async(conn, _get(task_id))


async def list_tasks_async(
    conn: psycopg.AsyncConnection[Row], *, open_only: bool = False, limit: int = 50
) -> list[Task]:
    return await _run_async(conn, _list(open_only, limit))
