"""Supply tasks (pure): what a circle's team does about an acknowledged shortage, and where it stands.

Acknowledging a shortage alert opens a task (`alerts.tasks_store.open_task`)
with the quantity that brings the circle back to its target and the suggested
sources (`alerts.restock`). The team moves it by hand:

    open --dispatch--> dispatched --deliver--> delivered
      \\________________\\_________________________\\____ closed  (the alert resolved)

`closed` is reached only from the alert: when it resolves (the circle's level
recovered, or a person resolved it), the task closes from whatever state it
is in (`alerts.tasks_store.close_recovered`). A person never closes a task,
and nothing leaves `closed`. `check_move` says, in words a responder reads,
why a move is impossible.

Times kept for the after-action review: paged (the alert fired), acknowledged
(the task opened), dispatched, delivered, recovered (the alert resolved by
recovery; None when a person resolved it) and closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class State(StrEnum):
    OPEN = "open"
    DISPATCHED = "dispatched"
    DELIVERED = "delivered"
    CLOSED = "closed"


#: The moves a person makes: to_state -> the state it must come from.
MANUAL_MOVES: dict[State, State] = {State.DISPATCHED: State.OPEN, State.DELIVERED: State.DISPATCHED}
#: The verb of each manual move (CLI commands, HTTP paths, alert_events kinds `task_<state>`).
VERBS: dict[State, str] = {State.DISPATCHED: "dispatch", State.DELIVERED: "deliver"}


class TaskError(Exception):
    """Root of supply-task errors; the message says what the caller should do."""


class TaskNotFound(TaskError):
    """No such task (or alert). Check the id: `baogong tasks list`."""


class MoveRefused(TaskError):
    """The move is impossible from the task's state; the message says why. Do not retry it."""


class NotATaskAlert(TaskError):
    """The alert cannot carry a supply task (not a shortage, or not firing/acknowledged)."""


@dataclass(frozen=True, slots=True)
class Task:
    """One supply task as stored (`supply_tasks`); `suggestions` are `restock.Suggestion.as_json()` dicts."""

    id: int
    alert_id: int
    circle_id: str
    necessity: str
    target_quantity: float
    suggestions: tuple[dict[str, Any], ...]
    state: State
    opened_at: datetime
    opened_by: str
    paged_at: datetime | None = None
    acknowledged_at: datetime | None = None
    dispatched_at: datetime | None = None
    dispatched_by: str | None = None
    delivered_at: datetime | None = None
    delivered_by: str | None = None
    closed_at: datetime | None = None
    recovered_at: datetime | None = None
    target_days: float | None = None
    unit: str = ""

    def moved(self, to: State) -> tuple[datetime | None, str | None]:
        """When and by whom the task reached `to` (None, None when it has not)."""
        if to is State.DISPATCHED:
            return self.dispatched_at, self.dispatched_by
        if to is State.DELIVERED:
            return self.delivered_at, self.delivered_by
        if to is State.CLOSED:
            return self.closed_at, None
        return self.opened_at, self.opened_by


def check_move(task: Task, to: State | str) -> State:
    """The state to move `task` to by hand, or `MoveRefused` saying why not.

    Only open -> dispatched and dispatched -> delivered are manual; a closed
    task moves no more; a task already at or past `to` says when and by whom.
    """
    try:
        target = State(to)
    except ValueError:
        raise MoveRefused(f"{to!r} is not a task state (open, dispatched, delivered, closed)") from None
    if target not in MANUAL_MOVES:
        if target is State.CLOSED:
            raise MoveRefused(f"task {task.id} closes by itself when its alert {task.alert_id} resolves")
        raise MoveRefused(f"task {task.id} cannot go back to {target}")
    if task.state is State.CLOSED:
        raise MoveRefused(f"task {task.id} is closed (its alert {task.alert_id} resolved): nothing more to do")
    if task.state is target or _order(task.state) > _order(target):
        at, by = task.moved(target)
        when = f" at {at:%Y-%m-%d %H:%M:%S}" if at is not None else ""
        who = f" by {by}" if by else ""
        raise MoveRefused(f"task {task.id} is already {task.state} (it was {target}{who}{when})")
    source = MANUAL_MOVES[target]
    if task.state is not source:  # open -> delivered: a step skipped
        raise MoveRefused(f"task {task.id} is {task.state}: {VERBS[source]} it first")
    return target


def _order(state: State) -> int:
    return (State.OPEN, State.DISPATCHED, State.DELIVERED, State.CLOSED).index(state)


def durations(task: Task) -> dict[str, float | None]:
    """Seconds page -> ack, ack -> dispatched, dispatched -> recovered (None where a time is missing)."""

    def between(a: datetime | None, b: datetime | None) -> float | None:
        return (b - a).total_seconds() if a is not None and b is not None else None

    return {
        "page_to_ack_s": between(task.paged_at, task.acknowledged_at),
        "ack_to_dispatched_s": between(task.acknowledged_at, task.dispatched_at),
        "dispatched_to_recovered_s": between(task.dispatched_at, task.recovered_at),
    }


def task_doc(t: Task) -> dict[str, Any]:
    """A task as JSON-ready data (`baogong tasks show --json`, GET /v1/tasks/{id}), with `durations`."""
    doc: dict[str, Any] = {
        "id": t.id,
        "alert_id": t.alert_id,
        "circle_id": t.circle_id,
        "necessity": t.necessity,
        "state": t.state.value,
        "unit": t.unit,
        "target_days": t.target_days,
        "target_quantity": t.target_quantity,
        "suggestions": list(t.suggestions),
        "opened_by": t.opened_by,
        "dispatched_by": t.dispatched_by,
        "delivered_by": t.delivered_by,
    }
    for name in ("paged_at", "acknowledged_at", "opened_at", "dispatched_at", "delivered_at", "recovered_at"):
        value = getattr(t, name)
        doc[name] = value.isoformat() if value is not None else None
    doc["closed_at"] = t.closed_at.isoformat() if t.closed_at is not None else None
    doc["durations_s"] = durations(t)
    return doc
