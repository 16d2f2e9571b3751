"""The supply task's state machine (alerts/tasks.py): open -> dispatched -> delivered; closed only by its alert."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alerts.tasks import MoveRefused, State, Task, check_move, durations

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
OPEN = Task(7, 42, "C03", "rice", 500.0, (), State.OPEN, T0, "王芳", paged_at=T0 - timedelta(minutes=12))
DISPATCHED = replace(OPEN, state=State.DISPATCHED, dispatched_at=T0 + timedelta(minutes=30), dispatched_by="李强")
DELIVERED = replace(DISPATCHED, state=State.DELIVERED, delivered_at=T0 + timedelta(hours=2), delivered_by="李强")
CLOSED = replace(DELIVERED, state=State.CLOSED, closed_at=T0 + timedelta(hours=3))


def test_the_manual_moves() -> None:
    assert check_move(OPEN, "dispatched") is State.DISPATCHED
    assert check_move(DISPATCHED, State.DELIVERED) is State.DELIVERED


@pytest.mark.parametrize(
    ("task", "to", "reason"),
    [
        (OPEN, "delivered", "task 7 is open: dispatch it first"),
        (DISPATCHED, "dispatched", "task 7 is already dispatched (it was dispatched by 李强 at 2026-11-25 08:30:00)"),
        (DELIVERED, "dispatched", "task 7 is already delivered (it was dispatched by 李强 at 2026-11-25 08:30:00)"),
        (CLOSED, "delivered", "task 7 is closed (its alert 42 resolved): nothing more to do"),
        (OPEN, "closed", "task 7 closes by itself when its alert 42 resolves"),
        (DISPATCHED, "open", "task 7 cannot go back to open"),
        (OPEN, "shipped", "'shipped' is not a task state (open, dispatched, delivered, closed)"),
    ],
)
def test_impossible_moves_say_why(task: Task, to: str, reason: str) -> None:
    with pytest.raises(MoveRefused) as refused:
        check_move(task, to)
    assert str(refused.value) == reason


def test_durations_for_the_review() -> None:
    done = replace(CLOSED, acknowledged_at=T0, recovered_at=T0 + timedelta(hours=3))
    assert durations(done) == {
        "page_to_ack_s": 720.0,
        "ack_to_dispatched_s": 1800.0,
        "dispatched_to_recovered_s": 9000.0,
    }
    assert durations(OPEN)["ack_to_dispatched_s"] is None
