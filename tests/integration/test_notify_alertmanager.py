"""Push to a real Alertmanager (Debian's prometheus-alertmanager) through its API v2.

Firing: Alertmanager lists the alert and its webhook receiver gets it. Resolved
(the same labels, endsAt in the past): it leaves the list and the receiver gets
the resolution. Alertmanager's own clock decides what is in the past, so
these payloads are dated from the real clock.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from alerts.model import Alert, Event
from alerts.notify import NotifyError, build, parse_channel
from alerts.notify.webhook import alertmanager_payload
from alerts.rules import shortage
from baogong.services.alertmanager import RunningAlertmanager
from tests.support import Receiver, wait_for

LINK = "https://baogong.example.org/alerts/7"


def shortage_payload(circle: str, event: Event, started: datetime, ended: datetime | None = None) -> dict[str, Any]:
    level = shortage.LevelView(
        circle, "北林区·长安社区生活圈", "rice", "大米", "kg", 2.4, 600.0, 250.0, 0.83, "SHORTAGE", 3.0, 1.0, 0.91, 3.2
    )
    verdict = shortage.evaluate(level, 0.2)
    alert = Alert(
        verdict.fingerprint,
        shortage.RULE,
        verdict.severity,
        "firing",
        verdict.labels,
        verdict.annotations,
        started,
        starts_at=started,
        ends_at=ended,
    )
    return alertmanager_payload(alert, event, "am", LINK)


def listed(am: RunningAlertmanager, circle: str) -> list[dict[str, Any]]:
    alerts = httpx.get(am.url + "/api/v2/alerts", params={"filter": f'circle="{circle}"'}, timeout=5).json()
    return [a for a in alerts if a["labels"].get("circle") == circle]


def received(receiver: Receiver, circle: str, status: str) -> list[dict[str, Any]]:
    return [
        a
        for body in list(receiver.bodies)
        for a in body.get("alerts", [])
        if a["labels"].get("circle") == circle and a["status"] == status
    ]


def test_a_shortage_fires_and_resolves_in_a_real_alertmanager(
    alertmanager: tuple[RunningAlertmanager, Receiver],
) -> None:
    am, receiver = alertmanager
    circle = f"T-{uuid.uuid4().hex[:8]}"  # this test's alerts, among whatever else the session posts
    started = datetime.now(UTC) - timedelta(minutes=5)

    async def push(payload: dict[str, Any]) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            await build(parse_channel({"kind": "alertmanager", "url": am.url}), client).notify(payload)

    asyncio.run(push(shortage_payload(circle, Event.FIRED, started)))
    (shown,) = wait_for(lambda: listed(am, circle), 10, "Alertmanager to list the alert", every_s=0.2)
    assert shown["labels"] == {"alertname": "SupplyShortage", "circle": circle, "necessity": "rice", "severity": "high"}
    assert shown["annotations"]["title"] == "【保供告警】北林区·长安社区生活圈 大米 供应紧张"
    assert shown["annotations"]["days_of_supply"] == "2.4" and shown["generatorURL"] == LINK
    assert shown["status"]["state"] == "active"
    (paged,) = wait_for(lambda: received(receiver, circle, "firing"), 15, "the receiver to get the firing alert")
    assert paged["annotations"]["trend"] == "-0.8"

    asyncio.run(push(shortage_payload(circle, Event.RESOLVED, started, ended=datetime.now(UTC) - timedelta(seconds=1))))
    wait_for(lambda: received(receiver, circle, "resolved"), 15, "the receiver to get the resolution")
    wait_for(lambda: not listed(am, circle), 10, "Alertmanager to drop the resolved alert", every_s=0.2)


def test_alertmanager_refusing_an_alert_is_not_recoverable_and_a_dead_one_is(
    alertmanager: tuple[RunningAlertmanager, Receiver],
) -> None:
    am, _ = alertmanager
    bad = shortage_payload("T-bad", Event.FIRED, datetime.now(UTC))
    bad["alerts"][0]["labels"] = {}  # Alertmanager requires at least one label

    async def push(url: str, payload: dict[str, Any]) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            await build(parse_channel({"kind": "alertmanager", "url": url}), client).notify(payload)

    with pytest.raises(NotifyError) as refused:
        asyncio.run(push(am.url, bad))
    assert not refused.value.recoverable and "HTTP 400" in str(refused.value)
    with pytest.raises(NotifyError) as down:
        asyncio.run(push("http://127.0.0.1:9", shortage_payload("T-down", Event.FIRED, datetime.now(UTC))))
    assert down.value.recoverable
