"""Escalation timers, routing to teams and grouping per circle and team (pure; explicit clock)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts import escalate
from alerts.group import Notice, Routing, messages
from alerts.model import Alert, Event
from alerts.notify import templates
from baogong.settings import Settings
from schema.teams import Channel, Directory, Route, RouteTree, Team

T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
TIMERS = escalate.Timers({"critical": 10, "high": 30}, {"critical": 2, "high": 6})


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def hook(team: str) -> tuple[Channel, ...]:
    return (Channel("hook", "webhook", {"url": f"http://127.0.0.1:9/{team}"}),)


DIRECTORY = Directory(
    teams={
        "C1-team": Team(
            "C1-team", "一号圈保供队", "circle_team", "C1", channels=hook("C1-team"), escalates_to="C1-owner"
        ),
        "C2-team": Team(
            "C2-team", "二号圈保供队", "circle_team", "C2", channels=hook("C2-team"), escalates_to="C2-owner"
        ),
        "C1-owner": Team(
            "C1-owner", "一号圈圈主", "circle_owner", "C1", channels=hook("C1-owner"), escalates_to="bureau"
        ),
        "C2-owner": Team("C2-owner", "二号圈圈主", "circle_owner", "C2", escalates_to="bureau"),  # no channel
        "bureau": Team("bureau", "区商务局", "district_bureau", "北林区", channels=hook("bureau"), escalates_to="city"),
        "city": Team("city", "市商务局", "city_bureau", channels=hook("city")),
    },
    tree=RouteTree(Route(teams=("@circle_team",))),
)
ROUTING = Routing(DIRECTORY, {"responders": ("webhook-default",), "operators": ("webhook-ops",)})


IDS = {("C1", "rice"): 1, ("C1", "oil"): 2, ("C2", "rice"): 3}


def alert(necessity: str = "rice", circle: str = "C1", severity: str = "critical", **kw: object) -> Alert:
    labels = {"alertname": "SupplyShortage", "circle": circle, "necessity": necessity, "severity": severity}
    base = Alert(f"fp-{circle}-{necessity}", "shortage", severity, "firing", labels, {"summary": necessity}, T0)
    base = replace(base, starts_at=T0, circle_id=circle, necessity=necessity, id=IDS[(circle, necessity)])
    return replace(base, **kw)  # type: ignore[arg-type]


def test_timers_per_severity_and_team_kind_scaled_in_one_place() -> None:
    t = escalate.Timers({"critical": 10, "high": 30}, {"critical": 2}, {"district_bureau": {"critical": 20}})
    assert t.escalate_after("critical", "circle_team") == timedelta(minutes=10)
    assert t.escalate_after("critical", "district_bureau") == timedelta(minutes=20)
    assert t.escalate_after("warning", "circle_team") is None  # not listed: never escalates
    assert t.renotify_after("high", None) is None
    emergency = t.scaled(0.5)
    assert emergency.escalate_after("high", None) == timedelta(minutes=15)
    assert emergency.renotify_after("critical", None) == timedelta(hours=1)
    settings = Settings.from_env({"BAOGONG_ESCALATE_AFTER_MIN": '{"critical": 5}', "BAOGONG_ALERT_TIMER_FACTOR": "2"})
    assert escalate.Timers.from_settings(settings).escalate_after("critical", None) == timedelta(minutes=10)


def test_an_unacknowledged_alert_climbs_the_chain_to_the_city_bureau() -> None:
    a = alert(teams=("C1-team",))
    seen = []
    for m in range(0, 60):
        told = ROUTING.next_teams(a.teams)
        due = escalate.due(a, told, ROUTING.kind(a.teams[-1]), TIMERS, minutes(m))
        if due is not None:
            seen.append((m, due.kind, due.teams))
            a = escalate.apply(a, due, minutes(m))
    assert seen[:3] == [(10, "escalated", ("C1-owner",)), (20, "escalated", ("bureau",)), (30, "escalated", ("city",))]
    assert a.escalation_level == 3 and a.teams == ("C1-team", "C1-owner", "bureau", "city")
    assert len(seen) == 3  # nobody left: re-notified only after renotify_after (2 h for critical)
    due = escalate.due(a, ROUTING.next_teams(a.teams), "city_bureau", TIMERS, minutes(30 + 120))
    assert due is not None and due.kind == "renotified" and due.teams == a.teams


def test_acknowledged_stops_escalation_and_renotifies_after_hours() -> None:
    a = alert(severity="high", teams=("C1-team",), state="acknowledged", acknowledged_at=minutes(5))
    nxt = ROUTING.next_teams(a.teams)
    assert escalate.due(a, nxt, "circle_team", TIMERS, minutes(300)) is None
    due = escalate.due(a, nxt, "circle_team", TIMERS, minutes(5 + 360))
    assert due is not None and due.kind == "renotified" and due.teams == ("C1-team",)
    a = escalate.apply(a, due, minutes(365))
    assert escalate.due(a, nxt, "circle_team", TIMERS, minutes(365 + 359)) is None
    assert escalate.due(a, nxt, "circle_team", TIMERS, minutes(365 + 360)) is not None


def test_a_reopened_alert_counts_from_its_reopening() -> None:
    a = alert(teams=("C1-team",), reopened_at=minutes(100), reopen_count=1)
    assert escalate.due(a, ("C1-owner",), "circle_team", TIMERS, minutes(109)) is None
    assert escalate.due(a, ("C1-owner",), "circle_team", TIMERS, minutes(110)) is not None


def test_routing_to_the_circles_team_else_the_default_receivers() -> None:
    assert ROUTING.teams_for({"circle": "C1", "severity": "high"}, "shortage", "responders") == ("C1-team",)
    assert ROUTING.teams_for({"circle": "C9"}, "shortage", "responders") == ("default:responders",)
    assert Routing(None, {}).teams_for({"circle": "C1"}, "shortage", "operators") == ("default:operators",)
    assert ROUTING.receivers("C1-team", "responders") == ("team:C1-team/hook",)
    assert ROUTING.receivers("C2-owner", "responders") == ("webhook-default",)  # no channel: never dropped
    assert ROUTING.receivers("default:operators", "responders") == ("webhook-ops",)
    assert ROUTING.next_teams(("C1-team", "C1-owner")) == ("bureau",)


def test_one_message_per_circle_and_team_listing_every_necessity() -> None:
    rice, oil, c2 = alert("rice"), alert("oil", severity="high"), alert("rice", circle="C2")
    notices = [
        Notice(rice, Event.FIRED, "fired", ("C1-team",), link="https://b.example/a/1"),
        Notice(oil, Event.FIRED, "fired", ("C1-team",)),
        Notice(c2, Event.FIRED, "fired", ("C2-team",)),
        Notice(oil, Event.FIRED, "escalated", ("C1-owner",), note="升级：已告警 10 分钟"),
    ]
    out = {(m.receiver, m.group_key): m for m in messages(notices, ROUTING, "https://b.example")}
    assert len(out) == 3
    c1 = out[("team:C1-team/hook", '{}/{team="C1-team"}:{circle="C1"}')]
    assert [a["labels"]["necessity"] for a in c1.payload["alerts"]] == ["oil", "rice"]
    assert c1.payload["status"] == "firing" and c1.payload["commonLabels"]["circle"] == "C1"
    assert c1.payload["externalURL"] == "https://b.example"  # several alerts: each has its own link
    assert c1.payload["alerts"][1]["generatorURL"] == "https://b.example/a/1"
    owner = out[("team:C1-owner/hook", '{}/{team="C1-owner"}:{circle="C1"}')]
    assert owner.reasons == ("escalated",) and owner.payload["alerts"][0]["annotations"]["notice"].startswith("升级")
    text = templates.plain_text(templates.message(c1.payload))
    assert "\n1. " in text and "\n2. " in text and "\n3. " not in text


def test_a_resolution_and_a_firing_in_one_wave_share_one_message() -> None:
    rice = replace(alert("rice"), state="resolved", ends_at=minutes(5))
    notices = [
        Notice(rice, Event.RESOLVED, "resolved", ("C1-team",)),
        Notice(alert("oil"), Event.FIRED, "fired", ("C1-team",)),
    ]
    (m,) = messages(notices, ROUTING)
    assert m.status is Event.FIRED
    assert sorted((a["labels"]["necessity"], a["status"]) for a in m.payload["alerts"]) == [
        ("oil", "firing"),
        ("rice", "resolved"),
    ]


def test_the_notice_and_suggestions_show_in_every_channel() -> None:
    n = Notice(
        alert("rice"),
        Event.FIRED,
        "data_missing",
        ("C1-team",),
        note="数据缺失：…",
        extra={"suggestions": "某超市 300 kg"},
    )
    (m,) = messages([n], ROUTING)
    text = templates.plain_text(templates.message(m.payload))
    assert "提示：数据缺失" in text and "建议调货：某超市 300 kg" in text
