"""Supply tasks over HTTP: an APIRouter the responder app (`alerts.http`) includes.

    GET  /v1/tasks?open=true&limit=50     newest first; open: not closed
    GET  /v1/tasks/{id}                   target, suggested sources, times and each step's duration
    POST /v1/tasks/{id}/dispatch          the team sent the stock on its way (as the caller)
    POST /v1/tasks/{id}/deliver           it arrived

Every route needs a responder (`alerts.http.current_responder`: 401/403 as
the app answers them); a move is made as the responder's `team/member`, at
the app's clock (`request.app.state.clock`), in one transaction on the
app's blocking pool (`request.app.state.pool`, FastAPI's worker threads).
Answers: 200 with the task (`alerts.tasks.task_doc`); 404 no such task;
409 the move is impossible now (the reason in `error`: already dispatched,
dispatch it first, closed); 503 as the app answers a database that is down.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from alerts import tasks_store
from alerts.http import connection, current_responder
from alerts.responders import Responder
from alerts.tasks import MoveRefused, State, TaskError, TaskNotFound, task_doc

router = APIRouter(prefix="/v1/tasks", tags=["supply tasks"])
Caller = Annotated[Responder, Depends(current_responder)]


def _error(exc: TaskError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=404 if isinstance(exc, TaskNotFound) else 409)


@router.get("")
def list_tasks(request: Request, responder: Caller, open: bool = False, limit: int = 50) -> dict[str, Any]:
    with connection(request) as conn:
        found = tasks_store.list_tasks(conn, open_only=open, limit=max(1, min(limit, 500)))
    return {"tasks": [task_doc(t) for t in found]}


@router.get("/{task_id}", response_model=None)
def get_task(request: Request, task_id: int, responder: Caller) -> dict[str, Any] | JSONResponse:
    try:
        with connection(request) as conn:
            return task_doc(tasks_store.get_task(conn, task_id))
    except TaskNotFound as exc:
        return _error(exc)


def _move(request: Request, task_id: int, to: State, responder: Responder) -> dict[str, Any] | JSONResponse:
    try:
        with connection(request) as conn, conn.transaction():
            task = tasks_store.advance(conn, task_id, to, responder.actor, request.app.state.clock())
    except (TaskNotFound, MoveRefused) as exc:
        return _error(exc)
    return task_doc(task)


@router.post("/{task_id}/dispatch", response_model=None)
def dispatch(request: Request, task_id: int, responder: Caller) -> dict[str, Any] | JSONResponse:
    return _move(request, task_id, State.DISPATCHED, responder)


@router.post("/{task_id}/deliver", response_model=None)
def deliver(request: Request, task_id: int, responder: Caller) -> dict[str, Any] | JSONResponse:
    return _move(request, task_id, State.DELIVERED, responder)
