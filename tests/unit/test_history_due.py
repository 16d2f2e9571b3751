"""When a circle level gets a history row: new series, a change, or a minute since the last row."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from streams.circles import HISTORY_EVERY, Stored, history_due, level_values
from streams.levels import CircleLevel, Status

T = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LEVEL = CircleLevel(T, "C1", "rice", 500.0, 250.0, 2.0, 1.0, 3, 3, Status.SHORTAGE, unconfirmed_age_s=60.0)


def stored(level: CircleLevel, recorded: datetime) -> Stored:
    return Stored(level.computed_at, recorded, (), level_values(level))


def test_a_new_series_or_one_never_recorded_gets_a_row() -> None:
    assert history_due(None, LEVEL)
    assert history_due(Stored(T, None, (), level_values(LEVEL)), LEVEL)


def test_an_unchanged_level_waits_a_minute() -> None:
    before = stored(LEVEL, T)
    later = replace(LEVEL, computed_at=T + timedelta(seconds=59), unconfirmed_age_s=119.0)  # age alone: no change
    assert not history_due(before, later)
    assert history_due(before, replace(later, computed_at=T + HISTORY_EVERY))


def test_any_change_of_status_grade_or_number_gets_a_row_at_once() -> None:
    before = stored(LEVEL, T)
    soon = replace(LEVEL, computed_at=T + timedelta(seconds=1))
    assert not history_due(before, soon)
    for changed in (
        replace(soon, status=Status.CRITICAL),
        replace(soon, grade=2),
        replace(soon, stock=500.001),
        replace(soon, days_of_supply=None),
        replace(soon, outlets_fresh=2),
        replace(soon, coverage_stock=0.5),
    ):
        assert history_due(before, changed), changed
