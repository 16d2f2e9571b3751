"""One evaluation wave: stored rows in; alert changes, their history and grouped pages out.

`evaluate_once` runs in ONE transaction under an advisory lock, so two
dispatchers never evaluate at once, and either everything below commits or
nothing does (a page is never lost between "the alert fired" and "someone
must be told"):

1. for each rule: read its subjects, its open alerts and (for reopening)
   the alerts it resolved within `reopen_window_s`; step each through
   `alerts.model.advance` (in a circle under an emergency grade the hold
   before firing is that grade's `timer_factor` times as long; the hold
   before resolving is not shortened);
2. close open alerts whose circle no longer exists (`close_removed`);
3. escalate or re-notify what is due (`alerts.escalate.due`) among open,
   paged alerts that are not silenced (an alert's circle under an emergency
   grade waits that grade's `timer_factor` times as long: `schema.emergency`); a silence that ended while its alert
   still fires lets the alert page again;
4. close supply tasks whose alert resolved (`alerts.tasks_store`; a
   failure there, or in the restock suggestions, is logged and costs only
   itself, never the wave);
5. write every change as an `alert_events` row, and queue the wave's pages
   grouped (`alerts.group.messages`: one outbox row per receiver, circle and
   team), except for silenced alerts (`alerts.silence.silenced` over the
   alert's labels plus `rule`): they change state and are recorded, and
   write one `silenced` event per episode, but queue nothing.

Who is paged comes from `alerts.group.Routing`: the teams an alert is routed
to when it fires (stored in `alerts.teams`, with every team it escalates to
after), so its later pages (data missing, worse severity, resolved) reach
the same people. Shortage pages carry restock suggestions
(`alerts.restock`); each firing alert carries its signed
acknowledge link (`alerts.links.ack_url`) when `public_url` and
`action_secret` are set. Times are the caller's `now`, never the database's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from alerts import escalate, restock, tasks_store
from alerts.actions import current_silences_async
from alerts.group import Message, Notice, Routing, messages
from alerts.links import ack_url
from alerts.model import PAGED_STATES, Alert, Change, Event, Policy, Step, advance, close_removed
from alerts.notify.templates import SEVERITY
from alerts.rules import Rule
from alerts.rules.shortage import RULE as SHORTAGE_RULE
from alerts.silence import Silence, silenced
from schema.db import QUERIES, Row, transaction
from schema.emergency import GradeRules
from schema.emergency import rules as grade_rules
from schema.emergency_store import QUERIES as EMERGENCY_QUERIES

log = logging.getLogger(__name__)
ACTOR = "dispatcher"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """How alerts live: hold times (`policy`, unless a rule has its own), reopening, escalation, links."""

    policy: Policy
    timers: escalate.Timers = field(default_factory=escalate.Timers)
    reopen_window_s: float = 3600.0
    public_url: str = ""
    action_secret: SecretStr | None = None
    link_ttl: timedelta = timedelta(hours=24)
    suggestions_shown: int = 3  # restock suggestions on a shortage page (0: none)


@dataclass
class Wave:
    """What one evaluation did: the notices it decided (silenced ones excluded) and the outbox rows queued."""

    now: datetime
    notices: list[Notice] = field(default_factory=list)
    queued: list[Message] = field(default_factory=list)
    events: int = 0
    silenced: int = 0
    tasks_closed: list[int] = field(default_factory=list)


async def evaluate_once(
    pool: AsyncConnectionPool[Any],
    now: datetime,
    rules: Sequence[Rule],
    routing: Routing,
    lifecycle: Lifecycle,
) -> Wave:
    """Evaluate every rule once as of `now`, escalate what is due, and queue the wave's pages.

    Raises `schema.db.DatabaseError` (nothing written) when the database fails.
    """
    audiences = {r.name: r.audience for r in rules}
    async with transaction(pool) as conn, conn.cursor() as cur:
        await cur.execute(QUERIES["evaluation_lock"])
        silences = await current_silences_async(conn, now)
        wave = _Run(cur, now, routing, lifecycle, silences, audiences)
        await cur.execute(EMERGENCY_QUERIES["circle_grades"], {"at": now})
        wave.grades = {r["circle_id"]: r["grade"] for r in await cur.fetchall()}
        since = now - timedelta(seconds=lifecycle.reopen_window_s)
        for rule in rules:
            await cur.execute(rule.sql if rule.sql is not None else QUERIES[rule.query], rule.params or {})
            verdicts = rule.verdicts(await cur.fetchall(), now)
            await cur.execute(QUERIES["open_alerts"], {"rule": rule.name})
            open_alerts = {r["fingerprint"]: _alert(r) for r in await cur.fetchall()}
            recent: dict[str, Alert] = {}
            if lifecycle.reopen_window_s > 0:
                await cur.execute(QUERIES["recent_alerts"], {"rule": rule.name, "since": since})
                recent = {r["fingerprint"]: _alert(r) for r in await cur.fetchall()}
            for verdict in verdicts:
                before = open_alerts.get(verdict.fingerprint) or recent.get(verdict.fingerprint)
                policy = wave.hold(rule.policy or lifecycle.policy, verdict.labels.get("circle"))
                result = advance(before, verdict, rule.name, now, policy, lifecycle.reopen_window_s)
                if result.alert is None or (result.alert == before and not result.changes):
                    continue
                await wave.apply(result)

        await cur.execute(QUERIES["open_alerts_all"])
        for row in await cur.fetchall():
            alert = _alert(row)
            if row["circle_removed"]:
                await wave.apply(close_removed(alert, now))
            elif alert.state in PAGED_STATES:
                await wave.escalate(alert)

        wave.out.tasks_closed = await _optional(
            conn, "closing recovered supply tasks", tasks_store.close_recovered_async(conn, now), []
        )
        await _optional(conn, "restock suggestions", wave.suggest(conn), None)
        for message in messages(wave.out.notices, routing, lifecycle.public_url):
            await cur.execute(
                QUERIES["queue_notification"],
                {
                    "alert_id": message.alert_ids[0],
                    "alert_ids": list(message.alert_ids),
                    "receiver": message.receiver,
                    "status": message.status.value,
                    "group_key": message.group_key,
                    "reasons": list(message.reasons),
                    "wave_at": now,
                    "payload": Jsonb(message.payload),
                },
            )
            wave.out.queued.append(message)
    return wave.out


async def _optional(conn: psycopg.AsyncConnection[Row], what: str, work: Awaitable[T], default: T) -> T:
    """Run another module's step in a savepoint: its failure is logged and costs only itself, never the wave."""
    try:
        async with conn.transaction():
            return await work
    except Exception:
        log.exception("%s failed; the evaluation goes on without it", what)
        return default


class _Run:
    """One wave's bookkeeping inside the evaluation transaction."""

    def __init__(
        self,
        cur: psycopg.AsyncCursor[Row],
        now: datetime,
        routing: Routing,
        lifecycle: Lifecycle,
        silences: Sequence[Silence],
        audiences: Mapping[str, str],
    ) -> None:
        self.cur = cur
        self.now = now
        self.routing = routing
        self.lifecycle = lifecycle
        self.silences = silences
        self.audiences = audiences
        self.grades: dict[str | None, int] = {}  # emergency grade per circle (None: city-wide), migration 0019
        self.out = Wave(now)

    def audience(self, alert: Alert) -> str:
        return self.audiences.get(alert.rule, "responders")

    def silence(self, alert: Alert) -> Silence | None:
        return silenced({**alert.labels, "rule": alert.rule}, self.silences, self.now)

    async def apply(self, result: Step) -> None:
        """Save a stepped alert, record its changes, and decide its pages."""
        alert = result.alert
        assert alert is not None
        pages = [c for c in result.changes if c.page is not None]
        if pages and (not alert.teams or any(c.kind in ("fired", "reopened") for c in pages)):
            alert = replace(alert, teams=self.routing.teams_for(alert.labels, alert.rule, self.audience(alert)))
        alert, changes = self._silence(alert, result.changes, pages)
        alert = await self._save(alert)
        for change in changes:
            await self._event(alert, change.kind, change.detail)
        for change in pages:
            if alert.silence_id is None:
                self._notice(alert, change.page or Event.FIRED, change.kind, alert.teams, change.detail)

    def emergency(self, circle_id: str | None) -> GradeRules | None:
        """The rules of the emergency grade in force for `circle_id` (the city's for alerts of no circle)."""
        return grade_rules(self.grades.get(circle_id, self.grades.get(None)))

    def hold(self, policy: Policy, circle_id: str | None) -> Policy:
        """`policy` with the hold before firing shortened by the circle's emergency grade (`timer_factor`): in an
        emergency a shortage pages sooner. The hold before resolving stays: recovering is never rushed."""
        rules = self.emergency(circle_id)
        return policy if rules is None else replace(policy, for_s=policy.for_s * rules.timer_factor)

    async def escalate(self, alert: Alert) -> None:
        """Escalate or re-notify `alert` if due; page again an alert whose silence ended while it fires."""
        if self.silence(alert) is not None:
            return
        if alert.silence_id is not None:
            alert = await self._save(replace(alert, silence_id=None))
            if alert.state == "firing":
                await self._event(alert, "renotified", {"after": "silence", "teams": list(alert.teams)})
                self._notice(alert, Event.FIRED, "renotified", alert.teams, {"after": "silence"})
                return
        if not alert.teams:
            return
        holder = self.routing.kind(alert.teams[-1])
        timers = self.lifecycle.timers
        emergency = self.emergency(alert.circle_id)
        if emergency is not None:  # the alert's circle is under an emergency: every wait is shorter
            timers = timers.scaled(emergency.timer_factor)
        due = escalate.due(alert, self.routing.next_teams(alert.teams), holder, timers, self.now)
        if due is None:
            return
        after = await self._save(escalate.apply(alert, due, self.now))
        detail = {"teams": list(due.teams), "level": due.level, "waited_s": round(due.waited.total_seconds())}
        await self._event(after, due.kind, detail)
        self._notice(after, Event.FIRED, due.kind, due.teams, detail)

    async def suggest(self, conn: psycopg.AsyncConnection[Row]) -> None:
        """Restock suggestions on every firing shortage notice of the wave (S's `alerts.restock`)."""
        shown = self.lifecycle.suggestions_shown
        if shown <= 0:
            return
        plans: dict[tuple[str, str], str] = {}
        for i, n in enumerate(self.out.notices):
            a = n.alert
            if n.status is not Event.FIRED or a.rule != SHORTAGE_RULE or not a.circle_id or not a.necessity:
                continue
            key = (a.circle_id, a.necessity)
            if key not in plans:
                plan = await restock.suggestions_for_async(conn, a.circle_id, a.necessity, self.now, shown)
                plans[key] = restock.annotation(plan, shown).removeprefix("建议调货：") if plan is not None else ""
            if plans[key]:
                self.out.notices[i] = replace(n, extra={**n.extra, "suggestions": plans[key]})

    # ------------------------------------------------------------ helpers

    def _silence(self, alert: Alert, changes: tuple[Change, ...], pages: list[Change]) -> tuple[Alert, list[Change]]:
        out = list(changes)
        if not pages:
            return alert, out
        found = self.silence(alert)
        if found is None:
            return replace(alert, silence_id=None), out
        if alert.silence_id != found.id:
            detail = {"silence_id": found.id, "held": [c.kind for c in pages], "by": found.created_by}
            out.append(Change("silenced", None, detail))
        self.out.silenced += 1
        return replace(alert, silence_id=found.id if found.id is not None else 0), out

    def _notice(
        self, alert: Alert, status: Event, reason: str, teams: Sequence[str], detail: Mapping[str, Any]
    ) -> None:
        link = ""
        if status is Event.FIRED and self.lifecycle.public_url and alert.id is not None:
            link = ack_url(
                self.lifecycle.public_url, self.lifecycle.action_secret, alert.id, self.now, self.lifecycle.link_ttl
            )
        self.out.notices.append(
            Notice(
                alert,
                status,
                reason,
                tuple(teams),
                self.audience(alert),
                note(reason, alert, detail, self.routing),
                link=link,
            )
        )

    async def _save(self, alert: Alert) -> Alert:
        if alert.id is None:
            await self.cur.execute(QUERIES["insert_alert"], _params(alert))
            created = await self.cur.fetchone()
            assert created is not None
            alert = replace(alert, id=int(created["id"]))
        await self.cur.execute(QUERIES["update_alert"], _params(alert))
        return alert

    async def _event(self, alert: Alert, kind: str, detail: Mapping[str, Any]) -> None:
        await self.cur.execute(
            QUERIES["record_alert_event"],
            {"alert_id": alert.id, "at": self.now, "kind": kind, "actor": ACTOR, "detail": Jsonb(dict(detail))},
        )
        self.out.events += 1


def note(reason: str, alert: Alert, detail: Mapping[str, Any], routing: Routing) -> str:
    """The line people read about why this page came (提示), '' for a plain firing or resolution."""
    if reason == "reopened":
        return f"恢复后再次出现（第 {alert.reopen_count} 次重新告警）"
    if reason == "severity_raised":
        was, now = detail.get("from") or "", detail.get("to") or alert.severity
        return f"级别升高：{SEVERITY.get(was, was)} → {SEVERITY.get(now, now)}"
    if reason == "data_missing":
        return "数据缺失：该生活圈数据已不新鲜（网点未按时上报或数据未更新），无法判断是否恢复；告警保持，请现场核实"
    if reason == "data_back":
        return "数据已恢复：以上为最新数据"
    if reason == "escalated":
        waited = float(detail.get("waited_s", 0))
        spent = f"{round(waited / 60)} 分钟" if waited >= 60 else f"{round(waited)} 秒"
        held = "、".join(routing.name(t) for t in alert.teams if t not in detail.get("teams", ())) or "值班"
        return f"升级：已告警 {spent}，{held}仍未确认"
    if reason == "renotified":
        if detail.get("after") == "silence":
            return "静默已结束，告警仍在持续"
        if alert.state == "acknowledged":
            by = f"由 {alert.acknowledged_by} " if alert.acknowledged_by else ""
            return f"重新通知：已{by}确认，但仍未恢复"
        return "重新通知：仍无人确认"
    if reason == "closed_removed_circle":
        return "该生活圈已撤销，告警关闭"
    return ""


def _alert(r: Row) -> Alert:
    return Alert(
        id=int(r["id"]),
        fingerprint=r["fingerprint"],
        rule=r["rule"],
        severity=r["severity"],
        state=r["state"],
        labels=r["labels"],
        annotations=r["annotations"],
        pending_since=r["pending_since"],
        starts_at=r["starts_at"],
        ends_at=r["ends_at"],
        clearing_since=r["clearing_since"],
        circle_id=r["circle_id"],
        necessity=r["necessity"],
        acknowledged_at=r["acknowledged_at"],
        acknowledged_by=r["acknowledged_by"],
        resolved_by=r["resolved_by"],
        reopened_at=r["reopened_at"],
        reopen_count=int(r["reopen_count"]),
        escalation_level=int(r["escalation_level"]),
        escalated_at=r["escalated_at"],
        notified_severity=r["notified_severity"],
        renotified_at=r["renotified_at"],
        unknown_since=r["unknown_since"],
        data_missing_at=r["data_missing_at"],
        silence_id=r["silence_id"],
        teams=tuple(r["teams"] or ()),
    )


def _params(a: Alert) -> dict[str, object]:
    return {
        "id": a.id,
        "fingerprint": a.fingerprint,
        "rule": a.rule,
        "circle_id": a.circle_id,
        "necessity": a.necessity,
        "severity": a.severity,
        "state": a.state,
        "labels": Jsonb(a.labels),
        "annotations": Jsonb(a.annotations),
        "pending_since": a.pending_since,
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "clearing_since": a.clearing_since,
        "acknowledged_at": a.acknowledged_at,
        "acknowledged_by": a.acknowledged_by,
        "resolved_by": a.resolved_by,
        "reopened_at": a.reopened_at,
        "reopen_count": a.reopen_count,
        "escalation_level": a.escalation_level,
        "escalated_at": a.escalated_at,
        "notified_severity": a.notified_severity,
        "renotified_at": a.renotified_at,
        "unknown_since": a.unknown_since,
        "data_missing_at": a.data_missing_at,
        "silence_id": a.silence_id,
        "teams": list(a.teams),
    }


__all__ = ["Lifecycle", "Wave", "evaluate_once", "note"]
