"""Responder teams and the routing tree: the reference data that says who is paged (pure data, no I/O).

A `Team` is one body that answers pages: a living circle's emergency supply
team (应急保供队伍), its circle owner (圈主), a community, the district
commerce bureau, the city commerce bureau (市商务局), the market supervision
bureau (市市场监管局, prices) or the operators of the city data centre. Its
`kind` says which; scoped kinds name what they answer for (`scope`: a circle
id, a community id or a district name). A team has members (name, phone,
e-mail), channels (group robots, e-mail, SMS, webhooks: `Channel`, which maps
1:1 onto `alerts.notify.ChannelSpec` — kind plus that kind's fields), at
most one on-call `Rotation` with `Override`s, and names the next team of its
escalation chain (`escalates_to`).

The routing tree (`RouteTree`) is Alertmanager's: a root `Route` that every
alert enters, child routes with label `Matcher`s, `continue`, first match
wins; a route's `teams` are team ids or references `@<kind>` that resolve to
the team of that kind whose scope is the alert's label of the same name —
`@circle_team` is "the emergency supply team of the alert's circle", so the
common case needs no per-circle route. `alerts.route` makes the decisions
(route, on call, escalation chain); `schema.teams_file` reads and checks the
operators' teams file; `schema.teams_store` stores and loads a `Directory`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

#: Team kinds and the alert label their scope matches (None: the kind has no scope; one team serves all).
KINDS: Mapping[str, str | None] = {
    "circle_team": "circle",  # 应急保供队伍 of one living circle
    "circle_owner": "circle",  # 圈主 of one living circle
    "community": "community",  # a community (the management unit of its circle's team)
    "district_bureau": "district",  # 区商务局
    "city_bureau": None,  # 市商务局 (lead)
    "market_supervision": None,  # 市市场监管局 (prices)
    "operators": None,  # the city data centre's operators (feeds, pipeline)
}
#: How people call each kind (messages and `baogong teams list`).
KIND_NAMES: Mapping[str, str] = {
    "circle_team": "应急保供队伍",
    "circle_owner": "圈主",
    "community": "社区",
    "district_bureau": "区商务局",
    "city_bureau": "市商务局",
    "market_supervision": "市市场监管局",
    "operators": "运维值班",
}
#: Channel kinds (`alerts.notify.KINDS`), each with the fields a teams file must give (`alerts.notify` checks the rest).
#: An `email` channel without `to`, or an `sms` channel without `phones`, reaches whoever of the team is on call.
CHANNEL_KINDS: Mapping[str, tuple[str, ...]] = {
    "webhook": ("url",),
    "wecom": ("url",),
    "dingtalk": ("url",),
    "email": ("host", "sender"),
    "sms": ("url",),
    "alertmanager": ("url",),
}
#: The recipients field of the per-person kinds, filled from the on-call members when a channel has none.
RECIPIENTS: Mapping[str, str] = {"email": "to", "sms": "phones"}
#: Channel config fields that hold a secret or carry one (robot URLs have their key in the query).
SECRET_FIELDS = frozenset({"url", "secret", "token", "password", "api_key", "key"})
DEFAULT_TIME_ZONE = "Asia/Shanghai"
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
#: A reference to "the team of this kind whose scope is the alert's label" in a route's `teams`.
REF_PREFIX = "@"


@dataclass(frozen=True, slots=True)
class Member:
    id: str  # unique within its team; rotations and overrides name members by it
    name: str
    phone: str = ""  # digits only, e.g. 13800000301 ('' when none)
    email: str = ""


@dataclass(frozen=True, slots=True)
class Channel:
    """Where a team is told: `kind` (CHANNEL_KINDS) and that kind's fields, as `alerts.notify.ChannelSpec` has them.

    1:1 with a ChannelSpec: `alerts.notify.parse_channel(channel.settings(on_call))`.
    `name` is unique within the team and log-safe (`label` never shows a URL
    or a secret); the receiver a notification is queued for is
    `receiver(team_id)`. `config` holds secrets (robot keys, SMTP passwords)
    as given: the database stores them as it stores the rest.
    """

    name: str
    kind: str
    config: Mapping[str, Any] = field(default_factory=dict)

    def receiver(self, team_id: str) -> str:
        """The outbox receiver name of this channel of `team_id`: stable and log-safe."""
        return f"team:{team_id}/{self.name}"

    @property
    def label(self) -> str:
        """`wecom (wecom, qyapi.weixin.qq.com)`: for people; never the key in a robot URL or a secret."""
        url = str(self.config.get("url", ""))
        host = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1] if url else ""
        shown = f"{self.kind}, {host}" if host else self.kind
        field_ = RECIPIENTS.get(self.kind)
        if field_ is not None:
            given = self.config.get(field_)
            shown += ", fixed recipients" if given else ", to whoever is on call"
        return f"{self.name} ({shown})"

    def settings(self, on_call: Sequence[Member]) -> dict[str, Any]:
        """The flat mapping `alerts.notify.parse_channel` takes: `kind` and the config, where an e-mail or SMS
        channel without fixed recipients gets the e-mail addresses or phones of `on_call` (who is on call now)."""
        out: dict[str, Any] = {"kind": self.kind, **self.config}
        field_ = RECIPIENTS.get(self.kind)
        if field_ is not None and not out.get(field_):
            contacts = (m.email if self.kind == "email" else m.phone for m in on_call)
            out[field_] = [c for c in contacts if c]
        return out


@dataclass(frozen=True, slots=True)
class Rotation:
    """Members take turns of `shift`, in `members` order; the first turn starts at `start` `handoff`, local time.

    Shifts of whole days hand off at `handoff` local time every time (also
    across a DST change, where a zone has one); other lengths step in
    absolute time from the first handoff.
    """

    members: tuple[str, ...]
    shift: timedelta
    handoff: time
    start: date
    time_zone: str = DEFAULT_TIME_ZONE

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True, slots=True)
class Override:
    """`member` is on call instead of the rotation from `start` (inclusive) until `end` (exclusive)."""

    member: str
    start: datetime  # aware
    end: datetime  # aware


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    kind: str  # KINDS
    scope: str = ""  # circle id, community id or district name, by kind; '' for unscoped kinds
    members: tuple[Member, ...] = ()
    channels: tuple[Channel, ...] = ()
    rotation: Rotation | None = None
    overrides: tuple[Override, ...] = ()  # sorted by (start, member)
    escalates_to: str | None = None

    def member(self, member_id: str) -> Member | None:
        return next((m for m in self.members if m.id == member_id), None)

    @property
    def time_zone(self) -> str:
        return self.rotation.time_zone if self.rotation else DEFAULT_TIME_ZONE


@dataclass(frozen=True, slots=True)
class Matcher:
    """One Alertmanager matcher: `label` `op` `value`, op in = != =~ !~ (regexes match the whole value).

    A label the alert does not have has the value '' (so `community=""` matches an alert without one).
    """

    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = re.fullmatch(self.value, have) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


@dataclass(frozen=True, slots=True)
class Route:
    """A node of the routing tree. `teams` None: inherit the parent's (the root's default is no team)."""

    matchers: tuple[Matcher, ...] = ()
    teams: tuple[str, ...] | None = None
    continue_: bool = False
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteTree:
    """The stored routing tree: `root` and the `fallback` teams of an alert that reaches no team."""

    root: Route = Route(teams=(REF_PREFIX + "circle_team",))
    fallback: tuple[str, ...] = ()


#: What routes when no tree was ever imported: every alert to its circle's team, nothing else.
DEFAULT_TREE = RouteTree()


@dataclass(frozen=True, slots=True)
class Directory:
    """Everything routing and on-call decisions read: teams by id, the tree, each circle's district."""

    teams: Mapping[str, Team]
    tree: RouteTree = DEFAULT_TREE
    circle_districts: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- the tree as a stored document (JSON)


def tree_to_doc(tree: RouteTree) -> dict[str, Any]:
    """The tree as the JSON document stored in `team_routes` (and written in a teams file under `routes`)."""
    doc = route_to_doc(tree.root)
    if tree.fallback:
        doc["fallback"] = list(tree.fallback)
    return doc


def route_to_doc(route: Route) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if route.matchers:
        doc["matchers"] = [str(m) for m in route.matchers]
    if route.teams is not None:
        doc["teams"] = list(route.teams)
    if route.continue_:
        doc["continue"] = True
    if route.routes:
        doc["routes"] = [route_to_doc(r) for r in route.routes]
    return doc


_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


def parse_matcher(text: str) -> Matcher:
    """`severity="critical"`, `alertname=~"Supply.*"`, `circle!=C03`; raise ValueError saying what is wrong."""
    found = _MATCHER.match(text)
    if not found:
        raise ValueError(f"{text!r} is not a matcher (label=value, label!=value, label=~regex, label!~regex)")
    label, op, value = found.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{text!r}: bad regex: {exc}") from None
    return Matcher(label, op, value)


def route_from_doc(doc: Mapping[str, Any]) -> Route:
    """The inverse of `route_to_doc` for a stored (already checked) document."""
    teams = doc.get("teams")
    return Route(
        matchers=tuple(parse_matcher(m) for m in doc.get("matchers", ())),
        teams=None if teams is None else tuple(teams),
        continue_=bool(doc.get("continue", False)),
        routes=tuple(route_from_doc(r) for r in doc.get("routes", ())),
    )


def tree_from_doc(doc: Mapping[str, Any]) -> RouteTree:
    return RouteTree(root=route_from_doc(doc), fallback=tuple(doc.get("fallback", ())))


def teams_named(route: Route) -> list[str]:
    """Every entry of `teams` in the tree under `route` (ids and @references), depth first."""
    out = list(route.teams or ())
    for child in route.routes:
        out += teams_named(child)
    return out
