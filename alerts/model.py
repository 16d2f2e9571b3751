"""The alert lifecycle (pure): pending -> firing -> acknowledged -> resolved, reopened when it recurs.

A rule looks at one subject and says what the condition is:
- ACTIVE: the condition holds (with a severity);
- BAND: it does not hold, but the value has not recovered past the
  hysteresis line either (a firing alert stays firing);
- RECOVERED: recovered past the hysteresis line;
- UNKNOWN: the data is stale or missing — never a reason to fire or to
  resolve.

`advance` moves one alert one evaluation forward and lists its `Change`s
(each one alert_events row; `page` says whether it pages and with which
status). One alert per (rule, fingerprint) while it lasts:

- a new ACTIVE subject is `pending`; it fires after the condition held
  `Policy.for_s`, and resolves after recovery held `clear_for_s` (a value
  flapping around the line pages once). A pending alert that stops being
  ACTIVE resolves quietly: it never fired, nobody was told;
- UNKNOWN under a pending alert stops its clock: the hold starts again at
  the next ACTIVE (`unknown_since`), so a stale spell never counts as time
  the condition held;
- UNKNOWN under a firing or acknowledged alert holds it (no false
  resolution) and, once it has lasted `for_s`, tells the teams "data
  missing" once (`data_missing`, `data_missing_at`); the first ACTIVE
  or BAND condition after that tells them "data back" (`data_back`); data
  coming back recovered says nothing until it resolves (the resolution
  says it all) or turns ACTIVE or BAND again;
- a worse severity than anyone was paged about (`notified_severity`:
  high -> critical) pages again (`severity_raised`); getting better does
  not, nor does getting worse again up to what was already paged;
- acknowledged (a person, `alerts.actions`) changes none of the above: an
  acknowledged alert still resolves by itself on recovery, and is paged
  again about missing data or a worse severity (escalation stops:
  `alerts.escalate`);
- the same subject ACTIVE again within `reopen_window_s` of its
  resolution (the caller passes the latest resolved alert of that
  fingerprint) goes through the hold again on the SAME row (state pending,
  `starts_at` and `ends_at` kept), then goes back to firing (`reopened`,
  `reopen_count` + 1, acknowledgement and escalation cleared). A recurrence
  that does not hold leaves the row resolved as it was. Resolving by hand
  while the levels still say shortage therefore reopens it after the hold:
  silence what should not page (`alerts.silence`);
- `close_removed` closes an alert whose circle no longer exists.

`step` is the narrow view older callers use: the alert and its FIRED or
RESOLVED page, if any.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class Condition(StrEnum):
    ACTIVE = "active"
    BAND = "band"
    RECOVERED = "recovered"
    UNKNOWN = "unknown"


class Event(StrEnum):
    """The status of a page (the Alertmanager body's `status`)."""

    FIRED = "firing"
    RESOLVED = "resolved"


#: How bad each severity is; a change to a higher rank than was paged pages again.
SEVERITY_RANK: Mapping[str, int] = {"info": 0, "warning": 1, "high": 2, "critical": 3}
OPEN_STATES = frozenset({"pending", "firing", "acknowledged"})
PAGED_STATES = frozenset({"firing", "acknowledged"})


@dataclass(frozen=True, slots=True)
class Policy:
    for_s: float
    clear_for_s: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """A rule's view of one subject at one evaluation."""

    condition: Condition
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


@dataclass(frozen=True, slots=True)
class Alert:
    fingerprint: str
    rule: str
    severity: str
    state: str  # pending | firing | acknowledged | resolved
    labels: dict[str, str]
    annotations: dict[str, str]
    pending_since: datetime
    starts_at: datetime | None = None  # first fired
    ends_at: datetime | None = None  # resolved (kept while a reopening is pending)
    clearing_since: datetime | None = None
    circle_id: str | None = None
    necessity: str | None = None
    id: int | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_by: str | None = None
    reopened_at: datetime | None = None
    reopen_count: int = 0
    escalation_level: int = 0
    escalated_at: datetime | None = None
    notified_severity: str | None = None
    renotified_at: datetime | None = None
    unknown_since: datetime | None = None
    data_missing_at: datetime | None = None
    silence_id: int | None = None
    teams: tuple[str, ...] = ()  # every team told, in order (alerts.group.Routing)

    @property
    def paged_at(self) -> datetime | None:
        """When the current episode began paging: the last reopening, else the first firing."""
        return self.reopened_at or self.starts_at

    @property
    def reopening(self) -> bool:
        """A pending alert that fired before: a recurrence being held."""
        return self.state == "pending" and self.starts_at is not None


@dataclass(frozen=True, slots=True)
class Change:
    """One thing that happened to an alert (an alert_events row); `page`: the status it pages with, if any."""

    kind: str  # pending fired reopened severity_raised data_missing data_back resolved closed_removed_circle
    page: Event | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Step:
    alert: Alert | None
    changes: tuple[Change, ...] = ()

    @property
    def pages(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.page is not None)


def fingerprint(labels: dict[str, str]) -> str:
    """A stable id of a label set (identity labels only: severity excluded), 16 hex chars."""
    ident = {k: v for k, v in labels.items() if k != "severity"}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def worse(severity: str, than: str | None) -> bool:
    """Is `severity` worse than `than` (None: nothing paged yet, so no)?"""
    if than is None:
        return False
    return SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(than, 0)


def reopenable(alert: Alert, now: datetime, reopen_window_s: float) -> bool:
    """A resolved alert that fired and resolved at most `reopen_window_s` before `now`."""
    return (
        alert.state == "resolved"
        and alert.starts_at is not None
        and alert.ends_at is not None
        and (now - alert.ends_at).total_seconds() <= reopen_window_s
    )


def advance(
    alert: Alert | None,
    verdict: Verdict,
    rule: str,
    now: datetime,
    policy: Policy,
    reopen_window_s: float = 0.0,
) -> Step:
    """One evaluation of one subject: the alert's next state and what changed (see the module docstring).

    `alert` is the subject's open alert, else its latest resolved one (a
    candidate for reopening), else None.
    """
    cond = verdict.condition
    if alert is not None and alert.state == "resolved":
        if not reopenable(alert, now, reopen_window_s):
            alert = None  # too long ago (or it never fired): a new alert, if any
        elif cond is not Condition.ACTIVE:
            return Step(None)
    if alert is not None and alert.state == "resolved":
        held = replace(
            alert,
            state="pending",
            pending_since=now,
            severity=verdict.severity,
            labels=verdict.labels,
            annotations=verdict.annotations,
            clearing_since=None,
            unknown_since=None,
        )
        return _hold(held, now, policy, Change("pending", None, {"reopening": True, "severity": verdict.severity}))

    if alert is None:
        if cond is not Condition.ACTIVE:
            return Step(None)
        new = Alert(
            fingerprint=verdict.fingerprint,
            rule=rule,
            severity=verdict.severity,
            state="pending",
            labels=verdict.labels,
            annotations=verdict.annotations,
            pending_since=now,
            circle_id=verdict.labels.get("circle"),
            necessity=verdict.labels.get("necessity"),
        )
        return _hold(new, now, policy, Change("pending", None, {"severity": verdict.severity}))

    if alert.state == "pending":
        if cond is Condition.UNKNOWN:
            if alert.unknown_since is not None:
                return Step(alert)
            return Step(replace(alert, unknown_since=now))
        if cond is Condition.ACTIVE:
            alert = replace(alert, severity=verdict.severity, labels=verdict.labels, annotations=verdict.annotations)
            if alert.unknown_since is not None:  # a stale spell: the hold starts again now
                alert = replace(alert, pending_since=now, unknown_since=None)
            return _hold(alert, now, policy)
        # it did not hold: nobody was told, so nothing to say
        if alert.reopening:
            return Step(
                replace(alert, state="resolved", unknown_since=None),
                (Change("resolved", None, {"fired": False, "reopening": True}),),
            )
        return Step(
            replace(alert, state="resolved", ends_at=now, unknown_since=None),
            (Change("resolved", None, {"fired": False}),),
        )

    # firing or acknowledged
    if cond is Condition.UNKNOWN:
        since = alert.unknown_since or now
        alert = replace(alert, clearing_since=None, unknown_since=since)
        if alert.data_missing_at is None and (now - since).total_seconds() >= policy.for_s:
            return Step(
                replace(alert, data_missing_at=now),
                (Change("data_missing", Event.FIRED, {"since": since.isoformat()}),),
            )
        return Step(alert)

    changes: list[Change] = []
    if cond is Condition.RECOVERED:
        since = alert.clearing_since or now
        if (now - since).total_seconds() >= policy.clear_for_s:
            resolved = replace(
                alert,
                state="resolved",
                ends_at=now,
                clearing_since=since,
                annotations=verdict.annotations,
                unknown_since=None,
                data_missing_at=None,
            )
            return Step(resolved, (Change("resolved", Event.RESOLVED, {"severity": alert.severity}),))
        alert = replace(alert, clearing_since=since)
    elif cond is Condition.ACTIVE:
        alert = replace(
            alert,
            severity=verdict.severity,
            labels=verdict.labels,
            annotations=verdict.annotations,
            clearing_since=None,
        )
    else:  # BAND
        alert = replace(alert, clearing_since=None)

    if alert.data_missing_at is not None and cond is not Condition.RECOVERED:
        changes.append(Change("data_back", Event.FIRED, {"missing_since": _iso(alert.unknown_since)}))
        alert = replace(alert, data_missing_at=None)
    alert = replace(alert, unknown_since=None)
    if cond is Condition.ACTIVE and worse(alert.severity, alert.notified_severity):
        changes.append(Change("severity_raised", Event.FIRED, {"from": alert.notified_severity, "to": alert.severity}))
        alert = replace(alert, notified_severity=alert.severity)
    return Step(alert, tuple(changes))


def close_removed(alert: Alert, now: datetime) -> Step:
    """Close an open alert whose circle was removed: resolved now; a resolved page if anyone was paged."""
    page = Event.RESOLVED if alert.state in PAGED_STATES else None
    closed = replace(alert, state="resolved", ends_at=now, unknown_since=None, data_missing_at=None)
    if alert.reopening:
        closed = replace(closed, ends_at=alert.ends_at)
    return Step(closed, (Change("closed_removed_circle", page, {"circle": alert.circle_id}),))


def step(
    alert: Alert | None, verdict: Verdict, rule: str, now: datetime, policy: Policy
) -> tuple[Alert | None, Event | None]:
    """`advance` without reopening, reduced to the alert and its FIRED or RESOLVED page, if any."""
    result = advance(alert, verdict, rule, now, policy)
    event = next(
        (c.page for c in result.changes if c.kind in ("fired", "reopened", "resolved") and c.page is not None),
        None,
    )
    return result.alert, event


def _hold(alert: Alert, now: datetime, policy: Policy, first: Change | None = None) -> Step:
    """A pending alert: fire it (or reopen it) if the condition held `for_s`."""
    changes = [first] if first is not None else []
    if (now - alert.pending_since).total_seconds() < policy.for_s:
        return Step(alert, tuple(changes))
    if alert.starts_at is None:
        fired = replace(alert, state="firing", starts_at=now, notified_severity=alert.severity)
        changes.append(Change("fired", Event.FIRED, {"severity": alert.severity}))
        return Step(fired, tuple(changes))
    reopened = replace(
        alert,
        state="firing",
        reopened_at=now,
        reopen_count=alert.reopen_count + 1,
        ends_at=None,
        clearing_since=None,
        acknowledged_at=None,
        acknowledged_by=None,
        resolved_by=None,
        escalation_level=0,
        escalated_at=None,
        renotified_at=None,
        unknown_since=None,
        data_missing_at=None,
        silence_id=None,
        notified_severity=alert.severity,
        teams=(),
    )
    detail = {"reopen_count": reopened.reopen_count, "resolved_at": _iso(alert.ends_at), "severity": alert.severity}
    changes.append(Change("reopened", Event.FIRED, detail))
    return Step(reopened, tuple(changes))


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
