"""HTTP channels against real local servers standing in for WeCom, DingTalk, an SMS gateway and a webhook.

Each stand-in is an HTTP server on a socket that checks what the real service
checks (the DingTalk one verifies the signature with the robot's secret and
the timestamp against its own clock) and answers as the real service does:
HTTP 200 with an `errcode`. Failures are classified: 5xx, timeouts and rate
limits are recoverable; 4xx and invalid keys are not.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from alerts.model import Alert, Event
from alerts.notify import NotifyError, build, parse_channel
from alerts.notify.webhook import alertmanager_payload
from alerts.rules import shortage

T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
LINK = "https://baogong.example.org/alerts/7"
TITLE = "【保供告警】北林区·长安社区生活圈 大米、食用油 供应严重紧张"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[Request], tuple[int, Any]]


class StandIn:
    """A real HTTP server on 127.0.0.1 that records each request and answers with `answer(request)`."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request(self.command, parts.path, parse_qs(parts.query), headers, body)
                outer.requests.append(request)
                status, answer = outer.answer(request)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the hanging robot)

            do_POST = do_GET = do_PUT = _handle

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn(lambda _: (200, {"errcode": 0, "errmsg": "ok"}))
    yield server
    server.close()


def payload() -> dict[str, Any]:
    """One message for the C03 team listing two shortages (rice short, cooking oil critical)."""
    bodies = []
    for necessity, name, days in (("rice", "大米", 2.4), ("oil", "食用油", 0.8)):
        level = shortage.LevelView(
            "C03", "北林区·长安社区生活圈", necessity, name, "kg", days, 600, 250, 0.83, "SHORTAGE", 3.0, 1.0, 0.91, 3.2
        )
        v = shortage.evaluate(level, 0.2)
        alert = Alert(v.fingerprint, shortage.RULE, v.severity, "firing", v.labels, v.annotations, T0, starts_at=T0)
        bodies.append(alertmanager_payload(alert, Event.FIRED, "team-c03", LINK))
    out = bodies[0]
    out["alerts"] = [b["alerts"][0] for b in bodies]
    return out


def send(channel: dict[str, Any], body: dict[str, Any] | None = None, timeout_s: float = 5.0, **kw: Any) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            await build(parse_channel(channel), client, **kw).notify(body or payload())

    asyncio.run(run())


def failure(channel: dict[str, Any], **kw: Any) -> NotifyError:
    with pytest.raises(NotifyError) as err:
        send(channel, **kw)
    return err.value


def test_wecom_robot_gets_markdown_and_its_errcode_decides_retry(stand_in: StandIn) -> None:
    key = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
    channel = {"kind": "wecom", "url": f"{stand_in.base}/cgi-bin/webhook/send?key={key}"}
    send(channel)
    (req,) = stand_in.requests
    assert req.method == "POST" and req.path == "/cgi-bin/webhook/send" and req.query == {"key": [key]}
    assert req.headers["content-type"] == "application/json"
    body = req.json()
    assert set(body) == {"msgtype", "markdown"} and body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert TITLE in content and "**1. 大米 供应紧张**" in content and "**2. 食用油 供应严重紧张**" in content
    assert "> 可供天数：0.8 天（紧张线 3 天）" in content and "> 趋势：近 60 分钟 ↓2.4 天（3.2 → 0.8）" in content
    assert content.endswith(f"[打开处置页面]({LINK})") and len(content.encode()) <= 4096

    for answer, recoverable in (
        ((200, {"errcode": 45009, "errmsg": "api freq out of limit"}), True),
        ((200, {"errcode": -1, "errmsg": "system busy"}), True),
        ((200, {"errcode": 93000, "errmsg": "invalid webhook url, hint: [1], from ip: 1.2.3.4"}), False),
        ((502, b"bad gateway"), True),
        ((404, b"not found"), False),
        ((200, b"<html>portal</html>"), True),
    ):
        stand_in.answer = lambda _, a=answer: a  # type: ignore[misc]
        err = failure(channel)
        assert err.recoverable is recoverable, (answer, err)
        assert key not in str(err) and err.__class__ is NotifyError


def dingtalk_robot(secret: str) -> Answer:
    """DingTalk's checks: a timestamp within an hour of its clock and the HMAC-SHA256 signature."""

    def answer(req: Request) -> tuple[int, Any]:
        try:
            ts = req.query["timestamp"][0]
            sign = base64.b64decode(req.query["sign"][0])
        except (KeyError, ValueError):
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
        expected = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
        if abs(int(ts) / 1000 - time.time()) > 3600 or not hmac.compare_digest(sign, expected):
            return 200, {"errcode": 310000, "errmsg": "sign not match, more: [ts or sign]"}
        return 200, {"errcode": 0, "errmsg": "ok"}

    return answer


def test_dingtalk_robot_verifies_the_signature_and_gets_markdown(stand_in: StandIn) -> None:
    secret = "SEC7c1f6a2b9d0e4f8a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8"  # base64 of it has + and /
    stand_in.answer = dingtalk_robot(secret)
    url = f"{stand_in.base}/robot/send?access_token=t0k3n"
    channel = {"kind": "dingtalk", "url": url, "secret": secret, "at_mobiles": ["13800000001"]}
    for _ in range(5):  # several timestamps: signatures with '+', '/' and '=' all arrive intact
        send(channel)
        time.sleep(0.003)
    req = stand_in.requests[0]
    assert req.path == "/robot/send" and req.query["access_token"] == ["t0k3n"]
    body = req.json()
    assert body["msgtype"] == "markdown" and body["markdown"]["title"] == TITLE
    text = body["markdown"]["text"]
    assert (
        text.startswith(f"### {TITLE}") and "- 数据覆盖：网点 83%，库存 91%" in text and text.endswith("@13800000001")
    )
    assert body["at"] == {"atMobiles": ["13800000001"], "isAtAll": False}

    wrong = failure({**channel, "secret": secret + "x"})
    assert not wrong.recoverable and "310000" in str(wrong) and secret not in str(wrong)
    skewed = failure(channel, clock=lambda: time.time() - 7200)  # a clock two hours off: DingTalk refuses
    assert not skewed.recoverable and "310000" in str(skewed)
    stand_in.answer = lambda _: (200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
    assert failure(channel).recoverable
    stand_in.answer = lambda _: (200, {"errcode": 300005, "errmsg": "token is not exist"})
    assert not failure(channel).recoverable


def test_sms_gateway_gets_one_short_text_per_phone_and_a_retry_texts_only_who_missed_it(stand_in: StandIn) -> None:
    phones = ["13800000001", "13900000002"]
    missing = {"13900000002"}

    def gateway(req: Request) -> tuple[int, Any]:
        if req.headers.get("authorization") != "Bearer k3y":
            return 401, {"code": "UNAUTHORIZED"}
        phone = req.json()["phone"]
        if phone in missing:
            missing.discard(phone)
            return 503, {"code": "BUSY"}
        return 200, {"code": 0, "requestId": "r1"}

    stand_in.answer = gateway
    channel = {
        "kind": "sms",
        "url": f"{stand_in.base}/sms/send?apikey=s3cr3t",
        "phones": phones,
        "headers": {"Authorization": "Bearer k3y"},
        "ok_field": "code",
        "ok_value": "0",
        "retry_values": ["LIMIT"],
    }

    async def twice() -> tuple[NotifyError | None, list[Request]]:
        async with httpx.AsyncClient(timeout=5) as client:
            notifier = build(parse_channel(channel), client)
            first: NotifyError | None = None
            try:
                await notifier.notify(payload())
            except NotifyError as exc:
                first = exc
            done = list(stand_in.requests)
            await notifier.notify(payload())  # the dispatcher's retry
            return first, done

    first, after_first = asyncio.run(twice())
    assert first is not None and first.recoverable and "1 of 2 phones failed" in str(first)
    assert "s3cr3t" not in str(first) and "k3y" not in str(first)
    assert sorted(r.json()["phone"] for r in after_first) == phones
    retried = stand_in.requests[len(after_first) :]
    assert [r.json()["phone"] for r in retried] == ["13900000002"]
    for req in stand_in.requests:
        assert req.path == "/sms/send" and req.query == {"apikey": ["s3cr3t"]}
        text = req.json()["text"]
        assert len(text) <= 70 and text.startswith(TITLE) and "大米2.4天" in text

    stand_in.answer = lambda _: (200, {"code": "LIMIT"})
    assert failure(channel).recoverable
    stand_in.answer = lambda _: (200, {"code": "BAD_TEMPLATE"})
    assert not failure(channel).recoverable
    stand_in.answer = lambda _: (400, {"code": "BAD_PHONE"})
    assert not failure(channel).recoverable


def test_sms_gateway_by_get_with_the_text_in_the_url(stand_in: StandIn) -> None:
    stand_in.answer = lambda _: (200, b"OK")
    send(
        {
            "kind": "sms",
            "method": "GET",
            "url": f"{stand_in.base}/send?to={{phone}}&msg={{text}}",
            "phones": ["+8613800000001"],
            "max_chars": 200,
        }
    )
    (req,) = stand_in.requests
    assert req.method == "GET" and req.body == b"" and req.query["to"] == ["+8613800000001"]
    assert req.query["msg"][0].startswith(TITLE) and req.query["msg"][0].endswith(LINK)


def test_webhook_gets_the_payload_as_is(stand_in: StandIn) -> None:
    body = payload()
    send({"kind": "webhook", "url": f"{stand_in.base}/hook"}, body)
    assert stand_in.requests[0].json() == body
    stand_in.answer = lambda _: (500, b"")
    assert failure({"kind": "webhook", "url": f"{stand_in.base}/hook"}).recoverable
    stand_in.answer = lambda _: (410, b"")
    assert not failure({"kind": "webhook", "url": f"{stand_in.base}/hook"}).recoverable


def test_a_robot_that_hangs_times_out_recoverably(stand_in: StandIn) -> None:
    release = threading.Event()

    def hang(_: Request) -> tuple[int, Any]:
        release.wait(10)
        return 200, {"errcode": 0}

    stand_in.answer = hang
    began = time.monotonic()
    try:
        err = failure({"kind": "wecom", "url": f"{stand_in.base}/cgi-bin/webhook/send?key=k"}, timeout_s=0.5)
    finally:
        release.set()
    assert err.recoverable and "Timeout" in str(err)
    assert time.monotonic() - began < 3
