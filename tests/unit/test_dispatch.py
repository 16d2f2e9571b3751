"""Delivery's pure parts: back-off, the lease/timeout contract, per-notifier timeouts, the log's wording."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from alerts.dispatch import DeliveryPolicy, dispatcher_id
from alerts.notification_log import Entry, outcome, render

T = datetime(2026, 11, 25, 8, tzinfo=UTC)


def test_backoff_doubles_from_one_second_and_caps_at_five_minutes() -> None:
    policy = DeliveryPolicy()
    assert [policy.backoff_s(n) for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert policy.backoff_s(9) == 256
    assert policy.backoff_s(10) == policy.backoff_s(10_000) == 300


def test_a_lease_must_outlast_the_timeout() -> None:
    with pytest.raises(ValueError, match="must be longer than the notify timeout"):
        DeliveryPolicy(timeout_s=10, lease_s=10)
    DeliveryPolicy(timeout_s=10, lease_s=11)


def test_a_notifier_may_carry_its_own_timeout() -> None:
    class Slow:
        name = "sms-0000"
        timeout_s = 30.0

        async def notify(self, payload: dict[str, Any]) -> None: ...

    class Plain:
        name = "webhook-0000"

        async def notify(self, payload: dict[str, Any]) -> None: ...

    policy = DeliveryPolicy(timeout_s=10, lease_s=60)
    assert policy.timeout_for(Slow()) == 30.0
    assert policy.timeout_for(Plain()) == 10.0
    assert DeliveryPolicy(timeout_s=10, lease_s=20).timeout_for(Slow()) == 18.0  # below the lease


def test_dispatcher_ids_differ_per_process_start() -> None:
    assert dispatcher_id() != dispatcher_id()


def note(**kw: Any) -> dict[str, Any]:
    base = {
        "id": 7,
        "alert_id": 3,
        "rule": "shortage",
        "circle_id": "C03",
        "necessity": "rice",
        "severity": "critical",
        "receiver": "wecom-1a2b3c4d",
        "status": "firing",
        "state": "queued",
        "created_at": T,
        "attempts": 0,
        "next_attempt_at": T,
        "delivered_at": None,
        "expired_at": None,
        "last_error": None,
        "lease_owner": None,
        "leased_until": None,
    }
    return base | kw


def test_the_log_says_where_each_notification_stands() -> None:
    assert outcome(note()) == "queued"
    assert outcome(note(state="delivered", delivered_at=T, attempts=1)) == "delivered 2026-11-25 08:00:00 (1 attempt)"
    assert outcome(note(attempts=2, last_error="HTTP 503")) == (
        "queued, retry at 2026-11-25 08:00:00 (2 attempts); last error: HTTP 503"
    )
    assert outcome(note(attempts=1, lease_owner="host:42:abc", leased_until=T)).startswith("sending by host:42:abc")
    assert outcome(note(state="expired", expired_at=T, attempts=9, last_error="ConnectError")) == (
        "EXPIRED 2026-11-25 08:00:00 (9 attempts); last error: ConnectError"
    )
    assert "never attempted" in outcome(note(state="expired", expired_at=T))


def test_the_log_lists_attempts_under_their_notification() -> None:
    attempt = {
        "notification_id": 7,
        "attempt": 1,
        "dispatcher": "host:42:abc",
        "started_at": T,
        "finished_at": T,
        "outcome": "failed",
        "error": "HTTP 503",
    }
    text = render([Entry(note(attempts=1, last_error="HTTP 503"), (attempt,))])
    first, second = text.splitlines()
    assert "alert 3 shortage C03 rice (critical)" in first and "firing   -> wecom-1a2b3c4d" in first
    assert second.strip() == "#1 2026-11-25 08:00:00 failed by host:42:abc: HTTP 503"
    assert render([]) == "no notifications match"
