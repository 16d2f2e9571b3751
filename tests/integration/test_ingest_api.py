"""The supplier API on real services: a real uvicorn process, the configured Kafka, a fresh database.

Every acceptance and rejection path a supplier can hit, checked from the
outside: the HTTP answer, the messages on the supply topics, the dead letters.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest

from ingest.jsonschema import load_schema
from schema.db import connect
from tests.integration.conftest import Api, start_api
from tests.support import wait_for

SH = ZoneInfo("Asia/Shanghai")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def now_sh(minutes_ago: float = 1) -> str:
    return (datetime.now(SH) - timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")


def rec(outlet: str = "O1", necessity: str = "rice", qty: float = 100, unit: str = "kg", **kw: Any) -> dict[str, Any]:
    return {
        "outlet_id": outlet,
        "necessity": necessity,
        "quantity": qty,
        "unit": unit,
        "reported_at": kw.pop("reported_at", now_sh()),
        **kw,
    }


def test_json_array_is_grouped_into_one_report_per_outlet(api: Api) -> None:
    at = now_sh()
    body = [rec(reported_at=at), rec(necessity="flour", qty=40, unit="斤", reported_at=at), rec("O2", reported_at=at)]
    r = api.post("/v1/inventory", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "reports": 2, "duplicates": [], "rejected": []}
    messages = api.topic("supply.inventory.v1")
    by_outlet = {m["outlet_id"]: m for m in messages}
    assert set(by_outlet) == {"O1", "O2"} and len(messages) == 2
    lines = {ln["necessity"]: ln for ln in by_outlet["O1"]["lines"]}
    assert lines["flour"]["quantity"] == 20 and lines["flour"]["unit"] == "kg"
    assert by_outlet["O1"]["supplier_id"] == "s1"


def test_ndjson_rejects_name_the_line(api: Api) -> None:
    body = "\n".join([json.dumps(rec()), "{not json", json.dumps(rec(qty=-5)), "", json.dumps(rec("O2"))])
    r = api.post("/v1/inventory", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200
    out = r.json()
    assert out["accepted"] == 2
    assert sorted((x["line"], x["field"]) for x in out["rejected"]) == [(2, "record"), (3, "quantity")]


def test_csv_rows_are_validated_one_by_one(api: Api) -> None:
    at = now_sh()
    csv = (
        "outlet_id,necessity,quantity,unit,reported_at,sold_24h\n"
        f"O1,rice,120,kg,{at},30\n"
        f"O1,caviar,1,kg,{at},\n"
        f"O2,eggs,50,barrel,{at},\n"
        f"O2,milk,24,L,{at},\n"
    )
    r = api.post("/v1/inventory", content=csv, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == 2
    assert [(x["line"], x["field"]) for x in out["rejected"]] == [(3, "necessity"), (4, "unit")]
    assert "caviar" in out["rejected"][0]["reason"] and "barrel" in out["rejected"][1]["reason"]


def _xlsx(rows: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    pd.DataFrame(rows).to_excel(buf, index=False)
    return buf.getvalue()


def test_xlsx_body_and_multipart_upload(api: Api) -> None:
    data = _xlsx([rec(qty=10), rec("O2", qty=20), rec("O3", qty=30)])
    r = api.post("/v1/inventory", content=data, headers={"Content-Type": XLSX})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    assert r.json()["rejected"][0] == {
        "index": 2,
        "line": 4,
        "field": "outlet_id",
        "code": "forbidden",
        "outlet_id": "O3",
        "reason": "outlet 'O3' belongs to another supplier",
    }
    r = api.post("/v1/inventory", files={"file": ("stock.xlsx", _xlsx([rec(qty=11, necessity="salt")]))})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1


def test_prices_go_to_the_price_topic_in_canonical_units(api: Api) -> None:
    body = [{"outlet_id": "O1", "necessity": "pork", "price": 14.5, "unit": "斤", "reported_at": now_sh()}]
    r = api.post("/v1/prices", json=body)
    assert r.status_code == 200, r.text
    (message,) = api.topic("supply.prices.v1")
    assert message["kind"] == "price" and message["lines"][0]["price"] == 29.0 and message["lines"][0]["unit"] == "kg"


def test_a_repeated_record_is_a_duplicate_on_retry(api: Api) -> None:
    body = [rec(message_id="erp-1"), rec("O2")]
    assert api.post("/v1/inventory", json=body).json()["accepted"] == 2
    again = api.post("/v1/inventory", json=[*body, rec("O2", qty=1, reported_at=body[1]["reported_at"])])
    assert again.status_code == 200
    out = again.json()
    assert out["accepted"] == 0 and [d["index"] for d in out["duplicates"]] == [0, 1, 2]
    assert "erp-1" in out["duplicates"][0]["reason"]
    assert len(api.topic("supply.inventory.v1")) == 2  # published once


def test_a_retry_with_new_lines_for_the_same_report_accepts_only_the_new_ones(api: Api) -> None:
    at = now_sh()
    first = api.post("/v1/inventory", json=[rec(reported_at=at), rec(necessity="milk", unit="L", reported_at=at)])
    assert first.json()["accepted"] == 2
    again = [
        rec(reported_at=at),
        rec(necessity="flour", reported_at=at),
        rec(necessity="milk", unit="L", reported_at=at),
    ]
    out = api.post("/v1/inventory", json=again).json()
    assert out["accepted"] == 1 and [d["index"] for d in out["duplicates"]] == [0, 2]
    third = api.post("/v1/inventory", json=[*again, rec(necessity="salt", reported_at=at)]).json()
    assert third["accepted"] == 1 and len(third["duplicates"]) == 3
    lines = [ln["necessity"] for m in api.topic("supply.inventory.v1") for ln in m["lines"]]
    assert sorted(lines) == ["flour", "milk", "rice", "salt"]  # each published exactly once


def test_the_same_batch_sent_concurrently_is_accepted_once(api: Api) -> None:
    at = now_sh()
    body = [rec(o, n, reported_at=at, message_id=f"c-{o}-{n}") for o in ("O1", "O2") for n in ("rice", "flour", "salt")]

    def send(_: int) -> dict[str, Any]:
        answer = api.post("/v1/inventory", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    assert sum(a["accepted"] for a in answers) == len(body)
    assert sum(len(a["duplicates"]) for a in answers) == 7 * len(body)
    lines = [ln["message_id"] for m in api.topic("supply.inventory.v1") for ln in m["lines"]]
    assert sorted(lines) == sorted(r["message_id"] for r in body)


def test_another_suppliers_outlet_is_forbidden_but_neighbours_pass(api: Api) -> None:
    r = api.post("/v1/inventory", json=[rec("O1"), rec("O3")])
    assert r.status_code == 200
    assert r.json()["rejected"][0]["code"] == "forbidden" and r.json()["rejected"][0]["outlet_id"] == "O3"
    only = api.post("/v1/inventory", json=[rec("O3")])
    assert only.status_code == 403
    assert "does not own" in only.json()["error"]


def test_whole_request_errors(api: Api) -> None:
    assert httpx.post(api.url + "/v1/inventory", json=[rec()]).status_code == 401
    bad_key = api.post("/v1/inventory", json=[rec()], headers={"Authorization": "Bearer bg_deadbeef_nope"})
    assert bad_key.status_code == 401 and "unknown or revoked" in bad_key.json()["error"]
    assert (
        "not valid JSON"
        in api.post("/v1/inventory", content=b"{oops", headers={"Content-Type": "application/json"}).json()["error"]
    )
    assert api.post("/v1/inventory", content=b"  ", headers={"Content-Type": "application/json"}).status_code == 400
    wrong = api.post("/v1/inventory", content=b"hello", headers={"Content-Type": "text/plain"})
    assert wrong.status_code == 400 and "unsupported content type" in wrong.json()["error"]
    invalid = api.post("/v1/inventory", json=[rec(qty="many")])
    assert invalid.status_code == 422 and invalid.json()["rejected"][0]["field"] == "quantity"


def test_body_over_the_limit_is_413(api: Api) -> None:
    big = [rec(message_id=f"m{i}") for i in range(3000)]  # ~400 kB > 300 kB
    r = api.post("/v1/inventory", json=big)
    assert r.status_code == 413 and "split" in r.json()["error"]


@pytest.fixture
def strict_api(configured_kafka: str, database_url: str, topic_prefix: str, tmp_path: Path) -> Iterator[Api]:
    """An API whose buckets hold 100 records and refill at one record every 1,000 s.

    The shared `api` fixture refills 1,000 records a second, so whether a request
    was refused depended on how fast the machine sent the ones before it (a
    loaded machine refilled the bucket between requests and never saw a 429).
    Here refill is negligible for any test run: what is refused depends only on
    what was sent.
    """
    limits = {"rate_limit_per_s": 0.001, "rate_limit_burst": 100}
    with start_api(configured_kafka, database_url, topic_prefix, tmp_path / "api.log", **limits) as running:
        yield running


def test_rate_limit_is_429_with_retry_after(strict_api: Api) -> None:
    api, at = strict_api, now_sh()

    def body(outlet: str, n: int, tag: str) -> list[dict[str, Any]]:
        return [rec(outlet, qty=i, reported_at=at, message_id=f"{tag}{i}") for i in range(n)]

    assert api.post("/v1/inventory", supplier="s2", json=body("O3", 100, "full")).status_code == 200  # the burst
    limited = api.post("/v1/inventory", supplier="s2", json=body("O3", 1, "over"))
    assert limited.status_code == 429, limited.text
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 1000 and f"retry after {retry_after} s" in limited.json()["error"]
    # A batch bigger than the burst goes through from a full bucket (s1's, untouched by s2) and leaves a debt.
    assert api.post("/v1/inventory", supplier="s1", json=body("O1", 150, "big")).status_code == 200
    in_debt = api.post("/v1/inventory", supplier="s1", json=body("O1", 1, "debt"))
    assert in_debt.status_code == 429 and int(in_debt.headers["Retry-After"]) > retry_after
    sent = {ln["message_id"] for m in api.topic("supply.inventory.v1") for ln in m["lines"]}
    assert len(sent) == 250 and not sent & {"over0", "debt0"}  # a refused request published nothing


def test_rejects_are_dead_lettered_with_payload_and_supplier(api: Api) -> None:
    bad = rec(unit="barrel", message_id="bad-1")
    api.post("/v1/inventory", json=[rec(), bad])
    letters = wait_for(lambda: api.topic("supply.deadletter.v1"), 20, "the dead letter")
    assert letters[0]["supplier_id"] == "s1" and letters[0]["field"] == "unit"
    assert letters[0]["payload"] == bad and letters[0]["source"] == "http"


def test_feed_health_counts_what_the_api_answered(api: Api) -> None:
    body = [rec(message_id="fh-1"), rec("O2", message_id="fh-2"), rec(unit="barrel"), rec("O3")]
    first = api.post("/v1/inventory", json=body)
    assert first.json()["accepted"] == 2 and len(first.json()["rejected"]) == 2
    assert len(api.post("/v1/inventory", json=body[:1]).json()["duplicates"]) == 1

    def counted() -> dict[str, Any] | None:
        with connect(api.database_url) as conn:
            row = conn.execute(
                "SELECT sum(accepted) AS accepted, sum(rejected) AS rejected, sum(duplicates) AS duplicates, "
                "sum(dead_lettered) AS dead_lettered FROM feed_health WHERE supplier_id = 's1' AND source = 'http'"
            ).fetchone()
        return row if row and row["duplicates"] == 1 else None  # both requests written (once a second)

    row = wait_for(counted, 20, "the API's feed health in the database")
    assert row == {"accepted": 2, "rejected": 2, "duplicates": 1, "dead_lettered": 2}


def test_sku_map_upload_then_records_by_sku(api: Api) -> None:
    skus = "sku,necessity,pack_quantity,pack_unit,description\nR5,rice,5,kg,5 kg bag\nW12,bottled_water,1,12x550ml,\n"
    skus += "X,caviar,1,kg,\n"
    up = httpx.put(
        api.url + "/v1/skus", content=skus, headers={"Content-Type": "text/csv", "X-API-Key": api.keys["s1"].key}
    )
    assert up.status_code == 200, up.text
    assert up.json()["upserted"] == 2 and up.json()["rejected"][0]["line"] == 4
    body = [
        {"outlet_id": "O1", "sku": "R5", "quantity": 10, "unit": "bag", "reported_at": now_sh()},
        {"outlet_id": "O1", "sku": "W12", "quantity": 2, "unit": "case", "reported_at": now_sh()},
        {"outlet_id": "O1", "sku": "ZZZ", "quantity": 2, "unit": "case", "reported_at": now_sh()},
    ]
    r = api.post("/v1/inventory", json=body)
    assert r.json()["accepted"] == 2 and r.json()["rejected"][0]["field"] == "sku"
    lines = {ln["necessity"]: ln["quantity"] for m in api.topic("supply.inventory.v1") for ln in m["lines"]}
    assert lines["rice"] == 50 and lines["bottled_water"] == pytest.approx(13.2)


def test_time_window_rejections(api: Api) -> None:
    future = rec(reported_at=(datetime.now(SH) + timedelta(hours=1)).isoformat())
    ancient = rec(reported_at="2020-01-01T08:00:00+08:00")
    out = api.post("/v1/inventory", json=[future, ancient]).json()
    assert [x["field"] for x in out["rejected"]] == ["reported_at", "reported_at"]
    assert "future" in out["rejected"][0]["reason"] and "retention" in out["rejected"][1]["reason"]


def test_schema_and_docs_are_served(api: Api) -> None:
    served = httpx.get(api.url + "/v1/schema/inventory-record.json").json()
    assert served == load_schema("inventory-record") and "quantity" in served["properties"]
    assert httpx.get(api.url + "/docs").status_code == 200
    spec = httpx.get(api.url + "/openapi.json").json()
    content = spec["paths"]["/v1/inventory"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv", "application/x-ndjson", "multipart/form-data"} <= set(content)


def test_no_key_or_password_in_the_log(api: Api) -> None:
    api.post("/v1/inventory", json=[rec()])
    api.post("/v1/inventory", json=[rec()], headers={"Authorization": "Bearer bg_deadbeef_wrongsecret"})
    log = api.log.read_text(errors="replace")
    assert api.keys["s1"].key not in log and "wrongsecret" not in log
    secret = api.keys["s1"].key.split("_", 2)[2]  # bg_<prefix>_<secret>; the secret may itself hold "_"
    assert secret not in log
