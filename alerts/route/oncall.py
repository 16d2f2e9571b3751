"""Who is on call: a team's rotation, overridden where an override covers the moment (pure).

`at` is always an aware datetime (a naive one is a caller's bug: ValueError).
Shifts of whole days hand off at the rotation's local handoff time every
day (Asia/Shanghai has had no DST since 1991; in a zone with DST a daily
handoff stays at its local time); shorter or odd shifts step in absolute
time from the first handoff (`start` at `handoff`, local). Times before the
first handoff continue the cycle backwards, so every moment has a shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from schema.teams import Member, Rotation, Team

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Shift:
    """One turn of a rotation: `member` (an id) from `start` until `end` (exclusive), both aware."""

    member: str
    start: datetime
    end: datetime
    index: int  # the number of the turn since the first handoff (negative before it)


@dataclass(frozen=True, slots=True)
class Duty:
    """Who is on call at a moment, why, and from when until the next change (None: no change ahead)."""

    members: tuple[Member, ...]
    source: Literal["override", "rotation", "everyone"]
    since: datetime | None
    until: datetime | None


def _aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"on-call times must be aware datetimes, got naive {at.isoformat()}")


def shift_at(rotation: Rotation, at: datetime) -> Shift:
    """The turn of `rotation` that covers `at`."""
    _aware(at)
    tz = rotation.tz
    n = len(rotation.members)
    if rotation.shift % DAY == timedelta(0):
        days = rotation.shift // DAY
        local = at.astimezone(tz)
        elapsed = (local.date() - rotation.start).days - (1 if local.time() < rotation.handoff else 0)
        index = elapsed // days
        first = rotation.start + timedelta(days=index * days)
        start = datetime.combine(first, rotation.handoff, tzinfo=tz)
        end = datetime.combine(first + timedelta(days=days), rotation.handoff, tzinfo=tz)
    else:
        anchor = datetime.combine(rotation.start, rotation.handoff, tzinfo=tz).astimezone(UTC)
        index = (at - anchor) // rotation.shift
        start = (anchor + index * rotation.shift).astimezone(tz)  # stepped in UTC: absolute time
        end = (anchor + (index + 1) * rotation.shift).astimezone(tz)
    return Shift(rotation.members[index % n], start, end, index)


def duty(team: Team, at: datetime) -> Duty:
    """Who of `team` is on call at `at` (see the module docstring), and until when that holds.

    Overrides covering `at` win over the rotation; several at once are all on
    call, in order of their start. Without a rotation every member is on call.
    """
    _aware(at)
    covering = [o for o in team.overrides if o.start <= at < o.end]
    later = [o.start for o in team.overrides if o.start > at]
    if covering:
        members: list[Member] = []
        for o in covering:
            m = team.member(o.member)
            if m is not None and m not in members:
                members.append(m)
        until = min([o.end for o in covering] + later)
        return Duty(tuple(members), "override", max(o.start for o in covering), until)
    if team.rotation is None or not team.rotation.members:
        return Duty(team.members, "everyone", None, min(later) if later else None)
    shift = shift_at(team.rotation, at)
    ended = [o.end for o in team.overrides if o.end <= at]
    member = team.member(shift.member)
    return Duty(
        (member,) if member is not None else team.members,
        "rotation",
        max([shift.start, *ended]),
        min([shift.end, *later]),
    )


def on_call(team: Team, at: datetime) -> list[Member]:
    """The members of `team` on call at `at` (aware): override, else rotation, else everyone."""
    return list(duty(team, at).members)
