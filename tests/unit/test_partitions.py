"""Which partitions of the raw time series should exist, and which go, for a given moment (schema/partitions.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schema.partitions import DAY, SERIES, WEEK, Span, grid_start, plan

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)  # a Wednesday
MIDNIGHT = datetime(2026, 12, 2, tzinfo=UTC)
MONDAY = datetime(2026, 11, 30, tzinfo=UTC)


def days(start: datetime, n: int) -> list[Span]:
    return [Span(start + i * DAY, start + (i + 1) * DAY) for i in range(n)]


def test_ranges_start_on_utc_midnight_and_monday() -> None:
    assert grid_start(NOW, DAY) == MIDNIGHT
    assert grid_start(MIDNIGHT, DAY) == MIDNIGHT
    assert grid_start(NOW, WEEK) == MONDAY
    assert grid_start(datetime(1999, 12, 31, 23, tzinfo=UTC), DAY) == datetime(1999, 12, 31, tzinfo=UTC)
    assert Span(MONDAY, MONDAY + WEEK).name("prices") == "prices_p20261130"
    assert {s.table: s.interval for s in SERIES} == {
        "outlet_reports": DAY,
        "circle_levels": DAY,
        "prices": WEEK,
        "feed_health": WEEK,
    }


def test_an_empty_table_gets_today_and_the_next_seven_days() -> None:
    p = plan(now=NOW, retention=timedelta(days=35), interval=DAY, existing={})
    assert p.create == tuple(days(MIDNIGHT, 8))  # Dec 2 .. Dec 9 (holding now + 7 days)
    assert p.drop == ()
    weekly = plan(now=NOW, retention=timedelta(days=35), interval=WEEK, existing={})
    assert weekly.create == (Span(MONDAY, MONDAY + WEEK), Span(MONDAY + WEEK, MONDAY + 2 * WEEK))


def test_existing_partitions_are_not_created_again_and_old_ones_are_dropped() -> None:
    existing = {s.name("circle_levels"): s for s in days(MIDNIGHT - 40 * DAY, 45)}  # Oct 23 .. Dec 6
    p = plan(now=NOW, retention=timedelta(days=35), interval=DAY, existing=existing)
    assert p.create == tuple(days(MIDNIGHT + 5 * DAY, 3))  # Dec 7, 8, 9
    # Cutoff Oct 28 09:30: partitions ending by then go (Oct 23 .. Oct 27); Oct 28's holds rows after the cutoff.
    assert p.drop == tuple(f"circle_levels_p202610{d}" for d in range(23, 28))


def test_a_second_plan_after_doing_the_first_is_empty() -> None:
    existing = {s.name("prices"): s for s in [Span(MONDAY - 8 * WEEK, MONDAY - 7 * WEEK)]}
    first = plan(now=NOW, retention=timedelta(days=35), interval=WEEK, existing=existing)
    after = {s.name("prices"): s for s in first.create}
    assert first.drop == ("prices_p20261005",)
    again = plan(now=NOW, retention=timedelta(days=35), interval=WEEK, existing=after)
    assert (again.create, again.drop) == ((), ())


def test_past_ranges_are_created_only_where_the_default_holds_rows_inside_retention() -> None:
    occupied = [
        MIDNIGHT - 3 * DAY,  # inside retention: created
        MIDNIGHT - 34 * DAY,  # starts after the cutoff (Oct 28 09:30): created
        MIDNIGHT - 35 * DAY,  # starts before the cutoff: its old rows are deleted from the default instead
        MIDNIGHT - 400 * DAY,  # long gone
        MIDNIGHT + 30 * DAY,  # beyond the coming week: stays in the default until it comes near
    ]
    p = plan(now=NOW, retention=timedelta(days=35), interval=DAY, existing={}, occupied=occupied)
    assert p.create == (*days(MIDNIGHT - 34 * DAY, 1), *days(MIDNIGHT - 3 * DAY, 1), *days(MIDNIGHT, 8))


def test_odd_partitions_an_operator_made_are_respected() -> None:
    """A partition not on the grid (here: two days, from noon) blocks the ranges it overlaps."""
    odd = Span(MIDNIGHT + 12 * timedelta(hours=1), MIDNIGHT + 2 * DAY + 12 * timedelta(hours=1))
    p = plan(now=NOW, retention=timedelta(days=35), interval=DAY, existing={"levels_manual": odd})
    assert [s.start.day for s in p.create] == [5, 6, 7, 8, 9]
    gone = plan(now=NOW + 60 * DAY, retention=timedelta(days=35), interval=DAY, existing={"levels_manual": odd})
    assert gone.drop == ("levels_manual",)
