"""How far behind the supply topics the worker is: reports exactly, seconds within one observation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.lag import LagTracker, PartitionLag, Written, total
from streams.levels import Lag

T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
TP = ("supply.inventory.v1", 0)


def at(second: float) -> datetime:
    return T0 + timedelta(seconds=second)


def one(
    tracker: LagTracker, second: float, end: int, written: int | None, message_at: float | None = None
) -> PartitionLag:
    rows = {} if written is None else {TP: Written(written, None if message_at is None else at(message_at))}
    (lag,) = tracker.measure(at(second), {TP: end}, {TP: 0}, rows)
    return lag


def test_caught_up_is_zero() -> None:
    lag = one(LagTracker(), 100, end=50, written=50, message_at=10)
    assert (lag.reports, lag.seconds) == (0, 0.0)


def test_after_a_restart_the_last_written_message_bounds_the_age() -> None:
    lag = one(LagTracker(), 100, end=500, written=50, message_at=40)
    assert (lag.reports, lag.seconds) == (450, 60.0)


def test_a_quiet_stream_that_just_got_a_message_is_not_minutes_behind() -> None:
    tracker = LagTracker()
    one(tracker, 100, end=50, written=50, message_at=0)  # the last message was written 100 s ago
    lag = one(tracker, 105, end=51, written=50, message_at=0)  # one new message, not yet written
    assert (lag.reports, lag.seconds) == (1, 5.0)


def test_a_steady_backlog_written_within_a_pass_stays_one_pass_behind() -> None:
    tracker = LagTracker()
    for i in range(50):
        # 100 new messages every 5 s; the worker always has the previous pass's written
        lag = one(tracker, 5 * i, end=100 * (i + 1), written=100 * i, message_at=5 * i - 1000)
    assert lag.reports == 100 and lag.seconds == 5.0


def test_a_stuck_worker_falls_further_behind_every_pass() -> None:
    tracker = LagTracker(keep=4)
    one(tracker, 0, end=10, written=10, message_at=-1)
    seconds = [one(tracker, s, end=10 + s, written=10, message_at=-1).seconds for s in range(5, 100, 5)]
    assert seconds == sorted(seconds) and seconds[-1] == 95.0


def test_never_written_partition_is_behind_since_first_seen() -> None:
    tracker = LagTracker()
    assert one(tracker, 0, end=7, written=None).seconds == 0.0
    lag = one(tracker, 30, end=9, written=None)
    assert (lag.reports, lag.seconds) == (9, 30.0)


def test_messages_lost_to_retention_are_not_behind() -> None:
    (lag,) = LagTracker().measure(at(0), {TP: 100}, {TP: 90}, {TP: Written(20, at(-5))})
    assert (lag.written, lag.reports) == (90, 10)


def test_total_sums_reports_and_takes_the_oldest() -> None:
    parts = [PartitionLag("a", 0, 10, 5, 5, 3.0), PartitionLag("a", 1, 10, 2, 8, 12.0)]
    assert total(parts) == Lag(reports=13, seconds=12.0)
    assert total([]) == Lag(reports=0, seconds=0.0)
