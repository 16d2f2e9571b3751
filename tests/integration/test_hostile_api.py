"""The supplier API against hostile and clumsy input, on real services (a uvicorn process, Kafka, PostgreSQL).

Every limit is tried with an input just under and just over it; no input may
get a 5xx, and what was accepted is never answered as an error.
"""

from __future__ import annotations

import io
import json
import socket
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest

from alerts.model import Condition
from alerts.rules import refusals
from alerts.rules.refusals import QUERIES
from ingest.key_admin import key_info, revoke_key, rotate_key
from schema.db import connect
from tests.integration.conftest import Api, start_api
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


# ---------------------------------------------------------------- limits, each just under and just over

LIMIT = 300_000  # the `hostile` fixture's body limit
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def hostile(configured_kafka: str, database_url: str, topic_prefix: str, tmp_path: Path) -> Iterator[Api]:
    """An API with small limits, so each is reached with small inputs."""
    limits = {
        "max_request_bytes": LIMIT,
        "body_timeout_s": 3,
        "header_timeout_s": 3,
        "max_header_bytes": 4096,
        "max_headers": 20,
        "xlsx_max_unpacked_bytes": 3_000_000,
        "xlsx_max_ratio": 50,
        "xlsx_max_rows": 101,
        "xlsx_max_columns": 8,
        "max_rejections_listed": 5,
        "rate_limit_per_s": 0.001,
        "rate_limit_burst": 1000,
    }
    with start_api(configured_kafka, database_url, topic_prefix, tmp_path / "api.log", **limits) as running:
        yield running


def padded_csv(size: int, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """A CSV of good records (notes padded) whose total with `prefix` and `suffix` is exactly `size` bytes."""
    row = f"O1,rice,100,kg,{now_sh()},".encode()
    out = b"outlet_id,necessity,quantity,unit,reported_at,note\n"
    left = size - len(prefix) - len(suffix) - len(out)
    while left > 0:
        note = min(1000, left - len(row) - 1)
        out += row + b"x" * note + b"\n"
        left -= len(row) + note + 1
    return out


def chunked(data: bytes, piece: int = 16_384) -> Iterator[bytes]:
    """The body as a generator: httpx sends it chunked, with no Content-Length."""
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def auth(api: Api, supplier: str = "s1") -> dict[str, str]:
    return {"Authorization": f"Bearer {api.keys[supplier].key}"}


def test_a_chunked_body_is_limited_as_it_streams(hostile: Api) -> None:
    headers = {**auth(hostile), "Content-Type": "text/csv"}
    under = httpx.post(hostile.url + "/v1/inventory", content=chunked(padded_csv(LIMIT)), headers=headers)
    assert under.status_code == 200, under.text
    over = httpx.post(hostile.url + "/v1/inventory", content=chunked(padded_csv(LIMIT + 1)), headers=headers)
    assert over.status_code == 413 and "limit" in over.json()["error"]


def test_a_chunked_multipart_upload_is_limited_as_it_streams(hostile: Api) -> None:
    boundary = "hostile-boundary"
    start = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="stock.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    end = f"\r\n--{boundary}--\r\n".encode()
    headers = {**auth(hostile), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    for size, status in ((LIMIT, 200), (LIMIT + 1, 413)):
        body = start + padded_csv(size, start, end) + end
        assert len(body) == size
        r = httpx.post(hostile.url + "/v1/inventory", content=chunked(body), headers=headers, timeout=30)
        assert r.status_code == status, r.text


def xlsx(rows: int, columns: int = 5) -> bytes:
    """A sheet of `rows` good records (header not counted) over `columns` columns (5 or more)."""
    at = now_sh()
    data = [["O1", "rice", str(100 + i), "kg", at] + ["n"] * (columns - 5) for i in range(rows)]
    names = ["outlet_id", "necessity", "quantity", "unit", "reported_at"] + [f"c{j}" for j in range(columns - 5)]
    out = io.BytesIO()
    pd.DataFrame(data, columns=names).to_excel(out, index=False)
    return out.getvalue()


def test_xlsx_rows_and_columns_are_checked_before_parsing(hostile: Api) -> None:
    headers = {**auth(hostile), "Content-Type": XLSX_TYPE}
    url = hostile.url + "/v1/inventory"
    assert httpx.post(url, content=xlsx(100), headers=headers, timeout=30).status_code == 200  # 101 rows
    rows = httpx.post(url, content=xlsx(101), headers=headers, timeout=30)
    assert rows.status_code == 413 and "more than 101 rows" in rows.json()["error"]
    assert httpx.post(url, content=xlsx(2, columns=8), headers=headers, timeout=30).status_code == 200
    wide = httpx.post(url, content=xlsx(2, columns=9), headers=headers, timeout=30)
    assert wide.status_code == 413 and "column 9" in wide.json()["error"]


def test_an_xlsx_bomb_is_refused_from_its_directory(hostile: Api) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"<worksheet>" + b" " * 2_900_000 + b"</worksheet>")
    r = httpx.post(
        hostile.url + "/v1/inventory", content=bomb.getvalue(), headers={**auth(hostile), "Content-Type": XLSX_TYPE}
    )
    assert r.status_code == 413 and "compressed" in r.json()["error"]
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"<worksheet>" + b" " * 3_000_000 + b"</worksheet>")
    files = {"file": ("stock.xlsx", big.getvalue(), XLSX_TYPE)}
    r = httpx.post(hostile.url + "/v1/inventory", files=files, headers=auth(hostile), timeout=30)
    assert r.status_code == 413, r.text  # over the body limit before anything is unpacked


def raw(api: Api, data: bytes, then: bytes = b"", pause_s: float = 0.0) -> bytes:
    """Send `data` (and `then` after `pause_s`) on a raw socket; everything the server answered until it closed."""
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(data)
        if then:
            time.sleep(pause_s)
            sock.sendall(then)
        answer = b""
        while chunk := sock.recv(65536):  # every request here ends with the server closing the connection
            answer += chunk
        return answer


def request_with_headers(api: Api, count: int, size: int) -> bytes:
    """GET /v1/rejections/x with exactly `count` headers whose request line and headers make `size` bytes."""
    line = b"GET /v1/rejections/x HTTP/1.1\r\n"
    names = [b"host", b"connection"] + [b"x-h%d" % i for i in range(count - 2)]
    values = [b"127.0.0.1", b"close"] + [b"v"] * (count - 2)
    used = len(b"/v1/rejections/x") + sum(len(n) + len(v) + 4 for n, v in zip(names, values, strict=True))
    values[-1] += b"v" * (size - used)
    return line + b"".join(n + b": " + v + b"\r\n" for n, v in zip(names, values, strict=True)) + b"\r\n"


def test_header_size_and_count_limits(hostile: Api) -> None:
    assert raw(hostile, request_with_headers(hostile, 20, 4096)).startswith(b"HTTP/1.1 401")
    assert raw(hostile, request_with_headers(hostile, 20, 4097)).startswith(b"HTTP/1.1 431")
    assert raw(hostile, request_with_headers(hostile, 21, 1000)).startswith(b"HTTP/1.1 431")


def test_slow_headers_and_slow_bodies_get_408(hostile: Api) -> None:
    partial = b"POST /v1/inventory HTTP/1.1\r\nHost: x\r\n"
    in_time = raw(hostile, partial, b"Connection: close\r\nContent-Length: 0\r\n\r\n", pause_s=0.1)
    assert in_time.startswith(b"HTTP/1.1 401")  # headers completed in time: answered (no key)
    assert raw(hostile, partial).startswith(b"HTTP/1.1 408")  # never completed: cut off
    key = hostile.keys["s1"].key.encode()
    head = (
        b"POST /v1/inventory HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + key + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{"
    )
    slow = raw(hostile, head)
    assert slow.startswith(b"HTTP/1.1 408") and b"not received within 3 s" in slow


def test_answers_are_bounded_and_the_full_list_is_downloadable(hostile: Api) -> None:
    def ndjson(bad: int) -> str:
        return "\n".join([json.dumps(rec(message_id=f"ok-{bad}"))] + [json.dumps(rec(unit="barrel"))] * bad)

    headers = {"Content-Type": "application/x-ndjson"}
    five = hostile.post("/v1/inventory", content=ndjson(5), headers=headers).json()
    assert len(five["rejected"]) == 5 and "rejected_count" not in five
    six = hostile.post("/v1/inventory", content=ndjson(6), headers=headers).json()
    assert len(six["rejected"]) == 5 and six["rejected_count"] == 6 and six["rejected_by_field"] == {"unit": 6}
    report = httpx.get(hostile.url + six["rejections_report"], headers=auth(hostile))
    assert report.status_code == 200 and [r["line"] for r in report.json()["rejected"]] == [2, 3, 4, 5, 6, 7]
    assert httpx.get(hostile.url + six["rejections_report"], headers=auth(hostile, "s2")).status_code == 404


def test_refusals_are_counted_per_key_in_metrics_and_feed_health(hostile: Api) -> None:
    prefix = hostile.keys["s2"].prefix
    hostile.post("/v1/inventory", supplier="s2", content=b"x" * (LIMIT + 1), headers={"Content-Type": "text/csv"})
    hostile.post("/v1/inventory", supplier="s2", json=[rec("O3", unit="barrel")])
    # Over the burst (1,000) from a bucket that is not full: throttled; then one record goes through.
    throttled = [rec("O3", message_id=f"t{i}") for i in range(1001)]
    assert hostile.post("/v1/inventory", supplier="s2", json=throttled).status_code == 429
    assert hostile.post("/v1/inventory", supplier="s2", json=[rec("O3")]).status_code == 200
    text = httpx.get(hostile.metrics_url + "/metrics").text
    for outcome, count in (("oversize", 1), ("rejected", 1), ("throttled", 1), ("ok", 1)):
        assert f'baogong_api_requests_total{{key="{prefix}",outcome="{outcome}",supplier="s2"}} {count}.0' in text

    def counted() -> dict[str, int] | None:
        with connect(hostile.database_url) as conn:
            rows = conn.execute(
                "SELECT outcome, sum(requests)::int AS n FROM feed_requests WHERE key_prefix = %s GROUP BY outcome",
                (prefix,),
            ).fetchall()
        found = {r["outcome"]: r["n"] for r in rows}
        return found if len(found) == 4 else None

    assert wait_for(counted, 20, "the refusals in feed_requests") == {
        "oversize": 1,
        "rejected": 1,
        "throttled": 1,
        "ok": 1,
    }
    with connect(hostile.database_url) as conn:
        rows = conn.execute(QUERIES["refused_requests"], {"window": 10}).fetchall()
    row = next(r for r in rows if r["key_prefix"] == prefix)
    assert (row["requests"], row["refused"], row["oversize"], row["throttled"]) == (4, 3, 1, 1)
    verdict = refusals.evaluate(dict(row), ratio=0.5, min_refused=3, window_min=10)
    assert verdict.condition == Condition.ACTIVE and verdict.labels["key"] == prefix


# ---------------------------------------------------------------- revocation


def test_a_revoked_key_stops_within_a_second_and_a_grace_period_ends_on_time(api: Api) -> None:
    assert api.post("/v1/inventory", json=[rec(message_id="rv-1")]).status_code == 200
    revoke_key(api.database_url, api.keys["s1"].prefix)
    time.sleep(1.2)  # the key cache's time (key_cache_s, 1 s) and a margin
    assert api.post("/v1/inventory", json=[rec(message_id="rv-2")]).status_code == 401
    assert api.post("/v1/inventory", supplier="s2", json=[rec("O3", message_id="rv-3")]).status_code == 200
    # A grace long enough that the old key's next request lands inside it however busy the machine is.
    new = rotate_key(api.database_url, "s2", timedelta(seconds=8))
    old = key_info(api.database_url, api.keys["s2"].prefix)
    assert old is not None and old.revoked_at is not None
    assert api.post("/v1/inventory", supplier="s2", json=[rec("O3", message_id="rv-4")]).status_code == 200
    with connect(api.database_url) as conn:
        left = conn.execute("SELECT extract(epoch FROM %s - now())::float8 AS s", (old.revoked_at,)).fetchone()
    time.sleep(max(0.0, left["s"]) + 0.2)  # just past revoked_at
    assert api.post("/v1/inventory", supplier="s2", json=[rec("O3", message_id="rv-5")]).status_code == 401
    fresh = httpx.post(api.url + "/v1/inventory", json=[rec("O3", message_id="rv-6")], headers={"X-API-Key": new.key})
    assert fresh.status_code == 200


# ---------------------------------------------------------------- conversions checked on every path


def test_conversions_are_finite_and_positive_over_http_and_sku_maps(api: Api) -> None:
    r = api.post("/v1/inventory", json=[rec(qty=1e308, unit="t"), rec(unit="0kg"), rec(qty=0, message_id="zero")])
    out = r.json()
    assert r.status_code == 200 and out["accepted"] == 1  # zero stock is a quantity like any other
    assert sorted(x["field"] for x in out["rejected"]) == ["quantity", "unit"]
    skus = "sku,necessity,pack_quantity,pack_unit\nZ,rice,0,kg\nH,rice,1e308,t\nN,rice,nan,kg\nE,rice,1,0kg\n"
    skus += "OK,rice,5,kg\n"
    up = httpx.put(api.url + "/v1/skus", content=skus, headers={**auth(api), "Content-Type": "text/csv"})
    assert up.status_code == 200 and up.json()["upserted"] == 1
    assert [(x["line"], x["field"]) for x in up.json()["rejected"]] == [
        (2, "pack_quantity"),
        (3, "pack_unit"),
        (4, "pack_quantity"),
        (5, "pack_unit"),
    ]
    by_sku = api.post("/v1/inventory", json=[{**rec(qty=1e306, unit="bag"), "sku": "OK", "necessity": None}])
    assert by_sku.status_code == 422 and by_sku.json()["rejected"][0]["field"] == "quantity"
