"""Silences (pure): "do not page about alerts matching these labels until then", as Alertmanager's.

A silence is a list of matchers (label name, value, equality or regex; a
regex matches the whole value, as Alertmanager's do), a span
[`starts_at`, `ends_at`), who created it and why. It silences an alert when
it is active at `now` and EVERY matcher matches the alert's labels (a label
the alert does not have has the value ''). The labels the dispatcher passes
are the alert's labels plus `rule` (e.g. `circle`, `necessity`, `severity`,
`alertname`, `rule`).

A silenced alert still changes state and is recorded; only its pages are
held back (the dispatcher's job, which also writes one `silenced`
alert_events row per episode). Expiring a silence ends it now: `ends_at`
moves to the moment of expiry and `expired_by` says who.

`silenced(labels, silences, now)` is the one question the dispatcher asks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|=)\s*(.*?)\s*$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_COMMENT_CHARS = 1000


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True, slots=True)
class SilenceMatcher:
    """`name` = `value` (or, with `is_regex`, `name` =~ `value`, anchored at both ends)."""

    name: str
    value: str
    is_regex: bool = False

    def __post_init__(self) -> None:
        if not LABEL_NAME.match(self.name):
            raise ValueError(f"{self.name!r} is not a label name (e.g. circle, necessity, rule)")
        if self.is_regex:
            try:
                _regex(self.value)
            except re.error as exc:
                raise ValueError(f"{self.name}=~{self.value!r}: not a regular expression ({exc})") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.name, "")
        return _regex(self.value).fullmatch(have) is not None if self.is_regex else have == self.value

    def as_doc(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "is_regex": self.is_regex}

    def __str__(self) -> str:
        return f"{self.name}{'=~' if self.is_regex else '='}{self.value}"


@dataclass(frozen=True, slots=True)
class Silence:
    matchers: tuple[SilenceMatcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    id: int | None = None
    created_at: datetime | None = None
    expired_by: str | None = field(default=None)

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def state(self, now: datetime) -> str:
        """pending (not started), active, or expired — Alertmanager's words."""
        return "pending" if now < self.starts_at else "active" if now < self.ends_at else "expired"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return bool(self.matchers) and all(m.matches(labels) for m in self.matchers)

    def as_doc(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [m.as_doc() for m in self.matchers],
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "created_by": self.created_by,
            "comment": self.comment,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "expired_by": self.expired_by,
            "state": self.state(now),
        }

    def __str__(self) -> str:
        return " ".join(str(m) for m in self.matchers)


def silenced(labels: Mapping[str, str], silences: Iterable[Silence], now: datetime) -> Silence | None:
    """The active silence that silences an alert with `labels` at `now` (the one lasting longest), or None."""
    found = [s for s in silences if s.active(now) and s.matches(labels)]
    return max(found, key=lambda s: (s.ends_at, s.id or 0)) if found else None


# ---------------------------------------------------------------- building and checking silences


def parse_matcher(text: str) -> SilenceMatcher:
    """`circle=C03`, `necessity=~rice|flour` (regex), `rule=shortage`. Raises ValueError with a hint."""
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not LABEL=VALUE or LABEL=~REGEX (e.g. circle=C03, necessity=~rice|flour)")
    name, op, value = found.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return SilenceMatcher(name, value, op == "=~")


def matcher_from_doc(doc: Any) -> SilenceMatcher:
    """A matcher from `{"name", "value", "is_regex"}` or a `LABEL=VALUE` string (the HTTP body)."""
    if isinstance(doc, str):
        return parse_matcher(doc)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("name"), str) or not isinstance(doc.get("value"), str):
        raise ValueError('a matcher is {"name": ..., "value": ..., "is_regex": false} or "LABEL=VALUE"')
    return SilenceMatcher(doc["name"], doc["value"], bool(doc.get("is_regex", False)))


def parse_duration(text: str) -> timedelta:
    """`90m`, `2h`, `1d12h`, `1w` (s m h d w). Raises ValueError with a hint."""
    compact = text.strip().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 2h, 1d12h)")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def check(matchers: Iterable[SilenceMatcher], starts_at: datetime, ends_at: datetime, comment: str) -> None:
    """Refuse a silence that cannot be meant (ValueError saying why); nothing is stored then.

    At least one matcher, and not one that every alert matches (`circle=~.*`
    alone would silence the whole city: Alertmanager refuses it too); an end
    after the start; a comment saying why (it is the audit trail).
    """
    ms = list(matchers)
    if not ms:
        raise ValueError("a silence needs at least one matcher (e.g. circle=C03 necessity=rice)")
    if all(m.matches({}) for m in ms):
        raise ValueError("these matchers match every alert; name at least one label value (e.g. circle=C03)")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("silence times must carry a time zone")
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    if not comment.strip():
        raise ValueError("say why in a comment (it is what others read when they wonder why nobody was paged)")
    if len(comment) > MAX_COMMENT_CHARS:
        raise ValueError(f"the comment is longer than {MAX_COMMENT_CHARS} characters")


def from_row(row: Mapping[str, Any]) -> Silence:
    """A Silence from a `silences` row (migration 0014)."""
    return Silence(
        matchers=tuple(matcher_from_doc(m) for m in row["matchers"]),
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        created_by=row["created_by"],
        comment=row["comment"],
        id=row.get("id"),
        created_at=row.get("created_at"),
        expired_by=row.get("expired_by"),
    )
