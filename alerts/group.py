"""Who is told, and in how many messages: routing to teams and grouping per circle and team (pure).

`Routing` answers the dispatcher's questions about teams from a
`schema.teams.Directory` (`alerts.route`) and the default receivers:

- `teams_for(labels, rule, audience)`: the teams an alert is routed to
  (`alerts.route.route` over its labels plus `rule`; `district` is filled in
  from the circle). No team configured, or none answers for it: the default
  pseudo-team `default:<audience>`, whose receivers are the configured
  webhook URLs (`BAOGONG_WEBHOOK_URLS` for responders,
  `BAOGONG_OPERATOR_WEBHOOK_URLS` for operators) — the route Baogong had
  before teams;
- `receivers(team, audience)`: the outbox receivers of a team, one per
  channel (`team:<team>/<channel>`); a team without channels (or no longer
  in the directory) falls back to the default receivers of the audience,
  so a page is never dropped for want of a channel;
- `next_teams(told)`: where the escalation chains of the teams told so far
  lead next (`escalates_to`), each once, none already told.

`messages` groups one evaluation wave's `Notice`s (an alert and why it
pages: fired, reopened, escalated, data missing…) into one `Message` per
receiver and group, where a group is a team and a circle (an alert without
a circle is its own group). A message is one Alertmanager webhook body
(version 4) listing every alert of the group with its own status; its
status is firing while any of them fires. `notice` and `suggestions` go to
each alert's annotations (what `alerts.notify.templates` shows as 提示 and
建议调货); the alert's own link (`generatorURL`) is its acknowledge link,
and `externalURL` is that link when the message carries one alert, else
the responder app's address.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from alerts.model import Alert, Event
from alerts.notify.webhook import alertmanager_payload
from alerts.route import route
from schema.teams import KIND_NAMES, Directory

DEFAULT_PREFIX = "default:"


def default_team(audience: str) -> str:
    return DEFAULT_PREFIX + audience


@dataclass(frozen=True, slots=True)
class Routing:
    """Teams (a directory; None or empty: no teams configured) and the default receivers per audience."""

    directory: Directory | None = None
    fallback: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def has_teams(self) -> bool:
        return self.directory is not None and bool(self.directory.teams)

    def teams_for(self, labels: Mapping[str, str], rule: str, audience: str) -> tuple[str, ...]:
        if self.directory is not None and self.directory.teams:
            found = route(self.directory, {**labels, "rule": rule})
            if found:
                return tuple(found)
        return (default_team(audience),)

    def receivers(self, team: str, audience: str) -> tuple[str, ...]:
        known = self.directory.teams.get(team) if self.directory is not None else None
        if known is not None and known.channels:
            return tuple(ch.receiver(team) for ch in known.channels)
        if team.startswith(DEFAULT_PREFIX):
            return self.fallback.get(team.removeprefix(DEFAULT_PREFIX), ())
        return self.fallback.get(audience, ())

    def next_teams(self, told: Sequence[str]) -> tuple[str, ...]:
        if self.directory is None:
            return ()
        out: list[str] = []
        for team in told:
            known = self.directory.teams.get(team)
            nxt = known.escalates_to if known is not None else None
            if nxt and nxt in self.directory.teams and nxt not in told and nxt not in out:
                out.append(nxt)
        return tuple(out)

    def kind(self, team: str) -> str | None:
        known = self.directory.teams.get(team) if self.directory is not None else None
        return known.kind if known is not None else None

    def name(self, team: str) -> str:
        """How people call a team: its name (值班 receivers for the defaults)."""
        known = self.directory.teams.get(team) if self.directory is not None else None
        if known is not None:
            return known.name
        if team.startswith(DEFAULT_PREFIX):
            return "运维值班" if team.endswith("operators") else "值班"
        return team

    def kind_name(self, team: str) -> str:
        kind = self.kind(team)
        return KIND_NAMES.get(kind, "") if kind else ""


@dataclass(frozen=True, slots=True)
class Notice:
    """An alert pages `teams` with `status`, because of `reason` (an alert_events kind).

    `note` is a line for people (提示: 数据缺失…; '' for a plain firing or
    resolution), `extra` more annotations (建议调货), `link` its acknowledge link.
    """

    alert: Alert
    status: Event
    reason: str
    teams: tuple[str, ...]
    audience: str = "responders"
    note: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    link: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    """One outbox row: `payload` to `receiver`, for `team`, listing the alerts `alert_ids`."""

    receiver: str
    team: str
    group_key: str
    status: Event
    alert_ids: tuple[int, ...]
    reasons: tuple[str, ...]
    payload: dict[str, Any]


def group_labels(alert: Alert) -> dict[str, str]:
    """What a group is keyed by: the circle, else every identity label (one alert)."""
    if alert.circle_id:
        return {"circle": alert.circle_id}
    return {k: v for k, v in sorted(alert.labels.items()) if k != "severity"}


def group_key(team: str, alert: Alert) -> str:
    """`{}/{team="C03-team"}:{circle="C03"}`: Alertmanager's form (route, then group labels)."""
    labels = ", ".join(f'{k}="{v}"' for k, v in group_labels(alert).items())
    return f'{{}}/{{team="{team}"}}:{{{labels}}}'


def messages(notices: Iterable[Notice], routing: Routing, base_url: str = "") -> list[Message]:
    """One Message per receiver and group for this wave's notices (see the module docstring), in a stable order."""
    groups: dict[tuple[str, str], list[Notice]] = {}
    audiences: dict[tuple[str, str], str] = {}
    for notice in notices:
        for team in notice.teams:
            pair = (team, group_key(team, notice.alert))
            groups.setdefault(pair, []).append(notice)
            audiences.setdefault(pair, notice.audience)
    out: list[Message] = []
    for (team, key), members in groups.items():
        merged = _merge(members)
        ids = tuple(n.alert.id for n in merged if n.alert.id is not None)
        status = Event.FIRED if any(n.status is Event.FIRED for n in merged) else Event.RESOLVED
        reasons = tuple(dict.fromkeys(r for n in merged for r in n.reason.split("+")))
        for receiver in routing.receivers(team, audiences[(team, key)]):
            body = payload(merged, receiver, team, key, status, base_url)
            out.append(Message(receiver, team, key, status, ids, reasons, body))
    return out


def _merge(notices: list[Notice]) -> list[Notice]:
    """One notice per alert (reasons and notes joined; a resolution wins), ordered by circle, necessity, id."""
    by_alert: dict[int | str, Notice] = {}
    for n in notices:
        key = n.alert.id if n.alert.id is not None else n.alert.fingerprint
        seen = by_alert.get(key)
        if seen is None:
            by_alert[key] = n
            continue
        note = "；".join(x for x in (seen.note, n.note) if x)
        status = Event.RESOLVED if Event.RESOLVED in (seen.status, n.status) else Event.FIRED
        by_alert[key] = replace(
            seen,
            status=status,
            reason=f"{seen.reason}+{n.reason}",
            note=note,
            extra={**seen.extra, **n.extra},
            link=seen.link or n.link,
            alert=n.alert,
        )
    return sorted(by_alert.values(), key=lambda n: (n.alert.necessity or "", n.alert.id or 0))


def payload(
    notices: Sequence[Notice], receiver: str, team: str, key: str, status: Event, base_url: str = ""
) -> dict[str, Any]:
    """The Alertmanager webhook body (version 4) of one grouped message."""
    entries = []
    for n in notices:
        notes = dict(n.alert.annotations)
        if n.note:
            notes["notice"] = n.note
        notes.update(n.extra)
        link = n.link if n.status is Event.FIRED else ""
        entry = alertmanager_payload(replace(n.alert, annotations=notes), n.status, receiver, link)["alerts"][0]
        if not link:
            entry["generatorURL"] = base_url
        entries.append(entry)
    links = [e["generatorURL"] for e in entries if e["generatorURL"]]
    external = links[0] if len(entries) == 1 and links else base_url
    common_labels = _common([e["labels"] for e in entries])
    common_notes = _common([e["annotations"] for e in entries])
    groups = group_labels(notices[0].alert)
    return {
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": 0,
        "status": status.value,
        "receiver": receiver,
        "groupLabels": groups,
        "commonLabels": common_labels,
        "commonAnnotations": common_notes,
        "externalURL": external,
        "alerts": entries,
    }


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


__all__ = [
    "DEFAULT_PREFIX",
    "Message",
    "Notice",
    "Routing",
    "default_team",
    "group_key",
    "group_labels",
    "messages",
    "payload",
]
