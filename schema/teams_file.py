"""The operators' teams file: YAML (teams, members, channels, rotations, overrides, routes) or a members CSV.

Reading and checking only (`read_teams_file`, `check`): pure apart from
reading the file; `schema.teams_store.import_teams` writes the result.

YAML (every scalar is read as text, so `08:00`, `0455…` and `no` mean what
they say)::

    teams:
      - id: C03-team                  # letters, digits, _ . -
        name: 建设生活圈应急保供队
        kind: circle_team             # schema.teams.KINDS
        circle: C03                   # the scope its kind needs: circle, community or district
        escalates_to: C03-owner
        members:
          - {id: wang, name: 王示例, phone: 138-0000-0301, email: wang@example.invalid}
        channels:
          - {kind: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"}
        rotation: {members: [wang, li], shift: 24h, handoff: "08:00", start: 2024-01-01}
        overrides:
          - {member: li, from: 2026-03-01 22:00, until: 2026-03-02 06:00}   # naive: the team's time zone
    routes:                           # the routing tree; the root takes every alert
      teams: ["@circle_team"]
      fallback: [city-bureau]
      routes:
        - matchers: ['severity="critical"']
          teams: ["@circle_team", "@circle_owner"]

CSV (`.csv`): one member a row, columns `team,id,name` and optionally
`phone,email`; it adds and updates members of teams already stored.

The unit of a YAML file is the team: a team block with any problem is
rejected whole (each problem reported with its line and field) and the
stored team, if any, stays as it was; the other teams are imported. The
unit of a CSV is the row. A `routes` tree with any problem is rejected whole
and the stored tree stays. In a team block, `members`, `channels`,
`rotation`, `overrides` and `escalates_to` that are absent keep what is
stored (a key present with an empty value clears it). Teams and members not
in the file are left alone: an import adds and changes, never deletes.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schema.teams import (
    CHANNEL_KINDS,
    DEFAULT_TIME_ZONE,
    ID_PATTERN,
    KINDS,
    RECIPIENTS,
    REF_PREFIX,
    Channel,
    Member,
    Override,
    Rotation,
    Route,
    RouteTree,
    Team,
    parse_matcher,
)

TEAM_KEYS: tuple[str, ...] = ("id", "name", "kind", "circle", "community", "district", "escalates_to")
TEAM_KEYS += ("members", "channels", "rotation", "overrides")
MEMBER_KEYS = ("id", "name", "phone", "email")
ROTATION_KEYS = ("members", "shift", "handoff", "start", "time_zone")
OVERRIDE_KEYS = ("member", "from", "until")
ROUTE_KEYS = ("matchers", "teams", "continue", "routes")
CSV_REQUIRED = ("team", "id", "name")
CSV_OPTIONAL = ("phone", "email")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SHIFT = re.compile(r"^(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?$")
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0", ""})


#: Checks one channel's settings (`Channel.settings`) fully; raises ValueError saying what is wrong, never a value.
#: The CLI passes `alerts.notify.parse_channel`; without one only the fields CHANNEL_KINDS names are checked.
ChannelCheck = Callable[[Mapping[str, Any]], object]


class TeamFileError(ValueError):
    """The file as a whole is unusable (unreadable, not YAML, wrong shape, missing columns); nothing was written."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """One problem: `line` of the file, the `field` (a path inside the block), `subject` (team id, `routes`…)."""

    line: int
    field: str
    reason: str
    subject: str = ""

    def __str__(self) -> str:
        who = f"{self.subject}: " if self.subject else ""
        return f"line {self.line}: {who}{self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Reference:
    """What a team is checked against: the registry's circles, communities and districts."""

    circles: frozenset[str]
    communities: frozenset[str]
    districts: frozenset[str]


@dataclass
class Checked:
    """A checked file: the good teams as they will be stored (merged with the stored ones), the tree, the problems."""

    kind: str  # 'yaml' or 'csv'
    rows_read: int = 0  # team blocks, or CSV rows
    teams: list[tuple[int, Team]] = field(default_factory=list)  # (line, team), in file order
    tree: RouteTree | None = None  # None: no routes in the file, or rejected
    tree_line: int | None = None
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        """Rejected team blocks or CSV rows (and the tree, counted as one)."""
        return len({(r.line, r.subject) for r in self.rejected if r.subject != "routes"}) + (
            1 if any(r.subject == "routes" for r in self.rejected) else 0
        )


# ---------------------------------------------------------------- reading YAML with line numbers


class YDict(dict[str, Any]):
    """A YAML mapping that remembers its line and each key's line (1-based)."""

    line: int
    lines: dict[str, int]
    duplicates: list[tuple[int, str]]


class YList(list[Any]):
    """A YAML sequence that remembers its line and each item's line (1-based)."""

    line: int
    lines: list[int]


def _loader() -> type:
    import yaml

    class TextLoader(yaml.SafeLoader):
        """Only `~`/empty are special: every other scalar is text (no YAML 1.1 sexagesimals, octals, yes/no)."""

    TextLoader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag == "tag:yaml.org,2002:null"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return TextLoader


def _convert(node: Any, depth: int = 0) -> Any:
    import yaml

    if depth > 50:
        raise TeamFileError(f"line {node.start_mark.line + 1}: nested too deep (a recursive alias?)")
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        return None if node.tag == "tag:yaml.org,2002:null" else str(node.value)
    if isinstance(node, yaml.SequenceNode):
        items = YList(_convert(item, depth + 1) for item in node.value)
        items.line, items.lines = line, [item.start_mark.line + 1 for item in node.value]
        return items
    mapping = YDict()
    mapping.line, mapping.lines, mapping.duplicates = line, {}, []
    for key_node, value_node in node.value:
        key = _convert(key_node, depth + 1)
        if not isinstance(key, str):
            raise TeamFileError(f"line {key_node.start_mark.line + 1}: a key must be text")
        if key in mapping:
            mapping.duplicates.append((key_node.start_mark.line + 1, key))
            continue
        mapping[key] = _convert(value_node, depth + 1)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


def parse_yaml(text: str, name: str = "<teams>") -> Any:
    """The YAML document as YDict/YList/str/None with lines; TeamFileError (with the line) if it is not YAML."""
    import yaml

    try:
        node = yaml.compose(text, Loader=_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise TeamFileError(f"{name}: {where}not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise TeamFileError(f"{name}: not valid YAML: {exc}") from None
    return None if node is None else _convert(node)


# ---------------------------------------------------------------- small parsers (raise ValueError with the reason)


def _unknown(value: str, known: Iterable[str], what: str) -> str:
    candidates = sorted(set(known))
    close = difflib.get_close_matches(value, candidates, n=1)
    if close:
        return f"unknown {what} {value!r} (did you mean {close[0]!r}?)"
    if len(candidates) <= 12:
        return f"unknown {what} {value!r}; known: {', '.join(candidates) or '(none)'}"
    return f"unknown {what} {value!r}"


def normalise_phone(text: str) -> str:
    """`138-0000-0301` -> `13800000301`; `+86 138…` keeps no prefix; raise ValueError if it is no phone number."""
    digits = re.sub(r"[\s\-()]", "", text)
    if digits.startswith("+86"):
        digits = digits[3:]
    if not re.fullmatch(r"\+?\d{7,15}", digits):
        raise ValueError(f"{text!r} is not a phone number (digits, spaces and dashes, e.g. 138-0000-0301)")
    if digits.startswith("1") and len(digits) != 11:
        raise ValueError(f"{text!r}: a mobile number has 11 digits")
    return digits


def parse_shift(text: str) -> timedelta:
    """`24h`, `1d`, `12h`, `7d`, `1h30m`: a positive whole number of minutes."""
    found = _SHIFT.fullmatch(text.strip().lower())
    if not text.strip() or not found or not any(found.groups()):
        raise ValueError(f"{text!r} is not a shift length (e.g. 24h, 1d, 12h, 7d, 90m)")
    d, h, m = (int(g or 0) for g in found.groups())
    shift = timedelta(days=d, hours=h, minutes=m)
    if shift <= timedelta(0):
        raise ValueError(f"{text!r}: a shift must be longer than zero")
    return shift


def parse_hhmm(text: str) -> time:
    found = _HHMM.fullmatch(text.strip())
    if not found or int(found[1]) > 23 or int(found[2]) > 59:
        raise ValueError(f'{text!r} is not a time of day HH:MM (e.g. "08:00")')
    return time(int(found[1]), int(found[2]))


def parse_moment(text: str, tz: ZoneInfo) -> datetime:
    """ISO 8601 (`2026-03-01 22:00`, `2026-03-01T22:00+08:00`, `2026-03-01`); naive means `tz`."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time (e.g. 2026-03-01 22:00)") from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{text!r} is not true or false")


def _zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {text!r} (e.g. {DEFAULT_TIME_ZONE})") from None


# ---------------------------------------------------------------- checking one team block (pure)


class _Problems:
    """Collects (line, field, reason) for one block."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str, str]] = []

    def add(self, line: int, name: str, reason: str) -> None:
        self.items.append((line, name, reason))


def _text(block: YDict, key: str, p: _Problems, *, required: bool = False, where: str = "") -> str | None:
    value = block.get(key)
    line = block.lines.get(key, block.line)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            p.add(line, where + key, "missing" if key not in block else "empty")
        return None
    if not isinstance(value, str):
        p.add(line, where + key, "must be a single value, not a list or mapping")
        return None
    return value.strip()


def _keys(block: YDict, allowed: Sequence[str], p: _Problems, where: str) -> None:
    for key in block:
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            p.add(block.lines[key], where + key, f"unknown key{f' (did you mean {hint[0]!r}?)' if hint else ''}")
    for line, key in block.duplicates:
        p.add(line, where + key, "given twice")


def _list(block: YDict, key: str, p: _Problems) -> YList | None:
    value = block.get(key)
    if value is None:
        return YList()
    if not isinstance(value, YList):
        p.add(block.lines[key], key, "must be a list")
        return None
    return value


def _items(items: YList, key: str, p: _Problems) -> Iterable[tuple[int, str, YDict]]:
    for i, (item, line) in enumerate(zip(items, items.lines, strict=True)):
        if isinstance(item, YDict):
            yield line, f"{key}[{i}].", item
        else:
            p.add(line, f"{key}[{i}]", "must be a mapping (key: value)")


def _member(item: YDict, where: str, p: _Problems) -> Member | None:
    _keys(item, MEMBER_KEYS, p, where)
    before = len(p.items)
    member_id = _text(item, "id", p, required=True, where=where)
    if member_id is not None and not ID_PATTERN.match(member_id):
        p.add(item.lines["id"], where + "id", f"{member_id!r}: use letters, digits, _ . - (up to 64)")
    name = _text(item, "name", p, required=True, where=where)
    phone = _text(item, "phone", p, where=where) or ""
    if phone:
        try:
            phone = normalise_phone(phone)
        except ValueError as exc:
            p.add(item.lines["phone"], where + "phone", str(exc))
    email = _text(item, "email", p, where=where) or ""
    if email and not _EMAIL.match(email):
        p.add(item.lines["email"], where + "email", f"{email!r} is not an e-mail address")
    if len(p.items) > before or member_id is None or name is None:
        return None
    return Member(member_id, name, phone, email)


def _config_value(value: Any) -> Any:
    """Text, a list of text or a mapping of text as stored; None if it is none of these."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, YList) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value]
    if isinstance(value, YDict) and all(isinstance(v, str) for v in value.values()):
        return {k: v.strip() for k, v in value.items()}
    return None


def _channel(
    item: YDict, where: str, members: Sequence[Member], channel_check: ChannelCheck | None, p: _Problems
) -> Channel | None:
    before = len(p.items)
    for line, key in item.duplicates:
        p.add(line, where + key, "given twice")
    kind = _text(item, "kind", p, required=True, where=where)
    if kind is not None and kind not in CHANNEL_KINDS:
        p.add(item.lines["kind"], where + "kind", _unknown(kind, CHANNEL_KINDS, "channel kind"))
        kind = None
    name = _text(item, "name", p, where=where) or kind or ""
    if name and not ID_PATTERN.match(name):
        p.add(item.lines.get("name", item.line), where + "name", f"{name!r}: use letters, digits, _ . - (up to 64)")
    config: dict[str, Any] = {}
    for key, value in item.items():
        if key in ("kind", "name") or value is None:
            continue
        stored = _config_value(value)
        if stored is None:
            p.add(item.lines[key], where + key, "must be text, a list of text or a mapping of text")
        else:
            config[key] = stored
    if kind is None or len(p.items) > before:
        return None
    for key in CHANNEL_KINDS[kind]:
        if not config.get(key):
            p.add(item.line, where + key, f"a {kind} channel needs {key}")
    url = config.get("url")
    if isinstance(url, str) and url and not re.match(r"^https?://[^/\s]+", url):
        p.add(item.lines["url"], where + "url", "must be an http:// or https:// URL")
    recipients_field = RECIPIENTS.get(kind)
    if recipients_field is not None:
        given = config.get(recipients_field)
        if isinstance(given, str):
            config[recipients_field] = given = [given]
        for address in given or ():
            try:
                if kind == "email" and not _EMAIL.match(address):
                    raise ValueError(f"{address!r} is not an e-mail address")
                if kind == "sms":
                    normalise_phone(address)
            except ValueError as exc:
                p.add(item.lines[recipients_field], where + recipients_field, str(exc))
    if len(p.items) > before:
        return None
    channel = Channel(name, kind, config)
    if recipients_field is not None and not channel.settings(members)[recipients_field]:
        what = "an e-mail address" if kind == "email" else "a phone"
        p.add(item.line, where + recipients_field, f"give {recipients_field}, or members with {what}")
        return None
    if channel_check is not None:
        try:
            channel_check(channel.settings(members))
        except ValueError as exc:
            p.add(item.line, where[:-1], str(exc))
            return None
    return channel


def _rotation(block: YDict, known: Sequence[str], p: _Problems) -> Rotation | None:
    where = "rotation."
    _keys(block, ROTATION_KEYS, p, where)
    before = len(p.items)
    ids = block.get("members")
    order: list[str] = []
    if not isinstance(ids, YList) or not ids:
        p.add(block.lines.get("members", block.line), where + "members", "a non-empty list of member ids")
    else:
        for member_id, line in zip(ids, ids.lines, strict=True):
            if not isinstance(member_id, str) or member_id not in known:
                p.add(line, where + "members", _unknown(str(member_id), known, "member"))
            elif member_id in order:
                p.add(line, where + "members", f"{member_id!r} is listed twice")
            else:
                order.append(member_id)
    parsed: dict[str, Any] = {}
    for key, parse, required in (
        ("shift", parse_shift, True),
        ("handoff", parse_hhmm, True),
        ("start", date.fromisoformat, True),
        ("time_zone", _zone, False),
    ):
        text = _text(block, key, p, required=required, where=where)
        if text is None:
            continue
        try:
            parsed[key] = parse(text)
        except ValueError as exc:
            reason = str(exc) if key != "start" else f"{text!r} is not a date (e.g. 2024-01-01)"
            p.add(block.lines[key], where + key, reason)
    if len(p.items) > before:
        return None
    zone = parsed.get("time_zone")
    return Rotation(
        tuple(order), parsed["shift"], parsed["handoff"], parsed["start"], zone.key if zone else DEFAULT_TIME_ZONE
    )


def _overrides(items: YList, known: Sequence[str], tz: ZoneInfo, p: _Problems) -> list[Override]:
    out: list[Override] = []
    for line, where, item in _items(items, "overrides", p):
        _keys(item, OVERRIDE_KEYS, p, where)
        before = len(p.items)
        member = _text(item, "member", p, required=True, where=where)
        if member is not None and member not in known:
            p.add(item.lines["member"], where + "member", _unknown(member, known, "member"))
        moments: dict[str, datetime] = {}
        for key in ("from", "until"):
            text = _text(item, key, p, required=True, where=where)
            if text is not None:
                try:
                    moments[key] = parse_moment(text, tz)
                except ValueError as exc:
                    p.add(item.lines[key], where + key, str(exc))
        if len(moments) == 2 and moments["until"] <= moments["from"]:
            p.add(item.lines["until"], where + "until", "must be after from")
        if len(p.items) == before and member is not None:
            o = Override(member, moments["from"], moments["until"])
            if any(x.member == o.member and x.start == o.start for x in out):
                p.add(line, where[:-1], f"{member} already has an override from {item['from']}")
            else:
                out.append(o)
    return sorted(out, key=lambda o: (o.start, o.member))


def _scope(block: YDict, kind: str | None, ref: Reference, p: _Problems) -> str:
    wanted = KINDS.get(kind or "")
    scope = ""
    for key in ("circle", "community", "district"):
        if key not in block:
            if key == wanted:
                p.add(block.line, key, f"a {kind} team needs {key}")
            continue
        if kind is not None and key != wanted:
            p.add(block.lines[key], key, f"a {kind} team has no {key}" + (f" (it has {wanted})" if wanted else ""))
            continue
        value = _text(block, key, p, required=True)
        if value is None:
            continue
        known = {"circle": ref.circles, "community": ref.communities, "district": ref.districts}[key]
        if value not in known:
            p.add(block.lines[key], key, _unknown(value, known, key))
        scope = value
    return scope


def check_team(
    block: YDict, stored: Team | None, ref: Reference, channel_check: ChannelCheck | None = None
) -> tuple[Team | None, list[tuple[int, str, str]]]:
    """One team block, merged with its stored version (absent keys keep it): the team, or None and the problems.

    Escalation targets are checked later, against every team (`check`).
    """
    p = _Problems()
    _keys(block, TEAM_KEYS, p, "")
    team_id = _text(block, "id", p, required=True)
    if team_id is not None and not ID_PATTERN.match(team_id):
        p.add(block.lines["id"], "id", f"{team_id!r}: use letters, digits, _ . - (up to 64)")
    name = _text(block, "name", p, required=True)
    kind = _text(block, "kind", p, required=True)
    if kind is not None and kind not in KINDS:
        p.add(block.lines["kind"], "kind", _unknown(kind, KINDS, "kind"))
        kind = None
    scope = _scope(block, kind, ref, p)

    escalates_to = stored.escalates_to if stored and "escalates_to" not in block else None
    if "escalates_to" in block:
        escalates_to = _text(block, "escalates_to", p)
        if escalates_to is not None and escalates_to == team_id:
            p.add(block.lines["escalates_to"], "escalates_to", "a team cannot escalate to itself")

    members = list(stored.members) if stored else []
    listed = [m.id for m in members]  # every member id the team will have, good or bad (no cascading problems)
    if "members" in block and (items := _list(block, "members", p)) is not None:
        members, listed = [], []
        for _, where, item in _items(items, "members", p):
            member = _member(item, where, p)
            raw_id = item.get("id")
            if isinstance(raw_id, str) and raw_id.strip() in listed:
                p.add(item.lines["id"], where + "id", f"{raw_id.strip()!r} is listed twice (ids are unique in a team)")
            elif member is not None:
                members.append(member)
            if isinstance(raw_id, str):
                listed.append(raw_id.strip())

    channels = list(stored.channels) if stored else []
    if "channels" in block and (items := _list(block, "channels", p)) is not None:
        channels = []
        for _, where, item in _items(items, "channels", p):
            channel = _channel(item, where, members, channel_check, p)
            if channel is None:
                continue
            if "name" not in item and any(c.name == channel.name for c in channels):
                channel = replace(channel, name=f"{channel.name}-{sum(c.kind == channel.kind for c in channels) + 1}")
            if any(c.name == channel.name for c in channels):
                p.add(item.line, where + "name", f"{channel.name!r} is used twice (channel names are unique in a team)")
            else:
                channels.append(channel)

    rotation = stored.rotation if stored else None
    rotation_line = block.lines.get("rotation", block.lines.get("members", block.line))
    if "rotation" in block:
        value = block["rotation"]
        if value is None:
            rotation = None
        elif isinstance(value, YDict):
            rotation = _rotation(value, listed, p)
        else:
            p.add(block.lines["rotation"], "rotation", "must be a mapping (members, shift, handoff, start, time_zone)")
    elif rotation is not None and (gone := [m for m in rotation.members if not any(x.id == m for x in members)]):
        p.add(rotation_line, "members", f"the stored rotation names {', '.join(gone)}; give the rotation too")

    tz = ZoneInfo(rotation.time_zone if rotation else DEFAULT_TIME_ZONE)
    overrides = list(stored.overrides) if stored else []
    if "overrides" in block and (items := _list(block, "overrides", p)) is not None:
        overrides = _overrides(items, listed, tz, p)
    elif gone_o := sorted({o.member for o in overrides if not any(x.id == o.member for x in members)}):
        p.add(rotation_line, "members", f"stored overrides name {', '.join(gone_o)}; give the overrides too")

    if p.items or team_id is None or name is None or kind is None:
        return None, sorted(p.items, key=lambda item: item[0])
    return (
        Team(team_id, name, kind, scope, tuple(members), tuple(channels), rotation, tuple(overrides), escalates_to),
        [],
    )


# ---------------------------------------------------------------- routes (pure)


def check_routes(doc: Any, line: int, team_ids: set[str]) -> tuple[RouteTree | None, list[tuple[int, str, str]]]:
    """The `routes` document: the tree, or None and every problem (the tree is all or nothing)."""
    p = _Problems()
    if not isinstance(doc, YDict):
        p.add(line, "routes", "must be a mapping (teams, fallback, routes)")
        return None, p.items

    def entries(block: YDict, key: str, where: str) -> tuple[str, ...] | None:
        value = block.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            value = YList([value])
            value.line, value.lines = block.lines[key], [block.lines[key]]
        if not isinstance(value, YList):
            p.add(block.lines[key], where + key, "must be a list of team ids or @kind references")
            return None
        out = []
        for entry, entry_line in zip(value, value.lines, strict=True):
            entry = str(entry or "").strip()
            if entry.startswith(REF_PREFIX):
                kind = entry[len(REF_PREFIX) :]
                if kind not in KINDS:
                    p.add(entry_line, where + key, f"{entry!r}: " + _unknown(kind, KINDS, "kind"))
            elif entry not in team_ids:
                p.add(entry_line, where + key, _unknown(entry, team_ids, "team"))
            out.append(entry)
        return tuple(out)

    def node(block: YDict, where: str, root: bool) -> Route:
        allowed = (*ROUTE_KEYS, "fallback") if root else ROUTE_KEYS
        _keys(block, allowed, p, where)
        matchers = []
        raw = block.get("matchers")
        if raw is not None:
            if isinstance(raw, str):
                raw = YList([raw])
                raw.line, raw.lines = block.lines["matchers"], [block.lines["matchers"]]
            if not isinstance(raw, YList):
                p.add(block.lines["matchers"], where + "matchers", "a list like ['severity=\"critical\"']")
            else:
                for text, text_line in zip(raw, raw.lines, strict=True):
                    try:
                        matchers.append(parse_matcher(str(text or "")))
                    except ValueError as exc:
                        p.add(text_line, where + "matchers", str(exc))
        if root and matchers:
            p.add(block.lines["matchers"], "matchers", "the root route takes every alert: it has no matchers")
        cont = False
        if "continue" in block:
            try:
                cont = parse_bool(str(block["continue"] or ""))
            except ValueError as exc:
                p.add(block.lines["continue"], where + "continue", str(exc))
            if root and cont:
                p.add(block.lines["continue"], "continue", "the root route has no siblings to continue to")
        children = []
        raw_children = block.get("routes")
        if raw_children is not None:
            if not isinstance(raw_children, YList):
                p.add(block.lines["routes"], where + "routes", "must be a list of routes")
            else:
                for i, (child, child_line) in enumerate(zip(raw_children, raw_children.lines, strict=True)):
                    if isinstance(child, YDict):
                        children.append(node(child, f"{where}routes[{i}].", False))
                    else:
                        p.add(
                            child_line, f"{where}routes[{i}]", "must be a mapping (matchers, teams, continue, routes)"
                        )
        return Route(tuple(matchers), entries(block, "teams", where), cont, tuple(children))

    root = node(doc, "", True)
    fallback = entries(doc, "fallback", "") or ()
    if p.items:
        return None, sorted(p.items, key=lambda item: item[0])
    return RouteTree(root, fallback), []


# ---------------------------------------------------------------- the whole file (pure)


def _escalation_problems(
    good: dict[str, Team], stored: Mapping[str, Team], rejected: Mapping[str, int]
) -> dict[str, str]:
    """Team id -> why its `escalates_to` is refused: unknown or rejected target, or a cycle through the merged teams."""
    merged = {**stored, **good}
    refused: dict[str, str] = {}
    for team_id, team in good.items():
        target = team.escalates_to
        if target is None:
            continue
        if target not in merged and target in rejected:
            refused[team_id] = f"team {target!r} is rejected (line {rejected[target]}) and not stored"
        elif target not in merged:
            refused[team_id] = _unknown(target, merged, "team")
            continue
        path = [team_id]
        current: str | None = target
        while current is not None and current in merged and current not in path:
            path.append(current)
            current = merged[current].escalates_to
        if current == team_id:
            refused[team_id] = "makes a cycle: " + " → ".join([*path, team_id])
    return refused


def check_yaml(
    doc: Any, stored: Mapping[str, Team], ref: Reference, channel_check: ChannelCheck | None = None
) -> Checked:
    """Check a parsed teams YAML against the stored teams and the registry (see the module docstring)."""
    if not isinstance(doc, YDict):
        raise TeamFileError("the file must be a mapping with `teams:` and/or `routes:`")
    extra = [k for k in doc if k not in ("teams", "routes")]
    if extra:
        raise TeamFileError(
            f"line {doc.lines[extra[0]]}: unknown key {extra[0]!r}; a teams file has `teams:` and/or `routes:`"
        )
    if "teams" not in doc and "routes" not in doc:
        raise TeamFileError("the file has neither `teams:` nor `routes:`")
    blocks = doc.get("teams") or YList()
    if not isinstance(blocks, YList):
        raise TeamFileError(f"line {doc.lines['teams']}: `teams:` must be a list of teams")
    result = Checked("yaml", rows_read=len(blocks))
    good: dict[str, Team] = {}
    lines: dict[str, int] = {}
    block_of: dict[str, YDict] = {}
    problems: dict[int, tuple[str, list[tuple[int, str, str]]]] = {}  # block line -> (subject, problems)
    for i, (block, line) in enumerate(zip(blocks, blocks.lines, strict=True)):
        if not isinstance(block, YDict):
            problems[line] = (f"teams[{i}]", [(line, f"teams[{i}]", "must be a mapping (id, name, kind…)")])
            continue
        raw_id = block.get("id")
        team_id = raw_id.strip() if isinstance(raw_id, str) else ""
        subject = team_id or f"teams[{i}]"
        if team_id in lines:
            problems[line] = (
                subject,
                [(block.lines["id"], "id", f"team {team_id!r} is already on line {lines[team_id]}")],
            )
            continue
        if team_id:
            lines[team_id], block_of[team_id] = line, block
        team, found = check_team(block, stored.get(team_id), ref, channel_check)
        if team is None:
            problems[line] = (subject, found)
        else:
            good[team.id] = team
    while refused := _escalation_problems(good, stored, {t: lines[t] for t in lines if t not in good}):
        for team_id, reason in refused.items():
            where = block_of[team_id].lines.get("escalates_to", lines[team_id])
            problems[lines[team_id]] = (team_id, [(where, "escalates_to", reason)])
            del good[team_id]
    for line in sorted(problems):
        subject, found = problems[line]
        result.rejected += [Rejection(ln, name, reason, subject) for ln, name, reason in found]
    result.teams = sorted(((lines[t.id], t) for t in good.values()), key=lambda pair: pair[0])
    if "routes" in doc:
        result.tree_line = doc.lines["routes"]
        tree, found = check_routes(doc["routes"], result.tree_line, set(stored) | set(good))
        result.tree = tree
        result.rejected += [Rejection(ln, name, reason, "routes") for ln, name, reason in found]
    return result


def read_csv_rows(text: str) -> tuple[tuple[str, ...], list[tuple[int, dict[str, str]]]]:
    """Columns (lower-case) and each non-blank row with the file line it starts on (header = line 1)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise TeamFileError("the file is empty; the first line must name the columns") from None
    columns = tuple(c.strip().lower() for c in header)
    rows: list[tuple[int, dict[str, str]]] = []
    start = reader.line_num + 1
    for values in reader:
        cells = {name: value.strip() for name, value in zip(columns, values, strict=False)}
        if any(cells.values()):
            rows.append((start, cells))
        start = reader.line_num + 1
    return columns, rows


def check_csv(
    columns: Sequence[str], rows: Sequence[tuple[int, Mapping[str, str]]], stored: Mapping[str, Team]
) -> Checked:
    """A members CSV: each row a member of a stored team; good rows add or update members, a bad row costs itself."""
    missing = [c for c in CSV_REQUIRED if c not in columns]
    if missing:
        raise TeamFileError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(c for c in columns if c) or '(none)'}. "
            f"A members CSV has {', '.join(CSV_REQUIRED)} (optional: {', '.join(CSV_OPTIONAL)})"
        )
    result = Checked("csv", rows_read=len(rows))
    members: dict[str, list[Member]] = {}
    first_line: dict[str, int] = {}
    seen: dict[tuple[str, str], int] = {}
    for line, cells in rows:
        problems: list[tuple[str, str]] = []
        team_id, member_id, name = cells.get("team", ""), cells.get("id", ""), cells.get("name", "")
        if not team_id:
            problems.append(("team", "empty"))
        elif team_id not in stored:
            problems.append(("team", _unknown(team_id, stored, "team") + " (import the teams YAML first)"))
        if not member_id:
            problems.append(("id", "empty"))
        elif not ID_PATTERN.match(member_id):
            problems.append(("id", f"{member_id!r}: use letters, digits, _ . - (up to 64)"))
        elif (team_id, member_id) in seen:
            problems.append(("id", f"{member_id!r} of {team_id} is already on line {seen[(team_id, member_id)]}"))
        if not name:
            problems.append(("name", "empty"))
        phone, email = cells.get("phone", ""), cells.get("email", "")
        if phone:
            try:
                phone = normalise_phone(phone)
            except ValueError as exc:
                problems.append(("phone", str(exc)))
        if email and not _EMAIL.match(email):
            problems.append(("email", f"{email!r} is not an e-mail address"))
        if problems:
            result.rejected += [Rejection(line, f, reason, team_id) for f, reason in problems]
            continue
        seen[(team_id, member_id)] = line
        first_line.setdefault(team_id, line)
        team_members = members.setdefault(team_id, list(stored[team_id].members))
        new = Member(member_id, name, phone, email)
        at = next((i for i, m in enumerate(team_members) if m.id == member_id), None)
        if at is None:
            team_members.append(new)
        else:
            team_members[at] = new
    result.teams = [(first_line[t], replace(stored[t], members=tuple(ms))) for t, ms in members.items()]
    return result


def read_teams_file(path: Path) -> tuple[str, Any]:
    """('yaml', parsed document) or ('csv', (columns, rows)); TeamFileError if it cannot be read."""
    path = Path(path)
    kind = path.suffix.lower()
    if kind not in (".yaml", ".yml", ".csv"):
        raise TeamFileError(f"{path}: unsupported file type {kind or '(none)'!r}; give a .yaml/.yml or a members .csv")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TeamFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise TeamFileError(f"{path}: cannot read: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        if kind != ".csv":
            raise TeamFileError(f"{path}: not UTF-8 text") from None
        try:
            text = raw.decode("gb18030")  # Excel's default CSV export in China
        except UnicodeDecodeError:
            raise TeamFileError(f"{path}: neither UTF-8 nor GB18030 text") from None
    if kind == ".csv":
        return "csv", read_csv_rows(text)
    return "yaml", parse_yaml(text, str(path))


def check(
    kind: str, parsed: Any, stored: Mapping[str, Team], ref: Reference, channel_check: ChannelCheck | None = None
) -> Checked:
    """Check what `read_teams_file` read; raises TeamFileError for a whole-file problem."""
    if kind == "csv":
        columns, rows = parsed
        return check_csv(columns, rows, stored)
    return check_yaml(parsed, stored, ref, channel_check)
