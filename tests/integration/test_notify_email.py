"""E-mail against aiosmtpd, a real SMTP server: both MIME parts, the Chinese subject, auth and failures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from alerts.model import Alert, Event
from alerts.notify import NotifyError, build, parse_channel
from alerts.notify.webhook import alertmanager_payload
from alerts.rules import shortage
from tests.support import free_port

T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
LINK = "https://baogong.example.org/alerts/7"
TITLE = "【保供告警】北林区·长安社区生活圈 大米 供应紧张"


class Mailbox:
    """aiosmtpd handler: keeps every message; `refuse_rcpt`/`defer_data` make it answer like a real server."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse_rcpt: str | None = None
        self.defer_data = False

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, _: Any) -> str:
        if address == self.refuse_rcpt:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.defer_data:
            return "451 4.3.0 try again later"
        self.envelopes.append(envelope)
        return "250 OK"


def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alerts", b"pa55")
    return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=authenticate, auth_require_tls=False)
    controller.start()
    yield box, port
    controller.stop()


def payload() -> dict[str, Any]:
    level = shortage.LevelView(
        "C03", "北林区·长安社区生活圈", "rice", "大米", "kg", 2.4, 600, 250, 0.83, "SHORTAGE", 3.0, 1.0, 0.91, 3.2
    )
    v = shortage.evaluate(level, 0.2)
    alert = Alert(v.fingerprint, shortage.RULE, v.severity, "firing", v.labels, v.annotations, T0, starts_at=T0)
    return alertmanager_payload(alert, Event.FIRED, "team-c03", LINK)


def send(channel: dict[str, Any]) -> None:
    async def run() -> None:
        async with httpx.AsyncClient() as client:
            await build(parse_channel(channel), client).notify(payload())

    asyncio.run(run())


def failure(channel: dict[str, Any]) -> NotifyError:
    with pytest.raises(NotifyError) as err:
        send(channel)
    return err.value


def channel(port: int, **kw: Any) -> dict[str, Any]:
    return {
        "kind": "email",
        "host": "127.0.0.1",
        "port": port,
        "sender": "保供平台 <alerts@baogong.example.org>",
        "to": ["c03-team@example.org", "owner@example.org"],
        "timeout_s": 5,
        **kw,
    }


def test_the_team_gets_text_and_html_with_a_chinese_subject(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    send(channel(port, username="alerts", password="pa55"))
    (envelope,) = box.envelopes
    assert envelope.mail_from == "alerts@baogong.example.org"
    assert envelope.rcpt_tos == ["c03-team@example.org", "owner@example.org"]
    raw = envelope.original_content or b""
    subject = next(line for line in raw.splitlines() if line.startswith(b"Subject:"))
    assert subject.isascii() and b"=?utf-8?" in subject  # RFC 2047, readable by any mail client
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["Subject"] == TITLE and mail["To"] == "c03-team@example.org, owner@example.org"
    assert mail.get_content_type() == "multipart/alternative"
    plain, rich = mail.get_body(("plain",)), mail.get_body(("html",))
    assert plain is not None and rich is not None
    assert plain.get_content_charset() == "utf-8" and rich.get_content_charset() == "utf-8"
    text = plain.get_content()
    assert text.startswith(TITLE) and "可供天数：2.4 天（紧张线 3 天）" in text and f"处置：{LINK}" in text
    page = rich.get_content()
    assert "<td>网点 83%，库存 91%</td>" in page and f'<a href="{LINK}">' in page


def test_smtp_failures_say_whether_to_retry(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    bad_login = failure(channel(port, username="alerts", password="wrong"))
    assert not bad_login.recoverable and "535" in str(bad_login) and "wrong" not in str(bad_login)
    assert not failure(channel(port, starttls=True)).recoverable  # the server offers no STARTTLS

    box.defer_data = True
    assert failure(channel(port)).recoverable  # 451: try again later
    box.defer_data = False

    box.refuse_rcpt = "owner@example.org"
    send(channel(port))  # one of two refused: delivered to the other, not retried (no duplicate)
    assert box.envelopes[-1].rcpt_tos == ["c03-team@example.org"]
    assert not failure(channel(port, to=["owner@example.org"])).recoverable  # 550 for everyone

    assert failure(channel(free_port())).recoverable  # nobody listening: the server is down
