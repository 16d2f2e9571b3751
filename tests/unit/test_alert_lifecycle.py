from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.model import Alert, Condition, Event, Policy, step
from alerts.rules import shortage

T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
POLICY = Policy(for_s=60, clear_for_s=60)


def level(days: float | None, status: str = "SHORTAGE") -> shortage.LevelView:
    return shortage.LevelView("C1", "Circle 1", "rice", "大米", "kg", days, 100.0, 250.0, 1.0, status, 3.0, 1.0)


def run(days_series: list[tuple[int, float | None, str]]) -> tuple[Alert | None, list[Event]]:
    alert: Alert | None = None
    events: list[Event] = []
    for second, days, status in days_series:
        alert, event = step(
            alert, shortage.evaluate(level(days, status), 0.2), "shortage", T0 + timedelta(seconds=second), POLICY
        )
        if event:
            events.append(event)
    return alert, events


def test_rule_conditions_with_hysteresis() -> None:
    assert shortage.evaluate(level(2.0), 0.2).condition is Condition.ACTIVE
    assert shortage.evaluate(level(3.3, "WATCH"), 0.2).condition is Condition.BAND
    assert shortage.evaluate(level(3.6, "WATCH"), 0.2).condition is Condition.RECOVERED
    assert shortage.evaluate(level(0.5, "STALE"), 0.2).condition is Condition.UNKNOWN
    assert shortage.evaluate(level(0.5, "CRITICAL"), 0.2).severity == "critical"


def test_fires_only_after_holding_for_the_minimum_duration() -> None:
    alert, events = run([(0, 2.0, "SHORTAGE"), (30, 2.0, "SHORTAGE")])
    assert alert is not None and alert.state == "pending" and events == []
    alert, events = run([(0, 2.0, "SHORTAGE"), (30, 2.0, "SHORTAGE"), (60, 2.0, "SHORTAGE")])
    assert alert is not None and alert.state == "firing" and events == [Event.FIRED]


def test_a_blip_that_recovers_before_the_hold_pages_nobody() -> None:
    alert, events = run([(0, 2.0, "SHORTAGE"), (30, 5.0, "WATCH"), (90, 5.0, "WATCH")])
    assert events == []
    assert alert is not None and alert.state == "resolved" and alert.starts_at is None


def test_flapping_around_the_threshold_pages_once() -> None:
    series = [(0, 2.0, "SHORTAGE"), (60, 2.0, "SHORTAGE")]
    # flaps between 2.9 and 3.3 days: inside the hysteresis band, never recovered
    series += [(60 + 10 * i, 2.9 if i % 2 else 3.3, "SHORTAGE" if i % 2 else "WATCH") for i in range(1, 30)]
    alert, events = run(series)
    assert events == [Event.FIRED]
    assert alert is not None and alert.state == "firing"


def test_resolves_once_after_recovery_holds() -> None:
    series = [(0, 2.0, "SHORTAGE"), (60, 2.0, "SHORTAGE"), (100, 8.0, "OK"), (130, 8.0, "OK"), (160, 8.0, "OK")]
    alert, events = run(series)
    assert events == [Event.FIRED, Event.RESOLVED]
    assert alert is not None and alert.state == "resolved" and alert.ends_at == T0 + timedelta(seconds=160)


def test_stale_data_neither_fires_nor_resolves() -> None:
    alert, events = run([(0, 0.1, "STALE"), (100, 0.1, "STALE")])
    assert alert is None and events == []
    series = [(0, 2.0, "SHORTAGE"), (60, 2.0, "SHORTAGE"), (100, 8.0, "STALE"), (300, 8.0, "STALE")]
    alert, events = run(series)
    assert events == [Event.FIRED] and alert is not None and alert.state == "firing"


def test_severity_change_while_firing_does_not_page_again() -> None:
    series = [(0, 2.0, "SHORTAGE"), (60, 2.0, "SHORTAGE"), (90, 0.5, "CRITICAL"), (120, 2.0, "SHORTAGE")]
    alert, events = run(series)
    assert events == [Event.FIRED]
    assert alert is not None and alert.severity == "high"
