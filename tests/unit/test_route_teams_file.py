"""The teams file: YAML with lines, what a bad block costs, merging with stored teams, the demo set (pure)."""

from __future__ import annotations

import textwrap
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts.route import escalation_chain, on_call, route
from schema.demo_city import DISTRICT, build_demo_city
from schema.teams import Channel, Directory, Member, Rotation, Team
from schema.teams_file import (
    Checked,
    Reference,
    TeamFileError,
    check_csv,
    check_yaml,
    normalise_phone,
    parse_shift,
    parse_yaml,
    read_csv_rows,
    read_teams_file,
)

SH = ZoneInfo("Asia/Shanghai")
REF = Reference(frozenset({"C01", "C02"}), frozenset({"C01-1"}), frozenset({"北林区"}))
DEMO = Path(__file__).resolve().parents[2] / "schema" / "demo_teams.yaml"


def yaml_check(text: str, stored: dict[str, Team] | None = None) -> Checked:
    return check_yaml(parse_yaml(textwrap.dedent(text)), stored or {}, REF)


def problems(checked: Checked) -> list[str]:
    return [str(r) for r in checked.rejected]


GOOD = """\
teams:
  - id: C01-team
    name: 朝阳生活圈应急保供队
    kind: circle_team
    circle: C01
    escalates_to: C01-owner
    members:
      - {id: wang, name: 王, phone: 138-0000-0101, email: wang@example.invalid}
      - {id: li, name: 李, phone: "+86 138 0000 0102"}
      - {id: no, name: 赵}
    channels:
      - {kind: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET"}
      - {kind: sms, url: "https://sms.example.invalid/send?token=T", headers: {X-Key: K}}
    rotation: {members: [wang, li, no], shift: 24h, handoff: 08:00, start: 2024-01-01}
    overrides:
      - {member: li, from: 2026-11-25 22:00, until: 2026-11-26 06:00}
  - id: C01-owner
    name: 圈主
    kind: circle_owner
    circle: C01
    members: [{id: zhou, name: 周, phone: 0455-8880001}]
"""


def test_a_good_file_reads_every_scalar_as_text() -> None:
    checked = yaml_check(GOOD)
    assert problems(checked) == []
    assert [(line, t.id) for line, t in checked.teams] == [(2, "C01-team"), (17, "C01-owner")]
    team = checked.teams[0][1]
    assert [m.phone for m in team.members] == ["13800000101", "13800000102", ""]
    assert team.members[2].id == "no", "`no` is an id, not false"
    assert team.rotation == Rotation(("wang", "li", "no"), timedelta(days=1), time(8), date(2024, 1, 1))
    assert team.overrides[0].start == datetime(2026, 11, 25, 22, tzinfo=SH), "naive means the team's time zone"
    assert [c.name for c in team.channels] == ["wecom", "sms"]
    assert "SECRET" not in team.channels[0].label and "qyapi.weixin.qq.com" in team.channels[0].label
    assert team.channels[0].receiver("C01-team") == "team:C01-team/wecom"
    assert checked.teams[1][1].members[0].phone == "04558880001", "a leading zero survives"
    assert checked.tree is None, "no routes in the file"


def test_a_bad_block_costs_only_that_team_and_names_line_and_field() -> None:
    text = GOOD.replace("phone: 138-0000-0101", "phone: 138-0000-010").replace("kind: circle_owner", "kind: owner")
    checked = yaml_check(text)
    assert checked.teams == []
    assert problems(checked) == [
        "line 8: C01-team: members[0].phone: '138-0000-010': a mobile number has 11 digits",
        "line 19: C01-owner: kind: unknown kind 'owner'; known: circle_owner, circle_team, city_bureau, community, "
        "district_bureau, market_supervision, operators",
    ]
    owner_stored = {"C01-owner": Team("C01-owner", "圈主", "circle_owner", "C01")}
    one_bad = yaml_check(GOOD.replace("circle: C01\n    members: [{", "circle: C03\n    members: [{"), owner_stored)
    assert [t.id for _, t in one_bad.teams] == ["C01-team"], "it escalates to the stored C01-owner"
    assert problems(one_bad) == ["line 20: C01-owner: circle: unknown circle 'C03' (did you mean 'C02'?)"]
    assert one_bad.rejected_rows == 1
    cascade = yaml_check(GOOD.replace("circle: C01\n    members: [{", "circle: C03\n    members: [{"))
    assert cascade.teams == [] and problems(cascade)[0] == (
        "line 6: C01-team: escalates_to: team 'C01-owner' is rejected (line 17) and not stored"
    )


def test_every_problem_of_a_block_is_reported_at_once() -> None:
    checked = yaml_check(
        """\
        teams:
          - id: bad id
            kind: city_bureau
            circle: C01
            escalate_to: x
            members:
              - {id: a, name: A, email: nope}
              - {id: a, name: A2}
            channels:
              - {kind: dingtalk}
              - {kind: telegram, url: "ftp://x"}
            rotation: {members: [a, b], shift: 25, handoff: "24:00", start: 2024-13-01, time_zone: Mars/Base}
            overrides:
              - {member: a, from: 2026-11-25 22:00, until: 2026-11-25 21:00}
        """
    )
    assert [(r.line, r.field) for r in checked.rejected] == [
        (2, "id"),
        (2, "name"),
        (4, "circle"),
        (5, "escalate_to"),
        (7, "members[0].email"),
        (8, "members[1].id"),
        (10, "channels[0].url"),
        (11, "channels[1].kind"),
        (12, "rotation.members"),
        (12, "rotation.shift"),
        (12, "rotation.handoff"),
        (12, "rotation.start"),
        (12, "rotation.time_zone"),
        (14, "overrides[0].until"),
    ]
    reasons = problems(checked)
    assert "line 5: bad id: escalate_to: unknown key (did you mean 'escalates_to'?)" in reasons
    assert "line 4: bad id: circle: a city_bureau team has no circle" in reasons


def test_absent_keys_keep_the_stored_team_present_empty_keys_clear_it() -> None:
    stored = {t.id: t for _, t in yaml_check(GOOD).teams}
    renamed = yaml_check(
        """\
        teams:
          - {id: C01-team, name: 新名字, kind: circle_team, circle: C01}
          - {id: C01-owner, name: 圈主, kind: circle_owner, circle: C01, members: [], escalates_to: ""}
        """,
        stored,
    )
    assert problems(renamed) == []
    team, owner = (t for _, t in renamed.teams)
    assert team == Team(**{**{f: getattr(stored["C01-team"], f) for f in Team.__slots__}, "name": "新名字"})
    assert owner.members == () and owner.escalates_to is None

    dropped = yaml_check(
        "teams:\n  - {id: C01-team, name: x, kind: circle_team, circle: C01, members: [{id: wang, name: 王}]}\n",
        stored,
    )
    assert problems(dropped) == [
        "line 2: C01-team: members: the stored rotation names li, no; give the rotation too",
        "line 2: C01-team: members: stored overrides name li; give the overrides too",
    ]


def test_escalation_targets_must_exist_and_never_loop() -> None:
    checked = yaml_check(
        """\
        teams:
          - {id: a, name: A, kind: city_bureau, escalates_to: b}
          - {id: b, name: B, kind: operators, escalates_to: a}
          - {id: c, name: C, kind: market_supervision, escalates_to: ghost}
          - {id: d, name: D, kind: market_supervision, escalates_to: e}
          - {id: e, name: E, kind: nonsense}
          - {id: f, name: F, kind: city_bureau, escalates_to: stored}
        """,
        {"stored": Team("stored", "S", "city_bureau")},
    )
    assert [t.id for _, t in checked.teams] == ["f"]
    assert problems(checked) == [
        "line 2: a: escalates_to: makes a cycle: a → b → a",
        "line 3: b: escalates_to: makes a cycle: b → a → b",
        "line 4: c: escalates_to: unknown team 'ghost'; known: a, b, c, d, f, stored",
        "line 5: d: escalates_to: team 'e' is rejected (line 6) and not stored",
        "line 6: e: kind: unknown kind 'nonsense'; known: circle_owner, circle_team, city_bureau, community, "
        "district_bureau, market_supervision, operators",
    ]
    through_stored = yaml_check(
        "teams:\n  - {id: y, name: Y, kind: operators, escalates_to: x}\n",
        {"x": Team("x", "X", "city_bureau", escalates_to="y"), "y": Team("y", "Y", "operators")},
    )
    assert problems(through_stored) == ["line 2: y: escalates_to: makes a cycle: y → x → y"]


def test_a_team_id_twice_rejects_the_second() -> None:
    checked = yaml_check("teams:\n  - {id: a, name: A, kind: operators}\n  - {id: a, name: B, kind: operators}\n")
    assert [t.name for _, t in checked.teams] == ["A"]
    assert problems(checked) == ["line 3: a: id: team 'a' is already on line 2"]


def test_routes_are_checked_whole_with_lines() -> None:
    good = yaml_check(
        GOOD
        + """\
routes:
  teams: ["@circle_team"]
  fallback: C01-owner
  routes:
    - matchers: ['severity="critical"', "necessity=~rice|flour"]
      teams: ["@circle_team", "@circle_owner"]
      continue: yes
"""
    )
    assert good.tree is not None and good.tree.fallback == ("C01-owner",)
    assert good.tree.root.routes[0].continue_ is True
    bad = yaml_check(
        GOOD
        + """\
routes:
  matchers: [a=b]
  teams: ["@circle"]
  routes:
    - matchers: ["severity=~(critical"]
      teams: [nobody]
      continue: maybe
    - oops
"""
    )
    assert bad.tree is None and [t.id for _, t in bad.teams] == ["C01-team", "C01-owner"], "teams are still good"
    assert problems(bad) == [
        "line 23: routes: matchers: the root route takes every alert: it has no matchers",
        "line 24: routes: teams: '@circle': unknown kind 'circle' (did you mean 'circle_team'?)",
        "line 26: routes: routes[0].matchers: 'severity=~(critical': bad regex: missing ), unterminated subpattern"
        " at position 0",
        "line 27: routes: routes[0].teams: unknown team 'nobody'; known: C01-owner, C01-team",
        "line 28: routes: routes[0].continue: 'maybe' is not true or false",
        "line 29: routes: routes[1]: must be a mapping (matchers, teams, continue, routes)",
    ]
    assert bad.rejected_rows == 1


def test_whole_file_problems_raise() -> None:
    with pytest.raises(TeamFileError, match="line 3: not valid YAML"):
        parse_yaml("teams:\n  - id: a\n  name: [\n")
    for text, message in (
        ("- a\n- b\n", "must be a mapping"),
        ("team: []\n", "unknown key 'team'"),
        ("teams: {a: 1}\n", "`teams:` must be a list"),
    ):
        with pytest.raises(TeamFileError, match=message):
            check_yaml(parse_yaml(text), {}, REF)


def test_members_csv_rows_cost_only_themselves() -> None:
    stored = {t.id: t for _, t in yaml_check(GOOD).teams}
    columns, rows = read_csv_rows(
        "Team,ID,Name,Phone,Email\n"
        "C01-team,wang,王二,138 0000 0199,wang2@example.invalid\n"
        "C01-team,sun,孙,13800000105,\n"
        "ghost,x,X,,\n"
        '"C01-team",li,"李\n(两行)",12,\n'
        "\n"
        "C01-team,sun,孙又,,\n"
    )
    checked = check_csv(columns, rows, stored)
    assert problems(checked) == [
        "line 4: ghost: team: unknown team 'ghost'; known: C01-owner, C01-team (import the teams YAML first)",
        "line 5: C01-team: phone: '12' is not a phone number (digits, spaces and dashes, e.g. 138-0000-0301)",
        "line 8: C01-team: id: 'sun' of C01-team is already on line 3",
    ]
    ((line, team),) = checked.teams
    assert line == 2
    assert [(m.id, m.name, m.phone) for m in team.members] == [
        ("wang", "王二", "13800000199"),
        ("li", "李", "13800000102"),
        ("no", "赵", ""),
        ("sun", "孙", "13800000105"),
    ]
    assert team.rotation == stored["C01-team"].rotation
    with pytest.raises(TeamFileError, match="missing column"):
        check_csv(("team", "name"), [], stored)


def test_channels_map_onto_the_notifiers_channel_specs() -> None:
    from alerts.notify import ChannelError, parse_channel

    text = """\
        teams:
          - id: t
            name: T
            kind: operators
            members: [{id: a, name: A, phone: 13800000001, email: a@example.invalid}, {id: b, name: B}]
            channels:
              - {kind: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=X", secret: S, at_all: "true"}
              - {kind: email, host: smtp.example.invalid, port: "587", sender: bg@example.invalid}
              - {kind: sms, url: "https://sms.example.invalid/send", phones: [13800000009], max_chars: "5"}
              - {kind: webhook, url: "https://hooks.example.invalid/x"}
              - {kind: webhook, url: "https://hooks.example.invalid/y"}
        """
    checked = check_yaml(parse_yaml(textwrap.dedent(text)), {}, REF, parse_channel)
    assert problems(checked) == [
        "line 9: t: channels[2]: sms channel: max_chars: Input should be greater than or equal to 20"
    ], "the notifier's own checks, by line, never quoting a value"
    good = check_yaml(parse_yaml(textwrap.dedent(text).replace('"5"', '"70"')), {}, REF, parse_channel)
    ((_, team),) = good.teams
    assert [c.name for c in team.channels] == ["dingtalk", "email", "sms", "webhook", "webhook-2"]
    specs = [parse_channel(c.settings(team.members)) for c in team.channels]
    assert specs[0].at_all is True and specs[1].port == 587
    assert specs[1].to == ("a@example.invalid",), "no fixed recipients: whoever is on call"
    assert specs[2].phones == ("13800000009",)
    assert "X" not in team.channels[0].label and "oapi.dingtalk.com" in team.channels[0].label
    with pytest.raises(ChannelError):
        parse_channel(Channel("e", "email", {"host": "h", "sender": "s@example.invalid"}).settings([]))
    nobody = check_yaml(
        parse_yaml(
            "teams:\n  - {id: t, name: T, kind: operators, channels: [{kind: sms, url: 'https://s.invalid'}]}\n"
        ),
        {},
        REF,
    )
    assert problems(nobody) == ["line 2: t: channels[0].phones: give phones, or members with a phone"]


def test_small_parsers() -> None:
    assert parse_shift("24h") == parse_shift("1d") == timedelta(days=1)
    assert parse_shift("1h30m") == timedelta(minutes=90)
    for bad in ("", "0h", "1w", "24"):
        with pytest.raises(ValueError):
            parse_shift(bad)
    assert normalise_phone("+86 138-0000-0301") == "13800000301"
    with pytest.raises(ValueError):
        normalise_phone("call me")


# ---------------------------------------------------------------- the demo set


def test_the_demo_teams_file_fits_the_demo_city() -> None:
    city = build_demo_city()
    ref = Reference(
        frozenset(c.id for c in city.circles), frozenset(c.id for c in city.communities), frozenset({DISTRICT})
    )
    kind, parsed = read_teams_file(DEMO)
    checked = check_yaml(parsed, {}, ref)
    assert kind == "yaml" and problems(checked) == [] and checked.tree is not None
    d = Directory({t.id: t for _, t in checked.teams}, checked.tree, {c.id: DISTRICT for c in city.circles})
    now = datetime(2026, 11, 25, 12, tzinfo=SH)
    for c in city.circles:
        labels = {"alertname": "SupplyShortage", "circle": c.id, "necessity": "rice", "severity": "high"}
        assert route(d, labels) == [f"{c.id}-team"]
        assert route(d, labels | {"severity": "critical"}) == [f"{c.id}-team", f"{c.id}-owner"]
        team = d.teams[f"{c.id}-team"]
        assert 3 <= len(team.members) <= 4 and team.rotation is not None
        assert team.rotation.shift == timedelta(days=1) and len(on_call(team, now)) == 1
        assert escalation_chain(d, team.id) == [team.id, f"{c.id}-owner", "beilin-commerce", "city-commerce"]
    assert route(d, {"alertname": "PipelineStalled", "severity": "critical"}) == ["operators"]
    assert route(d, {"alertname": "PriceSpike", "circle": "C03"}) == ["market-supervision"]
    assert route(d, {"alertname": "SupplyShortage", "circle": "C99"}) == ["city-commerce"]
    people: list[Member] = [m for t in d.teams.values() for m in t.members]
    assert all(m.name.endswith("（示例）") and m.phone.startswith("1380000") for m in people), "clearly synthetic"
    assert all(m.email.endswith("@example.invalid") for m in people)
    assert all(
        c.kind == "webhook" and str(c.config["url"]).startswith("http://127.0.0.1:8099/demo/")
        for t in d.teams.values()
        for c in t.channels
    )


def test_the_kinds_agree_with_the_migration_and_the_notifiers() -> None:
    import re

    from alerts.notify import KINDS as NOTIFIER_KINDS
    from schema.teams import CHANNEL_KINDS, KINDS

    sql = (DEMO.parent / "migrations" / "0011_teams.sql").read_text(encoding="utf-8")
    team_kinds = re.search(r"kind\s+text NOT NULL CHECK \(kind IN \(([^)]*)\)\)", sql)
    channel_kinds = re.search(r"kind\s+text NOT NULL CHECK \(kind IN \(([^)]*)\)\),\n\s+config", sql)
    assert team_kinds and channel_kinds
    assert set(re.findall(r"'(\w+)'", team_kinds[1])) == set(KINDS)
    assert set(re.findall(r"'(\w+)'", channel_kinds[1])) == set(CHANNEL_KINDS) == set(NOTIFIER_KINDS)
