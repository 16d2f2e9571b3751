"""The alert lifecycle, rule by rule (pure; time is driven explicitly)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts.model import Alert, Condition, Event, Policy, Step, advance, close_removed, step
from alerts.rules import shortage

T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
POLICY = Policy(for_s=60, clear_for_s=60)
HOUR = 3600.0
STALE = "STALE"


def level(days: float | None, status: str = "SHORTAGE") -> shortage.LevelView:
    return shortage.LevelView("C1", "Circle 1", "rice", "大米", "kg", days, 100.0, 250.0, 1.0, status, 3.0, 1.0)


def status_of(days: float) -> str:
    return "CRITICAL" if days < 1 else "SHORTAGE" if days < 3 else "OK"


class Life:
    """One subject evaluated over time, as evaluate_once does: the open alert, else the latest resolved."""

    def __init__(self, reopen_window_s: float = HOUR) -> None:
        self.alert: Alert | None = None
        self.kinds: list[str] = []
        self.pages: list[tuple[str, Event]] = []
        self.window = reopen_window_s

    def at(self, second: float, days: float | None, status: str | None = None) -> Step:
        verdict = shortage.evaluate(level(days, status or status_of(days or 0)), 0.2)
        result = advance(self.alert, verdict, "shortage", T0 + timedelta(seconds=second), POLICY, self.window)
        if result.alert is not None:
            self.alert = result.alert
        self.kinds += [c.kind for c in result.changes]
        self.pages += [(c.kind, c.page) for c in result.changes if c.page is not None]
        return result

    def series(self, points: list[tuple[float, float | None]], status: str | None = None) -> None:
        for second, days in points:
            self.at(second, days, status)


def test_rule_conditions_with_hysteresis() -> None:
    assert shortage.evaluate(level(2.0), 0.2).condition is Condition.ACTIVE
    assert shortage.evaluate(level(3.3, "WATCH"), 0.2).condition is Condition.BAND
    assert shortage.evaluate(level(3.6, "WATCH"), 0.2).condition is Condition.RECOVERED
    assert shortage.evaluate(level(0.5, STALE), 0.2).condition is Condition.UNKNOWN
    assert shortage.evaluate(level(0.5, "CRITICAL"), 0.2).severity == "critical"


def test_pending_fires_only_after_the_hold() -> None:
    life = Life()
    life.series([(0, 2.0), (30, 2.0)])
    assert life.alert is not None and life.alert.state == "pending" and life.pages == []
    life.at(60, 2.0)
    assert life.alert.state == "firing" and life.pages == [("fired", Event.FIRED)]
    assert life.alert.starts_at == T0 + timedelta(seconds=60) and life.alert.notified_severity == "high"
    assert life.kinds == ["pending", "fired"]


def test_a_blip_that_recovers_before_the_hold_pages_nobody() -> None:
    life = Life()
    life.series([(0, 2.0), (30, 5.0), (90, 5.0)])
    assert life.pages == [] and life.kinds == ["pending", "resolved"]
    assert life.alert is not None and life.alert.state == "resolved" and life.alert.starts_at is None


def test_flapping_inside_the_hysteresis_band_pages_once() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0)])
    life.series([(60 + 10 * i, 2.9 if i % 2 else 3.3) for i in range(1, 30)])
    assert life.pages == [("fired", Event.FIRED)]
    assert life.alert is not None and life.alert.state == "firing"


def test_resolves_once_after_recovery_holds() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0), (100, 8.0), (130, 8.0), (160, 8.0), (200, 8.0)])
    assert life.pages == [("fired", Event.FIRED), ("resolved", Event.RESOLVED)]
    assert life.alert is not None and life.alert.state == "resolved"
    assert life.alert.ends_at == T0 + timedelta(seconds=160)


def test_an_acknowledged_alert_still_resolves_by_itself() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0)])
    assert life.alert is not None
    life.alert = replace(life.alert, state="acknowledged", acknowledged_at=T0 + timedelta(seconds=70))
    life.series([(100, 2.0), (120, 8.0), (180, 8.0)])
    assert life.pages[-1] == ("resolved", Event.RESOLVED) and life.alert.state == "resolved"


def test_a_worse_severity_pages_again_a_better_one_does_not() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0), (90, 0.5)])  # high, then critical
    assert life.pages == [("fired", Event.FIRED), ("severity_raised", Event.FIRED)]
    assert life.alert is not None and life.alert.notified_severity == "critical"
    life.series([(120, 2.0), (150, 0.5), (180, 2.0)])  # back to high, critical again: already paged about
    assert len(life.pages) == 2 and life.alert.severity == "high"


def test_an_acknowledged_alert_is_told_about_a_worse_severity_and_stays_acknowledged() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0)])
    assert life.alert is not None
    life.alert = replace(life.alert, state="acknowledged")
    life.at(90, 0.5)
    assert life.pages[-1] == ("severity_raised", Event.FIRED) and life.alert.state == "acknowledged"


def test_stale_data_neither_fires_nor_resolves() -> None:
    life = Life()
    life.series([(0, 0.1), (100, 0.1)], STALE)
    assert life.alert is None and life.pages == []


def test_stale_data_under_a_firing_alert_says_data_missing_once_then_data_back() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0)])
    life.series([(100, 8.0), (130, 8.0)], STALE)  # unknown for 30 s: less than the hold, nobody told yet
    assert [k for k, _ in life.pages] == ["fired"]
    life.series([(160, 8.0), (200, 8.0), (400, 8.0)], STALE)  # 60 s and more: told once, never resolved
    assert life.pages == [("fired", Event.FIRED), ("data_missing", Event.FIRED)]
    assert life.alert is not None and life.alert.state == "firing"
    assert life.alert.data_missing_at == T0 + timedelta(seconds=160)
    life.at(420, 2.0)  # known again, still short
    assert life.pages[-1] == ("data_back", Event.FIRED)
    assert life.alert.state == "firing" and life.alert.data_missing_at is None and life.alert.unknown_since is None


def test_data_back_recovered_says_nothing_until_it_resolves() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0)])
    life.series([(100, 8.0), (200, 8.0)], STALE)
    life.series([(220, 8.0), (300, 8.0)])
    assert [k for k, _ in life.pages] == ["fired", "data_missing", "resolved"]
    back = Life()
    back.series([(0, 2.0), (60, 2.0)])
    back.series([(100, 8.0), (200, 8.0)], STALE)
    back.series([(220, 8.0), (240, 3.3)])  # recovered, then only in the band: data back after all
    assert [k for k, _ in back.pages] == ["fired", "data_missing", "data_back"]


def test_a_short_stale_spell_under_a_firing_alert_tells_nobody() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0)])
    life.series([(70, 2.0), (100, 2.0)], STALE)
    life.at(110, 2.0)
    assert life.pages == [("fired", Event.FIRED)]
    assert life.alert is not None and life.alert.unknown_since is None


def test_a_pending_alert_does_not_carry_its_pending_time_across_a_stale_spell() -> None:
    life = Life()
    life.series([(0, 2.0), (50, 2.0)])
    life.series([(55, 2.0), (90, 2.0)], STALE)  # without the reset, 2.0 at 95 s would fire (held 95 s)
    life.series([(95, 2.0), (140, 2.0)])
    assert life.pages == [] and life.alert is not None and life.alert.state == "pending"
    assert life.alert.pending_since == T0 + timedelta(seconds=95)
    life.at(155, 2.0)
    assert life.pages == [("fired", Event.FIRED)]


def test_a_recurrence_within_the_window_reopens_the_same_alert_after_the_hold() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0), (100, 8.0), (160, 8.0)])
    first = life.alert
    assert first is not None and first.state == "resolved"
    life.series([(1000, 2.0)])
    assert life.alert.state == "pending" and life.alert.ends_at == first.ends_at  # held, still resolved then
    life.at(1060, 2.0)
    reopened = life.alert
    assert life.pages[-1] == ("reopened", Event.FIRED)
    assert reopened.state == "firing" and reopened.reopen_count == 1 and reopened.ends_at is None
    assert reopened.reopened_at == T0 + timedelta(seconds=1060) and reopened.starts_at == first.starts_at
    assert reopened.paged_at == reopened.reopened_at


def test_a_recurrence_that_does_not_hold_leaves_the_alert_resolved_as_it_was() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0), (100, 8.0), (160, 8.0)])
    ended = life.alert.ends_at if life.alert else None
    life.series([(1000, 2.0), (1030, 8.0)])
    assert life.alert is not None and life.alert.state == "resolved" and life.alert.ends_at == ended
    assert [k for k, _ in life.pages] == ["fired", "resolved"]


def test_a_recurrence_after_the_window_is_a_new_alert() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0), (100, 8.0), (160, 8.0)])
    result = life.at(160 + HOUR + 1, 2.0)
    assert result.alert is not None and result.alert.id is None and result.alert.starts_at is None
    assert result.alert.state == "pending" and result.alert.reopen_count == 0


def test_reopening_clears_the_acknowledgement_and_the_escalation() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0)])
    assert life.alert is not None
    life.alert = replace(
        life.alert,
        state="resolved",
        ends_at=T0 + timedelta(seconds=100),
        resolved_by="c03/wang",
        acknowledged_at=T0 + timedelta(seconds=80),
        acknowledged_by="c03/wang",
        escalation_level=2,
        escalated_at=T0 + timedelta(seconds=90),
        teams=("C1-team", "C1-owner", "district"),
    )
    life.series([(200, 2.0), (260, 2.0)])
    a = life.alert
    assert a.state == "firing" and a.acknowledged_at is None and a.resolved_by is None
    assert a.escalation_level == 0 and a.escalated_at is None and a.teams == ()


def test_alerts_of_removed_circles_are_closed() -> None:
    life = Life()
    life.series([(0, 2.0), (60, 2.0)])
    assert life.alert is not None
    closed = close_removed(life.alert, T0 + timedelta(seconds=90))
    assert closed.alert is not None and closed.alert.state == "resolved"
    assert [(c.kind, c.page) for c in closed.changes] == [("closed_removed_circle", Event.RESOLVED)]
    pending = Life()
    pending.at(0, 2.0)
    assert pending.alert is not None
    quiet = close_removed(pending.alert, T0 + timedelta(seconds=10))
    assert [(c.kind, c.page) for c in quiet.changes] == [("closed_removed_circle", None)]


def test_step_keeps_its_narrow_view() -> None:
    verdict = shortage.evaluate(level(2.0), 0.2)
    alert, event = step(None, verdict, "shortage", T0, POLICY)
    assert alert is not None and alert.state == "pending" and event is None
    alert, event = step(alert, verdict, "shortage", T0 + timedelta(seconds=60), POLICY)
    assert alert is not None and alert.state == "firing" and event is Event.FIRED
