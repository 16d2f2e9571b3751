"""Current, or it says so: stale or lagging levels are unknown to rules, and PipelineStalled pages operators.

Pure: time is driven explicitly through `now`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.model import Alert, Condition, Event, Policy, step
from alerts.rules import pipeline, shortage

T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
CURRENCY = pipeline.Currency(stall_after_s=15.0, max_lag_s=60.0)
SLOW = Policy(for_s=60, clear_for_s=60)  # the dispatcher's default hold, which PipelineStalled must not need


def at(second: float) -> datetime:
    return T0 + timedelta(seconds=second)


def level_row(days: float, status: str, computed_at: datetime, lag_s: float | None = 0.0) -> dict[str, Any]:
    return {
        "circle_id": "C1",
        "circle_name": "Circle 1",
        "necessity": "rice",
        "necessity_name": "大米",
        "unit": "kg",
        "days_of_supply": days,
        "stock": days * 250.0,
        "daily_demand": 250.0,
        "coverage": 1.0,
        "status": status,
        "shortage_days": 3.0,
        "critical_days": 1.0,
        "computed_at": computed_at,
        "lag_s": lag_s,
    }


def heartbeat(levels_at: datetime, lag_s: float | None = 0.0, lag_reports: int | None = 0) -> dict[str, Any]:
    return {
        "id": "levels",
        "levels_at": levels_at,
        "lag_reports": lag_reports,
        "lag_s": lag_s,
        "worker": "baogong-streams@test:1",
        "updated_at": levels_at,
    }


def test_currency_is_age_and_lag() -> None:
    assert CURRENCY.problem(at(0), 0.0, at(15)) is None
    assert CURRENCY.problem(at(0), None, at(10)) is None  # an unmeasured lag does not count against it
    assert "last computed 16 s ago" in (CURRENCY.problem(at(0), 0.0, at(16)) or "")
    assert "behind the supply topics" in (CURRENCY.problem(at(0), 61.0, at(1)) or "")
    assert CURRENCY.problem(None, 0.0, at(0)) == "circle levels were never computed"


def test_shortage_rule_treats_stale_or_lagging_levels_as_unknown() -> None:
    rule = shortage.rule(0.2, CURRENCY)
    assert [v.condition for v in rule.verdicts([level_row(2.0, "SHORTAGE", at(0))], at(10))] == [Condition.ACTIVE]
    assert [v.condition for v in rule.verdicts([level_row(2.0, "SHORTAGE", at(0))], at(16))] == [Condition.UNKNOWN]
    assert [v.condition for v in rule.verdicts([level_row(8.0, "OK", at(0), lag_s=61.0)], at(5))] == [Condition.UNKNOWN]
    assert [v.condition for v in rule.verdicts([level_row(8.0, "OK", at(0), lag_s=None)], at(5))] == [
        Condition.RECOVERED
    ]


def test_a_stopped_worker_neither_fires_nor_resolves_a_shortage() -> None:
    rule = shortage.rule(0.2, CURRENCY)
    alert: Alert | None = None
    events: list[Event] = []

    def evaluate(row: dict[str, Any], second: float) -> None:
        nonlocal alert
        (verdict,) = rule.verdicts([row], at(second))
        alert, event = step(alert, verdict, shortage.RULE, at(second), SLOW)
        if event:
            events.append(event)

    # the last levels the worker wrote before it stopped show a shortage: never fires on them later
    for second in range(20, 300, 5):
        evaluate(level_row(2.0, "SHORTAGE", at(0)), second)
    assert alert is None and events == []

    # a firing shortage, then the worker stops on a level that looks recovered: stays firing
    for second in range(0, 65, 5):
        evaluate(level_row(2.0, "SHORTAGE", at(second)), second)
    assert events == [Event.FIRED]
    for second in range(65, 400, 5):
        evaluate(level_row(8.0, "OK", at(64)), second)
    assert events == [Event.FIRED] and alert is not None and alert.state == "firing"


def test_pipeline_rule_conditions() -> None:
    rule = pipeline.rule(CURRENCY)
    assert rule.audience == "operators" and rule.policy == pipeline.POLICY

    def condition(row: dict[str, Any], second: float) -> Condition:
        (verdict,) = rule.verdicts([row], at(second))
        return verdict.condition

    assert condition(heartbeat(at(0)), 5) is Condition.RECOVERED
    assert condition(heartbeat(at(0)), 16) is Condition.ACTIVE
    assert condition(heartbeat(at(0), lag_s=61.0, lag_reports=5000), 1) is Condition.ACTIVE
    assert condition(heartbeat(at(0), lag_s=45.0, lag_reports=900), 1) is Condition.BAND
    assert condition(heartbeat(at(0), lag_s=None, lag_reports=None), 1) is Condition.RECOVERED
    assert rule.verdicts([], at(0)) == []  # no worker ever computed levels here: nothing to say


def test_pipeline_stalled_fires_within_three_level_intervals_and_resolves_when_current() -> None:
    """Defaults: a level pass every 5 s, current within 15 s, rules evaluated every 5 s."""
    rule = pipeline.rule(CURRENCY)
    alert: Alert | None = None
    pages: list[tuple[float, Event]] = []

    def evaluate(levels_at: datetime, second: float) -> None:
        nonlocal alert
        (verdict,) = rule.verdicts([heartbeat(levels_at)], at(second))
        open_alert = alert if alert is not None and alert.state != "resolved" else None  # as open_alerts loads
        after, event = step(open_alert, verdict, pipeline.RULE, at(second), rule.policy or SLOW)
        alert = after or alert
        if event:
            pages.append((second, event))

    last_pass = 0.0
    for second in range(0, 101, 5):  # levels every 5 s, evaluations at offsets of 2 s
        last_pass = float(second)
        evaluate(at(last_pass), second + 2)
    assert pages == []
    # the worker stops after the pass at 100 s: the pass at 105 s never happens
    for second in range(107, 200, 5):
        evaluate(at(last_pass), second)
    fired = [s for s, e in pages if e is Event.FIRED]
    assert len(fired) == 1 and fired[0] - 105 <= 3 * 5, pages
    assert alert is not None and alert.labels["alertname"] == "PipelineStalled"
    assert "last computed" in alert.annotations["summary"]
    assert "baogong worker" in alert.annotations["description"]
    # the worker is back: the first current pass resolves it, once
    for second in range(200, 240, 5):
        evaluate(at(second), second + 2)
    assert [e for _, e in pages] == [Event.FIRED, Event.RESOLVED]
    assert (
        alert is not None and alert.state == "resolved" and alert.annotations["summary"] == "Circle levels are current"
    )


def test_a_lag_hovering_around_the_bound_pages_once() -> None:
    rule = pipeline.rule(CURRENCY)
    alert: Alert | None = None
    events: list[Event] = []
    for i in range(40):
        lag = 65.0 if i % 2 else 55.0  # above, then just below the bound, never below half of it
        (verdict,) = rule.verdicts([heartbeat(at(i * 5), lag_s=lag, lag_reports=1000)], at(i * 5 + 1))
        alert, event = step(alert, verdict, pipeline.RULE, at(i * 5 + 1), pipeline.POLICY)
        if event:
            events.append(event)
    assert events == [Event.FIRED]


def test_status_tells_a_person_what_to_do_when_stalled() -> None:
    from baogong.settings import Settings
    from baogong.status import PartitionView, PipelineReport, render

    settings = Settings.from_env({}, level_interval_s=5.0)
    topic = "supply.inventory.v1"
    parts = [PartitionView(topic, 0, written=100, end=173, start=0, message_at=at(-1))]
    counts = [{"status": "OK", "levels": 110, "circles": 10}, {"status": "SHORTAGE", "levels": 1, "circles": 1}]
    beat = heartbeat(at(0), lag_s=0.0, lag_reports=0)

    stalled = PipelineReport(at(125), beat, parts, None, counts, CURRENCY.problem(at(0), 0.0, at(125)))
    text = render(stalled, settings)
    assert not stalled.current
    assert text.startswith("Circle levels: STALLED: circle levels were last computed 2 min 5 s ago")
    assert "Is `baogong worker` running?" in text
    assert "73" in text and "SHORTAGE 1 in 1 circle(s), OK 110 in 10 circle(s)" in text

    current = PipelineReport(at(3), beat, parts, "KafkaTimeoutError", counts, None)
    text = render(current, settings)
    assert text.startswith("Circle levels: CURRENT") and "What to do" not in text
    assert "did not answer: KafkaTimeoutError" in text

    never = PipelineReport(at(3), None, [], None, [], CURRENCY.problem(None, None, at(3)))
    assert "never" in render(never, settings) and not never.current
