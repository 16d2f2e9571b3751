"""The supplier API against hostile and clumsy input, on real services (a uvicorn process, Kafka, PostgreSQL).

Every limit is tried with an input just under and just over it; no input may
get a 5xx, and what was accepted is never answered as an error.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.integration.conftest import Api
from tests.support import wait_for

SH = ZoneInfo("Asia/Shanghai")


def now_sh(minutes_ago: float = 1) -> str:
    return (datetime.now(SH) - timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")


def rec(outlet: str = "O1", necessity: str = "rice", qty: float = 100, unit: str = "kg", **kw: Any) -> dict[str, Any]:
    return {"outlet_id": outlet, "necessity": necessity, "quantity": qty, "unit": unit, "reported_at": now_sh(), **kw}


def price(outlet: str = "O1", unit: str = "kg", **kw: Any) -> dict[str, Any]:
    return {"outlet_id": outlet, "necessity": "rice", "price": 6.5, "unit": unit, "reported_at": now_sh(), **kw}


def nested(depth: int) -> str:
    """JSON text of a value nested `depth` levels deep (deeper than encoders in Python go)."""
    return '{"a": [' * depth + '"deep"' + "]}" * depth


def test_a_price_per_empty_pack_is_a_rejection_not_a_500(api: Api) -> None:
    r = api.post("/v1/prices", json=[price(unit="0kg"), price("O2", unit="5kg")])
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and r.json()["rejected"][0]["field"] == "unit"
    alone = api.post("/v1/prices", json=[price(unit="0kg")])
    assert alone.status_code == 422 and "positive" in alone.json()["rejected"][0]["reason"]


def test_a_deeply_nested_reject_is_answered_and_dead_lettered_truncated(api: Api) -> None:
    deep = json.dumps(rec(unit="barrel", message_id="deep-1", extra="X"))[:-1].replace('"X"', nested(200)) + "}"
    body = "[" + json.dumps(rec(message_id="good-1")) + ", " + deep + "]"
    first = api.post("/v1/inventory", content=body, headers={"Content-Type": "application/json"})
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 1 and len(first.json()["rejected"]) == 1
    # A retry: the good record is a duplicate, never an error.
    again = api.post("/v1/inventory", content=body, headers={"Content-Type": "application/json"})
    assert again.status_code == 200 and len(again.json()["duplicates"]) == 1
    letters = wait_for(
        lambda: [m for m in api.topic("supply.deadletter.v1") if m.get("payload_truncated")], 20, "the dead letter"
    )
    assert letters[0]["supplier_id"] == "s1" and isinstance(letters[0]["payload"], str)
    assert "deep-1" in letters[0]["payload"] and len(letters[0]["payload"]) <= 4096
