"""Routing, on-call rotations with overrides, and escalation chains (pure, explicit times)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.route import duty, escalation_chain, explain, on_call, route, shift_at
from schema.teams import (
    DEFAULT_TREE,
    Directory,
    Member,
    Override,
    Rotation,
    Route,
    RouteTree,
    Team,
    parse_matcher,
    tree_from_doc,
    tree_to_doc,
)

SH = ZoneInfo("Asia/Shanghai")
A, B, C, D = (Member(x, x.upper()) for x in "abcd")


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A moment in November 2026, Asia/Shanghai."""
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


def team(id: str, kind: str, scope: str = "", escalates_to: str | None = None, **kw: object) -> Team:
    return Team(id, id, kind, scope, escalates_to=escalates_to, **kw)  # type: ignore[arg-type]


TEAMS = [
    team("C01-team", "circle_team", "C01", "C01-owner"),
    team("C01-owner", "circle_owner", "C01", "district"),
    team("C02-team", "circle_team", "C02", "C02-owner"),
    team("C02-owner", "circle_owner", "C02", "district"),
    team("district", "district_bureau", "北林区", "city"),
    team("city", "city_bureau"),
    team("market", "market_supervision"),
    team("ops", "operators"),
]


def directory(tree: RouteTree = DEFAULT_TREE, teams: list[Team] = TEAMS) -> Directory:
    return Directory({t.id: t for t in teams}, tree, {"C01": "北林区", "C02": "北林区", "C09": "安达市"})


def tree(*routes: Route, root: tuple[str, ...] | None = ("@circle_team",), fallback: tuple[str, ...] = ()) -> RouteTree:
    return RouteTree(Route(teams=root, routes=routes), fallback)


def m(*texts: str) -> tuple:  # type: ignore[type-arg]
    return tuple(parse_matcher(t) for t in texts)


SHORTAGE = {"alertname": "SupplyShortage", "circle": "C01", "necessity": "rice", "severity": "high"}

# ---------------------------------------------------------------- routing


def test_the_default_tree_sends_a_page_to_its_circles_team_without_a_route_per_circle() -> None:
    d = directory()
    assert route(d, SHORTAGE) == ["C01-team"]
    assert route(d, SHORTAGE | {"circle": "C02"}) == ["C02-team"]
    assert route(d, SHORTAGE | {"circle": "C07"}) == [], "a circle without a team: no team (caller's last resort)"
    assert route(d, {"alertname": "PipelineStalled"}) == []


def test_first_matching_child_wins_and_children_inherit_teams() -> None:
    t = tree(
        Route(m('alertname=~"SupplierFeedQuality|PipelineStalled"'), ("ops",)),
        Route(m('severity="critical"'), ("@circle_team", "@circle_owner")),
        Route(m("necessity=rice")),  # no teams: inherits the root's
        Route(m('severity="critical"'), ("city",)),  # shadowed by the critical route above
    )
    d = directory(t)
    assert route(d, SHORTAGE | {"severity": "critical"}) == ["C01-team", "C01-owner"]
    assert explain(d, SHORTAGE)[0].route == "root.routes[2]"
    assert route(d, SHORTAGE | {"necessity": "salt"}) == ["C01-team"]
    assert [(h.team, h.route, h.via) for h in explain(d, {"alertname": "PipelineStalled"})] == [
        ("ops", "root.routes[0]", "ops")
    ]


def test_continue_lands_on_several_routes_and_each_team_is_listed_once() -> None:
    t = tree(
        Route(m('alertname="PriceSpike"'), ("market",), continue_=True),
        Route(m("circle=~C0[12]"), ("@circle_team",), continue_=True),
        Route(m("necessity!=salt"), ("@circle_owner", "@circle_team")),
        Route(m("necessity=~.*"), ("city",)),  # after a match without continue: never tried
    )
    d = directory(t)
    spike = {"alertname": "PriceSpike", "circle": "C02", "necessity": "pork", "severity": "warning"}
    assert route(d, spike) == ["market", "C02-team", "C02-owner"]
    assert [h.route for h in explain(d, spike)] == ["root.routes[0]", "root.routes[1]", "root.routes[2]"]


def test_nested_routes_and_regex_matchers_match_the_whole_value() -> None:
    t = tree(
        Route(
            m("district=北林区"),
            ("district",),
            routes=(Route(m('severity="critical"'), ("district", "city")),),
        ),
    )
    d = directory(t)
    assert route(d, SHORTAGE) == ["district"], "district comes from the circle"
    assert route(d, SHORTAGE | {"severity": "critical"}) == ["district", "city"]
    assert route(d, SHORTAGE | {"circle": "C09"}) == [], "C09 is in 安达市: the root's @circle_team finds none"
    assert not parse_matcher("circle=~C0").matches({"circle": "C01"}), "anchored like Alertmanager"
    assert parse_matcher('community=""').matches(SHORTAGE), "an absent label is the empty string"
    assert parse_matcher("community!~.+").matches(SHORTAGE)


def test_fallback_only_when_nothing_else_reaches_a_team() -> None:
    t = tree(Route(m('alertname="PipelineStalled"'), ("ops",)), fallback=("city",))
    d = directory(t)
    assert route(d, SHORTAGE) == ["C01-team"]
    assert route(d, SHORTAGE | {"circle": "C07"}) == ["city"]
    assert explain(d, {"alertname": "Unknown"})[0].route == "fallback"
    assert route(d, {"alertname": "PipelineStalled"}) == ["ops"]


def test_references_resolve_by_kind_and_scope() -> None:
    d = directory(
        tree(root=("@district_bureau", "@city_bureau", "@community", "@circle_team", "@no_such_kind", "gone"))
    )
    assert route(d, SHORTAGE) == ["district", "city", "C01-team"], "no community label, unknown kind, unknown id"
    assert route(d, SHORTAGE | {"district": "安达市"}) == ["city", "C01-team"], "a given district is not overwritten"


def test_the_tree_round_trips_through_its_stored_document() -> None:
    t = tree(
        Route(m('alertname=~"A|B"', "severity!=info"), ("ops",), continue_=True, routes=(Route(m("x=y")),)),
        fallback=("city",),
    )
    doc = tree_to_doc(t)
    assert doc["routes"][0]["matchers"] == ['alertname=~"A|B"', 'severity!="info"']
    assert tree_from_doc(doc) == t


# ---------------------------------------------------------------- rotations and overrides


def daily(*members: str, handoff: time = time(8), start: date = date(2026, 11, 1), days: int = 1) -> Rotation:
    return Rotation(tuple(members), timedelta(days=days), handoff, start)


def test_daily_rotation_hands_off_at_the_local_handoff_time() -> None:
    rot = daily("a", "b", "c")  # a from Nov 1 08:00, b from Nov 2 08:00, c from Nov 3, a again Nov 4
    assert shift_at(rot, at(1, 8)).member == "a"
    assert shift_at(rot, at(2, 7, 59)).member == "a", "one minute before the handoff"
    assert shift_at(rot, at(2, 8)).member == "b", "the handoff itself belongs to the next shift"
    assert shift_at(rot, at(3, 23, 59)).member == "c"
    assert shift_at(rot, at(4, 8)).member == "a"
    s = shift_at(rot, at(25, 3))  # Nov 25 03:00 is still the shift of Nov 24 08:00: 23 days in, 23 % 3 = 2
    assert (s.member, s.start, s.end, s.index) == ("c", at(24, 8), at(25, 8), 23)
    assert shift_at(rot, at(25, 3).astimezone(UTC)) == s, "the same moment in UTC is the same shift"


def test_before_the_first_handoff_the_cycle_runs_backwards() -> None:
    rot = daily("a", "b", "c")
    assert shift_at(rot, at(1, 7)).member == "c"
    assert shift_at(rot, at(31, 12, month=10)).member == "c"
    assert shift_at(rot, at(30, 12, month=10)).member == "b"


def test_weekly_and_twelve_hour_shifts() -> None:
    weekly = daily("a", "b", handoff=time(9), start=date(2026, 11, 2), days=7)  # a Monday
    assert shift_at(weekly, at(9, 8, 59)).member == "a"
    assert shift_at(weekly, at(9, 9)).member == "b"
    assert shift_at(weekly, at(16, 9)).member == "a"
    twelve = Rotation(("day", "night"), timedelta(hours=12), time(8), date(2026, 11, 1))
    assert shift_at(twelve, at(25, 8)).member == "day"
    assert shift_at(twelve, at(25, 19, 59)).member == "day"
    s = shift_at(twelve, at(26, 2))
    assert (s.member, s.start, s.end) == ("night", at(25, 20), at(26, 8)), "a night shift across midnight"


def test_asia_shanghai_has_no_dst_so_a_daily_shift_is_always_24_hours() -> None:
    rot = daily("a", "b")
    for month, day in ((3, 8), (3, 29), (10, 25), (11, 1)):  # when other zones switch
        s = shift_at(rot, datetime(2026, month, day, 12, tzinfo=SH))
        assert s.end - s.start == timedelta(hours=24)
        assert s.start.utcoffset() == timedelta(hours=8)


def test_a_daily_handoff_keeps_its_local_time_across_a_dst_change_elsewhere() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    rot = Rotation(("a", "b"), timedelta(days=1), time(8), date(2026, 3, 1), "Europe/Berlin")
    s = shift_at(rot, datetime(2026, 3, 29, 12, tzinfo=berlin))  # the spring-forward day
    assert (s.start.hour, s.end.hour) == (8, 8)
    assert s.end.astimezone(UTC) - s.start.astimezone(UTC) == timedelta(hours=24)
    s = shift_at(rot, datetime(2026, 3, 28, 12, tzinfo=berlin))
    assert (s.start.hour, s.end.hour) == (8, 8)
    assert s.end.astimezone(UTC) - s.start.astimezone(UTC) == timedelta(hours=23), "the shift over the change"


def test_override_across_midnight_replaces_the_rotation_only_while_it_lasts() -> None:
    t = Team(
        "t",
        "t",
        "circle_team",
        "C01",
        (A, B, C, D),
        rotation=daily("a", "b", "c"),
        overrides=(Override("d", at(25, 22), at(26, 6)),),
    )
    assert on_call(t, at(25, 21, 59)) == [A]  # the shift of Nov 25 08:00 is the 24th: 24 % 3 = 0, a
    assert on_call(t, at(25, 22)) == [D], "from is inclusive"
    assert on_call(t, at(26, 0, 30)) == [D], "after midnight"
    assert on_call(t, at(26, 5, 59)) == [D]
    assert on_call(t, at(26, 6)) == [A], "until is exclusive; back to the rotation (a until 08:00)"
    assert on_call(t, at(26, 8)) == [B]
    before = duty(t, at(25, 12))
    assert (before.source, before.since, before.until) == ("rotation", at(25, 8), at(25, 22)), "until the override"
    during = duty(t, at(26, 1))
    assert (during.source, during.since, during.until) == ("override", at(25, 22), at(26, 6))
    after = duty(t, at(26, 7))
    assert (after.source, after.since, after.until) == ("rotation", at(26, 6), at(26, 8))


def test_overlapping_overrides_put_both_on_call_in_order_of_start() -> None:
    t = Team(
        "t",
        "t",
        "circle_team",
        "C01",
        (A, B, C, D),
        rotation=daily("a"),
        overrides=(Override("c", at(25, 10), at(25, 14)), Override("b", at(25, 12), at(25, 18))),
    )
    assert on_call(t, at(25, 11)) == [C]
    assert on_call(t, at(25, 13)) == [C, B]
    assert duty(t, at(25, 13)).until == at(25, 14)
    assert on_call(t, at(25, 15)) == [B]
    assert on_call(t, at(25, 18)) == [A]


def test_without_a_rotation_everyone_is_on_call_unless_overridden() -> None:
    t = Team("o", "o", "circle_owner", "C01", (A, B), overrides=(Override("b", at(25, 0), at(26, 0)),))
    assert on_call(t, at(24, 12)) == [A, B]
    assert duty(t, at(24, 12)).until == at(25, 0)
    assert on_call(t, at(25, 12)) == [B]
    assert duty(t, at(26, 12)) == duty(t, at(27, 12)) and duty(t, at(27, 12)).until is None


def test_naive_times_are_refused() -> None:
    t = Team("o", "o", "circle_owner", "C01", (A,))
    with pytest.raises(ValueError, match="aware"):
        on_call(t, datetime(2026, 11, 25, 12))


# ---------------------------------------------------------------- escalation


def test_escalation_chain_follows_each_next_team_once() -> None:
    d = directory()
    assert escalation_chain(d, "C01-team") == ["C01-team", "C01-owner", "district", "city"]
    assert escalation_chain(d, "district") == ["district", "city"]
    assert escalation_chain(d, "city") == ["city"]
    assert escalation_chain(d, "nobody") == []
    looped = directory(teams=[team("x", "city_bureau", escalates_to="y"), team("y", "operators", escalates_to="x")])
    assert escalation_chain(looped, "x") == ["x", "y"], "a cycle (refused on import) still ends"
    dangling = directory(teams=[team("x", "city_bureau", escalates_to="gone")])
    assert escalation_chain(dangling, "x") == ["x"]
