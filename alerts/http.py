"""The responder HTTP app (FastAPI; `baogong alerts serve`, on `alerts_port`). OpenAPI at /docs.

Responders authenticate with their own key (`Authorization: Bearer <key>` or
`X-API-Key: <key>`; `baogong responders keys create TEAM/MEMBER`) and act as
that member (`alerts.responders`):

    GET    /v1/alerts?state=open&circle=C03&necessity=rice&rule=shortage&severity=critical&limit=100
    GET    /v1/alerts/{id}                  the alert and its history (alert_events)
    POST   /v1/alerts/{id}/ack              {"comment": "..."} (optional body)
    POST   /v1/alerts/{id}/resolve          {"comment": "..."} (optional body)
    POST   /v1/alerts/{id}/comment          {"text": "..."}
    GET    /v1/silences[?all=true]          active and pending silences (all: ended ones too)
    POST   /v1/silences                     {"matchers": ["circle=C03", {"name": "necessity", "value": "rice"}],
                                             "duration": "2h" | "ends_at": ISO, "starts_at": ISO?, "comment": "..."}
    DELETE /v1/silences/{id}                expire it now

Answers: 200 (201 for a new silence) with what happened (`changed` false
when nothing needed doing, said in `message`); 401 no or unknown key; 403
revoked key (or the member left the team); 404 no such alert or silence;
409 the action makes no sense now (acknowledging a resolved alert); 422 a
bad body; 503 the database is not answering (nothing was done; retry).

A signed link from a message (`alerts.links`) needs no key:

    GET  /a/{token}   a small confirmation page (Chinese); it never acts, so link scanners that prefetch
                      acknowledge nothing
    POST /a/{token}   performs the link's action (form fields: name, comment); a second POST changes nothing

An expired link answers 410, an altered or foreign one 403, and with no
`action_secret` configured every link answers 404 saying links are off.
Tokens ride in the URL path: the access log is off and pages send
`Referrer-Policy: no-referrer`, so they end up in no log and no Referer.

Emergencies (operator keys only): `alerts.emergency_http.router` — GET/POST
/v1/emergencies, POST /v1/emergencies/{id}/lift.

Supply tasks (S): `alerts.tasks_http.router` is included when that module
exists; it finds the pool at `request.app.state.pool`, the clock at
`request.app.state.clock` and the caller with `Depends(current_responder)`.

Database work is blocking psycopg on a small pool, run in FastAPI's worker
threads; each request is one transaction (`alerts.actions`).
"""

from __future__ import annotations

import html
import importlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from alerts import actions, emergency_http, links
from alerts.actions import ActionRefused, AlertNotFound, SilenceNotFound
from alerts.responders import Responder, ResponderAuthError, authenticate, check_may_act
from alerts.silence import matcher_from_doc, parse_duration
from baogong.settings import Settings
from schema.db import Row

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
SHANGHAI = ZoneInfo("Asia/Shanghai")
STATE_NAMES = {"pending": "待触发", "firing": "告警中", "acknowledged": "已确认（处置中）", "resolved": "已解决"}
SEVERITY_NAMES = {"critical": "严重", "high": "高", "warning": "提示"}
MAX_NAME_CHARS = 40


def utc_now() -> datetime:
    return datetime.now(UTC)


class ActBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(None, max_length=actions.MAX_TEXT_CHARS)


class CommentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(..., min_length=1, max_length=actions.MAX_TEXT_CHARS)


class SilenceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matchers: list[str | dict[str, Any]] = Field(..., min_length=1)
    comment: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    duration: str | None = Field(None, description="e.g. 2h, 30m, 1d; instead of ends_at")


class BadRequest(Exception):
    """A request body that cannot be meant; the message says why (422)."""


def _key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def current_responder(request: Request) -> Responder:
    """The authenticated responder (a FastAPI dependency); raises ResponderAuthError (answered 401/403)."""
    with connection(request) as conn:
        return authenticate(conn, _key(request))


@contextmanager
def connection(request: Request) -> Iterator[psycopg.Connection[Row]]:
    """One connection and transaction from the app's pool (committed when the block succeeds)."""
    pool: ConnectionPool[psycopg.Connection[Row]] = request.app.state.pool
    with pool.connection() as conn:
        yield conn


def _alert_doc(r: Row) -> dict[str, Any]:
    keys = [
        "id",
        "rule",
        "state",
        "severity",
        "circle_id",
        "necessity",
        "labels",
        "annotations",
        "pending_since",
        "starts_at",
        "ends_at",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_by",
    ]
    doc = {k: r.get(k) for k in keys}
    doc["summary"] = (r.get("annotations") or {}).get("summary", "")
    return doc


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    """The responder app on `settings`; `clock` is the time actions and links are judged at (tests pass theirs)."""
    pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
        settings.database_url.get_secret_value(),
        min_size=1,
        max_size=settings.alerts_db_connections,
        open=False,
        kwargs={"row_factory": dict_row},
    )
    secret = links.link_secret(settings.action_secret)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(pool.open, True, 60.0)
        try:
            yield
        finally:
            await run_in_threadpool(pool.close)

    app = FastAPI(
        title="Baogong responder API",
        description="Acknowledge, resolve and comment on alerts; silences. "
        "Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>` (a responder key).",
        version="1",
        lifespan=lifespan,
    )
    app.state.pool = pool
    app.state.clock = clock
    app.state.settings = settings

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(ResponderAuthError)
    async def _auth(request: Request, exc: ResponderAuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(AlertNotFound)
    @app.exception_handler(SilenceNotFound)
    async def _missing(request: Request, exc: Exception) -> JSONResponse:
        return error(404, str(exc))

    @app.exception_handler(ActionRefused)
    async def _refused(request: Request, exc: ActionRefused) -> JSONResponse:
        return error(409, str(exc))

    @app.exception_handler(BadRequest)
    async def _bad(request: Request, exc: BadRequest) -> JSONResponse:
        return error(422, str(exc))

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database not answering: %s", exc)
        return JSONResponse(
            {"error": "the database is not answering; nothing was done, retry shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # ------------------------------------------------------------ alerts

    @app.get("/v1/alerts", summary="Alerts, newest first (default: open ones)")
    def list_alerts(
        request: Request,
        state: str = "open",
        circle: str | None = None,
        necessity: str | None = None,
        rule: str | None = None,
        severity: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        with connection(request) as conn:
            authenticate(conn, _key(request))
            try:
                rows = actions.list_alerts(
                    conn, state=state, circle=circle, necessity=necessity, rule=rule, severity=severity, limit=limit
                )
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
        return {"alerts": [_alert_doc(r) for r in rows]}

    @app.get("/v1/alerts/{alert_id}", summary="One alert and its history")
    def show_alert(request: Request, alert_id: int) -> dict[str, Any]:
        with connection(request) as conn:
            authenticate(conn, _key(request))
            alert, history = actions.alert_with_history(conn, alert_id)
        return {"alert": _alert_doc(alert), "history": history}

    def act(request: Request, alert_id: int, do: Callable[..., actions.Outcome], *args: Any) -> dict[str, Any]:
        with connection(request) as conn:
            who = authenticate(conn, _key(request))
            check_may_act(conn, who, alert_id)
            try:
                outcome = do(conn, alert_id, who.actor, clock(), *args, via="http", who=who.name)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
        log.info("%s: %s (key %s…)", who.actor, outcome.message, who.prefix)
        return outcome.as_doc()

    @app.post("/v1/alerts/{alert_id}/ack", summary="Acknowledge: I am on it")
    def ack(request: Request, alert_id: int, body: ActBody | None = None) -> dict[str, Any]:
        return act(request, alert_id, actions.acknowledge, body.comment if body else None)

    @app.post("/v1/alerts/{alert_id}/resolve", summary="Resolve by hand")
    def resolve(request: Request, alert_id: int, body: ActBody | None = None) -> dict[str, Any]:
        return act(request, alert_id, actions.resolve, body.comment if body else None)

    @app.post("/v1/alerts/{alert_id}/comment", summary="Add a comment to the alert's history")
    def comment(request: Request, alert_id: int, body: CommentBody) -> dict[str, Any]:
        return act(request, alert_id, actions.comment, body.text)

    # ------------------------------------------------------------ silences

    @app.get("/v1/silences", summary="Active and pending silences (all=true: ended ones too)")
    def get_silences(request: Request, all: bool = False) -> dict[str, Any]:
        now = clock()
        with connection(request) as conn:
            authenticate(conn, _key(request))
            found = actions.list_silences(conn, now, include_ended=all)
        return {"silences": [s.as_doc(now) for s in found]}

    @app.post("/v1/silences", status_code=201, summary="Silence pages about matching alerts for a while")
    def post_silence(request: Request, body: SilenceBody) -> dict[str, Any]:
        now = clock()
        try:
            matchers = [matcher_from_doc(m) for m in body.matchers]
            starts_at = body.starts_at or now
            if (body.ends_at is None) == (body.duration is None):
                raise ValueError('give either ends_at or duration (e.g. "2h")')
            ends_at = body.ends_at or starts_at + parse_duration(body.duration or "")
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        with connection(request) as conn:
            who = authenticate(conn, _key(request))
            try:
                created = actions.create_silence(conn, matchers, starts_at, ends_at, who.actor, body.comment, now)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
        log.info("%s: silence %s created (%s) until %s", who.actor, created.id, created, created.ends_at)
        return created.as_doc(now)

    @app.delete("/v1/silences/{silence_id}", summary="Expire a silence now")
    def delete_silence(request: Request, silence_id: int) -> dict[str, Any]:
        now = clock()
        with connection(request) as conn:
            who = authenticate(conn, _key(request))
            silence, changed = actions.expire_silence(conn, silence_id, who.actor, now)
        message = f"silence {silence_id} expired" if changed else f"silence {silence_id} had already ended"
        return {"changed": changed, "message": message, "silence": silence.as_doc(now)}

    # ------------------------------------------------------------ signed links

    def page(status: int, title: str, body: str) -> HTMLResponse:
        return HTMLResponse(
            _PAGE.format(title=html.escape(title), body=body),
            status_code=status,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"},
        )

    def checked(token: str) -> links.Link | HTMLResponse:
        if secret is None:
            return page(
                404,
                "处置链接未启用",
                "<p>本系统未配置处置链接（BAOGONG_ACTION_SECRET）。请在保供应用或命令行中处置。</p>",
            )
        try:
            return links.verify(token, secret, clock())
        except links.LinkError as exc:
            if exc.reason == "expired":
                return page(
                    410, "链接已过期", "<p>此处置链接已过期。请在保供应用中处置，或等待下一条通知中的新链接。</p>"
                )
            return page(403, "链接无效", "<p>此链接无效或已被改动，未执行任何操作。请从通知消息中重新打开。</p>")

    @app.get("/a/{token}", include_in_schema=False)
    def link_page(request: Request, token: str) -> HTMLResponse:
        link = checked(token)
        if isinstance(link, HTMLResponse):
            return link
        try:
            with connection(request) as conn:
                alert, _ = actions.alert_with_history(conn, link.alert_id)
        except AlertNotFound:
            return page(404, "预警不存在", f"<p>预警 {link.alert_id} 不存在。</p>")
        done = _already(alert, link.action)
        form = (
            f"<p class=done>{html.escape(done)}</p>"
            if done
            else _FORM.format(
                action=html.escape(links.ACTION_NAMES[link.action]),
                until=f"{link.expires_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}",
            )
        )
        return page(200, f"{links.ACTION_NAMES[link.action]} · 预警 {alert['id']}", _describe(alert) + form)

    @app.post("/a/{token}", include_in_schema=False)
    async def link_act(request: Request, token: str) -> HTMLResponse:
        link = checked(token)
        if isinstance(link, HTMLResponse):
            return link
        form = await request.form()
        name = str(form.get("name") or "").strip()[:MAX_NAME_CHARS]
        note = str(form.get("comment") or "").strip() or None
        actor = f"link:{name}" if name else "link"
        do = actions.acknowledge if link.action == "ack" else actions.resolve

        def run() -> actions.Outcome | HTMLResponse:
            try:
                with connection(request) as conn:
                    return do(conn, link.alert_id, actor, clock(), note, via="link", who=name or None)
            except AlertNotFound:
                return page(404, "预警不存在", f"<p>预警 {link.alert_id} 不存在。</p>")
            except ActionRefused as exc:
                if exc.state == "pending":
                    return page(409, "预警尚未触发", f"<p>预警 {link.alert_id} 尚未触发，未通知任何人，无需确认。</p>")
                return page(409, "预警已解决", f"<p>预警 {link.alert_id} 已经解决，无需确认。</p>")
            except ValueError as exc:
                return page(422, "无法处理", f"<p>{html.escape(str(exc))}</p>")

        outcome = await run_in_threadpool(run)
        if isinstance(outcome, HTMLResponse):
            return outcome
        log.info("%s via a signed link: %s", actor, outcome.message)
        verb = "确认" if link.action == "ack" else "解决"
        if outcome.changed:
            text = f"已{verb}预警 {outcome.alert_id}。"
            if outcome.task_id is not None:
                text += f"已为本队开启保供任务 {outcome.task_id}。"
        else:
            text = f"预警 {outcome.alert_id} 此前已由 {outcome.by or '系统'} {verb}，本次未做更改。"
        return page(200, f"已{verb}", f"<p class=done>{html.escape(text)}</p>")

    _include_tasks(app)
    app.include_router(emergency_http.router)
    return app


def _include_tasks(app: FastAPI) -> None:
    """S's supply-task routes, when `alerts.tasks_http` is installed."""
    try:
        tasks_http = importlib.import_module("alerts.tasks_http")
    except ModuleNotFoundError as exc:
        if exc.name != "alerts.tasks_http":
            raise
        return
    app.include_router(tasks_http.router)


def _already(alert: Row, action: str) -> str:
    """Why the link's action has nothing left to do, in words ('' when it has)."""
    if alert["state"] == "resolved":
        by = alert.get("resolved_by")
        return f"该预警已于 {_cn_time(alert['ends_at'])} 解决{'（' + by + '）' if by else '（水平已恢复）'}，无需操作。"
    if action == "ack" and alert["state"] == "pending":
        return "该预警尚未触发，未通知任何人，无需确认。"
    if action == "ack" and alert["state"] == "acknowledged":
        return f"该预警已由 {alert['acknowledged_by']} 于 {_cn_time(alert['acknowledged_at'])} 确认，无需重复确认。"
    return ""


def _cn_time(at: datetime | None) -> str:
    return f"{at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}" if at else "—"


def _describe(alert: Row) -> str:
    ann = alert.get("annotations") or {}
    rows = [
        ("生活圈", ann.get("circle_name") or alert.get("circle_id") or "—"),
        ("物资", ann.get("necessity_name") or alert.get("necessity") or "—"),
        ("状态", STATE_NAMES.get(alert["state"], alert["state"])),
        ("级别", SEVERITY_NAMES.get(alert.get("severity") or "", alert.get("severity") or "—")),
    ]
    if ann.get("days_of_supply"):
        rows.append(("可供天数", f"{ann['days_of_supply']} 天（低于 {ann.get('shortage_days', '?')} 天为短缺）"))
    rows.append(("开始", _cn_time(alert.get("starts_at") or alert.get("pending_since"))))
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    # The shortage rule's summary is English; its fields above say it all. Other rules' summary is shown.
    summary = "" if ann.get("necessity_name") else f"：{html.escape(ann.get('summary', ''))}"
    return f"<p>预警 {alert['id']}{summary}</p><table>{cells}</table>"


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">
<title>{title} · 保供</title>
<style>body{{font-family:sans-serif;max-width:36em;margin:1em auto;padding:0 1em;line-height:1.5}}
th{{text-align:left;padding-right:1em;font-weight:normal;color:#555}}button{{font-size:1.1em;padding:.5em 1.5em}}
.done{{font-weight:bold}}input,textarea{{width:100%;box-sizing:border-box}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""

_FORM = """<form method="post">
<p><label>姓名（选填）<input name="name" maxlength="40" autocomplete="name"></label></p>
<p><label>备注（选填）<textarea name="comment" rows="3" maxlength="2000"></textarea></label></p>
<p><button type="submit">{action}</button></p>
<p><small>打开本页不会执行任何操作；点击按钮后才会{action}。链接有效期至 {until}（北京时间）。</small></p>
</form>"""
