"""The alert lifecycle (pure): pending -> firing -> resolved, with hold times and hysteresis.

A rule looks at one level and says what the condition is:
- ACTIVE: the condition holds (with a severity);
- BAND: it does not hold, but the value has not recovered past the
  hysteresis line either (a firing alert stays firing);
- RECOVERED: recovered past the hysteresis line;
- UNKNOWN: the data is stale or missing — never a reason to fire or to
  resolve; everything holds still.

`step` moves one alert one evaluation forward and says whether that move
pages anyone (FIRED or RESOLVED). An alert fires after its condition held
`for_s`, and resolves after recovery held `clear_for_s`; a value flapping
around the threshold therefore pages once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


class Condition(StrEnum):
    ACTIVE = "active"
    BAND = "band"
    RECOVERED = "recovered"
    UNKNOWN = "unknown"


class Event(StrEnum):
    FIRED = "firing"
    RESOLVED = "resolved"


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
    state: str  # pending | firing | resolved
    labels: dict[str, str]
    annotations: dict[str, str]
    pending_since: datetime
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    clearing_since: datetime | None = None
    circle_id: str | None = None
    necessity: str | None = None
    id: int | None = None


def fingerprint(labels: dict[str, str]) -> str:
    """A stable id of a label set (identity labels only: severity excluded), 16 hex chars."""
    ident = {k: v for k, v in labels.items() if k != "severity"}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def step(
    alert: Alert | None, verdict: Verdict, rule: str, now: datetime, policy: Policy
) -> tuple[Alert | None, Event | None]:
    """One evaluation of one subject: the alert's next state and the page it causes, if any."""
    cond = verdict.condition
    if alert is None:
        if cond is not Condition.ACTIVE:
            return None, None
        alert = Alert(
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
        return _maybe_fire(alert, now, policy)

    if alert.state == "pending":
        if cond is Condition.ACTIVE:
            alert = replace(alert, severity=verdict.severity, labels=verdict.labels, annotations=verdict.annotations)
            return _maybe_fire(alert, now, policy)
        if cond is Condition.UNKNOWN:
            return alert, None
        return replace(alert, state="resolved", ends_at=now), None  # never fired: nobody to tell

    # firing
    if cond is Condition.RECOVERED:
        since = alert.clearing_since or now
        if (now - since).total_seconds() >= policy.clear_for_s:
            return replace(
                alert, state="resolved", ends_at=now, clearing_since=since, annotations=verdict.annotations
            ), Event.RESOLVED
        return replace(alert, clearing_since=since), None
    if cond is Condition.ACTIVE:
        return replace(
            alert,
            severity=verdict.severity,
            labels=verdict.labels,
            annotations=verdict.annotations,
            clearing_since=None,
        ), None
    return replace(alert, clearing_since=None), None


def _maybe_fire(alert: Alert, now: datetime, policy: Policy) -> tuple[Alert, Event | None]:
    if (now - alert.pending_since).total_seconds() >= policy.for_s:
        return replace(alert, state="firing", starts_at=now), Event.FIRED
    return alert, None
