"""The operators' emergency endpoints on the responder app (`alerts.http`, `baogong alerts serve`).

    GET  /v1/emergencies[?all=true]      active emergencies (all: lifted ones too), newest first
    POST /v1/emergencies                 {"scope": "city" | "district:NAME" | "circle:ID",
                                          "grade": "IV" | "III" | "II" | "I", "reason": "..."}  -> 201
    POST /v1/emergencies/{id}/lift       {"reason": "..."}  -> 200 (`changed` false: it was lifted already)

Only an operator key authenticates here (`Authorization: Bearer <key>` or `X-API-Key`;
`baogong emergency key create NAME`): no key or an unknown one answers 401, a supplier's or a
responder's key, or a revoked one, 403. The key's name is recorded as `declared_by` / `lifted_by`,
at the app's clock (`request.app.state.clock`). A declaration takes effect in the next levels the
worker computes (`streams.circles.refresh_levels`), and in the dispatcher's next wave for alert timers.

Answers otherwise: 404 no such emergency; 422 a bad scope, grade or empty reason (the message says
which); 503 the database is not answering (nothing was done). Blocking psycopg in FastAPI's worker
threads; one transaction per request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, ConfigDict, Field

from schema.db import Row
from schema.emergency import Scope, parse_grade
from schema.emergency_store import (
    MAX_TEXT_CHARS,
    EmergencyNotFound,
    OperatorAuthError,
    authenticate_operator,
    declare,
    lift,
    list_emergencies,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["emergencies"])


class DeclareBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: str = Field(..., description="city, district:NAME or circle:ID")
    grade: str | int = Field(..., description="IV (lowest), III, II or I (highest); or 4..1")
    reason: str = Field(..., min_length=1, max_length=MAX_TEXT_CHARS)


class LiftBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(..., min_length=1, max_length=MAX_TEXT_CHARS)


def _key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@contextmanager
def _connection(request: Request) -> Iterator[psycopg.Connection[Row]]:
    pool: ConnectionPool[psycopg.Connection[Row]] = request.app.state.pool
    with pool.connection() as conn:
        yield conn


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


@router.get("/v1/emergencies", summary="Active emergencies (all=true: lifted ones too)", response_model=None)
def get_emergencies(request: Request, all: bool = False) -> dict[str, Any] | JSONResponse:
    try:
        with _connection(request) as conn:
            authenticate_operator(conn, _key(request))
            found = list_emergencies(conn, request.app.state.clock(), include_lifted=all)
    except OperatorAuthError as exc:
        return _error(exc.status, str(exc))
    return {"emergencies": [e.as_doc() for e in found]}


@router.post("/v1/emergencies", status_code=201, summary="Declare an emergency", response_model=None)
def post_emergency(request: Request, body: DeclareBody) -> dict[str, Any] | JSONResponse:
    try:
        scope = Scope.parse(body.scope)
        grade = parse_grade(body.grade)
    except ValueError as exc:
        return _error(422, str(exc))
    try:
        with _connection(request) as conn:
            who = authenticate_operator(conn, _key(request))
            declared = declare(conn, scope, grade, body.reason, who.name, request.app.state.clock())
    except OperatorAuthError as exc:
        return _error(exc.status, str(exc))
    except ValueError as exc:
        return _error(422, str(exc))
    log.warning(
        "%s (key %s…) declared emergency %s: grade %s over %s: %s",
        who.name,
        who.prefix,
        declared.id,
        grade.roman,
        scope,
        declared.reason,
    )
    return declared.as_doc()


@router.post("/v1/emergencies/{emergency_id}/lift", summary="Lift an emergency", response_model=None)
def post_lift(request: Request, emergency_id: int, body: LiftBody) -> dict[str, Any] | JSONResponse:
    try:
        with _connection(request) as conn:
            who = authenticate_operator(conn, _key(request))
            lifted, changed = lift(conn, emergency_id, who.name, body.reason, request.app.state.clock())
    except OperatorAuthError as exc:
        return _error(exc.status, str(exc))
    except EmergencyNotFound as exc:
        return _error(404, str(exc))
    except ValueError as exc:
        return _error(422, str(exc))
    if changed:
        log.warning("%s (key %s…) lifted emergency %s: %s", who.name, who.prefix, emergency_id, body.reason)
    message = (
        f"emergency {emergency_id} lifted"
        if changed
        else f"emergency {emergency_id} had already been lifted by {lifted.lifted_by}"
    )
    return {"changed": changed, "message": message, "emergency": lifted.as_doc()}
