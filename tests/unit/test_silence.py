"""Silence matching (pure): equality and regex matchers, all must match, active in [starts_at, ends_at)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.silence import Silence, check, parse_duration, parse_matcher, silenced

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
RICE_C03 = {"alertname": "SupplyShortage", "circle": "C03", "necessity": "rice", "severity": "high", "rule": "shortage"}


def silence(*matchers: str, start: datetime = T0, hours: float = 2, sid: int = 1) -> Silence:
    return Silence(
        tuple(parse_matcher(m) for m in matchers), start, start + timedelta(hours=hours), "op", "why", id=sid
    )


def test_every_matcher_must_match_while_the_silence_is_active() -> None:
    s = silence("circle=C03", "necessity=rice")
    assert silenced(RICE_C03, [s], T0) == s
    assert silenced(RICE_C03, [s], T0 + timedelta(hours=1, minutes=59)) == s
    assert silenced(RICE_C03, [s], T0 - timedelta(seconds=1)) is None  # not started
    assert silenced(RICE_C03, [s], T0 + timedelta(hours=2)) is None  # ended
    assert silenced(RICE_C03 | {"necessity": "flour"}, [s], T0) is None
    assert silenced({"circle": "C03"}, [s], T0) is None  # a missing label is ''


def test_regex_matchers_match_the_whole_value() -> None:
    s = silence("circle=~C0[1-3]", "necessity=~rice|flour", "rule=shortage")
    assert silenced(RICE_C03, [s], T0) == s
    assert silenced(RICE_C03 | {"circle": "C013"}, [s], T0) is None  # anchored: not a substring match
    assert silenced(RICE_C03 | {"necessity": "rice_noodles"}, [s], T0) is None
    assert silenced(RICE_C03 | {"rule": "feed"}, [s], T0) is None


def test_the_longest_lasting_active_silence_is_the_answer() -> None:
    short, long_, other = (
        silence("circle=C03", hours=1, sid=1),
        silence("rule=shortage", hours=5, sid=2),
        silence("circle=C04", hours=9, sid=3),
    )
    assert silenced(RICE_C03, [short, long_, other], T0) == long_


def test_parsing_and_checks_refuse_what_cannot_be_meant() -> None:
    assert str(parse_matcher(' necessity = "rice" ')) == "necessity=rice"
    assert parse_matcher("necessity=~rice|flour").is_regex
    for bad in ("circle", "=C03", "9x=1", "circle=~(unclosed"):
        with pytest.raises(ValueError):
            parse_matcher(bad)
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("1d12h30m") == timedelta(days=1, hours=12, minutes=30)
    for bad in ("", "2", "2x", "h2"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    end = T0 + timedelta(hours=1)
    check([parse_matcher("circle=C03")], T0, end, "rice truck on its way")
    with pytest.raises(ValueError, match="at least one matcher"):
        check([], T0, end, "x")
    with pytest.raises(ValueError, match="every alert"):
        check([parse_matcher("circle=~.*")], T0, end, "x")
    with pytest.raises(ValueError, match="end after"):
        check([parse_matcher("circle=C03")], T0, T0, "x")
    with pytest.raises(ValueError, match="comment"):
        check([parse_matcher("circle=C03")], T0, end, "  ")
