"""Escalation and re-notification timers (pure: `now` is passed in, nothing sleeps).

Each evaluation asks `due` of every open, paged alert (firing or
acknowledged) that is not silenced:

- **escalate**: firing and not acknowledged `escalate_after` after it
  began paging (or after its last escalation) -> the next teams of the
  escalation chains of the teams told so far are paged (`escalated`,
  `escalation_level` + 1), and so on up to the city bureau (circle team ->
  circle owner -> district bureau -> city bureau: `schema.teams.Team.
  escalates_to`);
- **re-notify**: acknowledged but not resolved `renotify_after` after the
  acknowledgement (or the last re-notification) -> every team told so far
  is paged again (`renotified`). A firing alert with nobody left to
  escalate to (the chain ended, or no teams are configured) is re-notified
  the same way, counting from its last page.

`Timers` is the one place the waits live: minutes to escalate and hours to
re-notify per severity (a severity with none never escalates / is never
re-notified), optionally per kind of the team holding the alert (the last
team told), and one `factor` that scales every wait (an emergency mode
sets it below 1 to shorten them all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from alerts.model import Alert


@dataclass(frozen=True, slots=True)
class Timers:
    """How long an alert waits before it escalates or is paged again, per severity and team kind."""

    escalate_after_min: Mapping[str, float] = field(default_factory=lambda: {"critical": 10.0, "high": 30.0})
    renotify_after_h: Mapping[str, float] = field(default_factory=lambda: {"critical": 2.0, "high": 6.0})
    escalate_by_kind: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # kind -> severity -> min
    renotify_by_kind: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # kind -> severity -> h
    factor: float = 1.0

    def __post_init__(self) -> None:
        if self.factor <= 0:
            raise ValueError("the timer factor must be positive")

    def escalate_after(self, severity: str, kind: str | None) -> timedelta | None:
        """How long a firing alert of `severity` held by a team of `kind` waits for an acknowledgement."""
        minutes = _pick(self.escalate_after_min, self.escalate_by_kind, severity, kind)
        return None if minutes is None else timedelta(minutes=minutes * self.factor)

    def renotify_after(self, severity: str, kind: str | None) -> timedelta | None:
        """How long an unresolved alert of `severity` waits before it is paged again."""
        hours = _pick(self.renotify_after_h, self.renotify_by_kind, severity, kind)
        return None if hours is None else timedelta(hours=hours * self.factor)

    def scaled(self, factor: float) -> Timers:
        """These timers with every wait multiplied by `factor` (0.5: an emergency halves them)."""
        return replace(self, factor=self.factor * factor)

    @classmethod
    def from_settings(cls, settings: Any) -> Timers:
        """From `baogong.settings.Settings` (escalate_after_min, renotify_after_h, their _by_kind, timer_factor)."""
        return cls(
            dict(settings.escalate_after_min),
            dict(settings.renotify_after_h),
            {k: dict(v) for k, v in settings.escalate_after_min_by_kind.items()},
            {k: dict(v) for k, v in settings.renotify_after_h_by_kind.items()},
            settings.alert_timer_factor,
        )


def _pick(
    default: Mapping[str, float], by_kind: Mapping[str, Mapping[str, float]], severity: str, kind: str | None
) -> float | None:
    if kind is not None and severity in by_kind.get(kind, {}):
        return by_kind[kind][severity]
    return default.get(severity)


@dataclass(frozen=True, slots=True)
class Escalation:
    """What is due for one alert now: page `teams` (escalated: the new ones; renotified: all told)."""

    kind: Literal["escalated", "renotified"]
    teams: tuple[str, ...]
    waited: timedelta  # since the moment the timer counts from
    level: int  # the alert's escalation level after this


def due(
    alert: Alert, next_teams: Sequence[str], holder_kind: str | None, timers: Timers, now: datetime
) -> Escalation | None:
    """What `alert` is due at `now`, if anything (see the module docstring).

    `next_teams` are the teams its chains lead to next (`alerts.group.Routing.next_teams`:
    none when the chains ended); `holder_kind` the kind of the team that has it now
    (the last told; None for the default receivers).
    """
    if alert.state == "firing":
        times = [t for t in (alert.paged_at, alert.escalated_at) if t is not None]
        if not times:
            return None
        base = max(times)
        if next_teams:
            after = timers.escalate_after(alert.severity, holder_kind)
            if after is not None and now - base >= after:
                return Escalation("escalated", tuple(next_teams), now - base, alert.escalation_level + 1)
            return None
        return _renotify(alert, base, holder_kind, timers, now)
    if alert.state == "acknowledged":
        since = alert.acknowledged_at or alert.escalated_at or alert.paged_at
        if since is None:
            return None
        return _renotify(alert, since, holder_kind, timers, now)
    return None


def _renotify(alert: Alert, base: datetime, kind: str | None, timers: Timers, now: datetime) -> Escalation | None:
    if alert.renotified_at is not None and alert.renotified_at > base:
        base = alert.renotified_at
    after = timers.renotify_after(alert.severity, kind)
    if after is None or now - base < after:
        return None
    return Escalation("renotified", alert.teams, now - base, alert.escalation_level)


def apply(alert: Alert, escalation: Escalation, now: datetime) -> Alert:
    """The alert after `escalation` was made at `now`."""
    if escalation.kind == "escalated":
        told = alert.teams + tuple(t for t in escalation.teams if t not in alert.teams)
        return replace(alert, escalation_level=escalation.level, escalated_at=now, teams=told)
    return replace(alert, renotified_at=now)
