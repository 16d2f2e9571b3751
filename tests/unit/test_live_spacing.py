"""How far apart live level passes start: at least the interval, five times a pass's duration, at most 0.6 s."""

from __future__ import annotations

from streams.agents.levels import live_spacing


def test_quick_passes_keep_the_interval() -> None:
    assert live_spacing(0.25, 0.01) == 0.25


def test_slow_passes_leave_the_worker_four_fifths_of_its_time() -> None:
    assert live_spacing(0.25, 0.1) == 0.5


def test_spacing_never_delays_a_level_past_the_cap() -> None:
    assert live_spacing(0.25, 2.0) == 0.6
