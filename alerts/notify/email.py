"""E-mail over SMTP: one message per payload, plain text with an HTML alternative.

`multipart/alternative` with `text/plain` and `text/html` parts in UTF-8; the
Chinese subject is RFC 2047 encoded (`=?utf-8?b?…?=`). Sent with aiosmtplib,
natively async: a hung SMTP server costs one awaiting task, bounded by
`timeout_s` and cancellable, never a thread (smtplib in `asyncio.to_thread`
would hold a default-executor thread per hung server, and that executor also
does the event loop's DNS lookups, so one dead mail server could stall every
other channel's delivery).

Failures: connection refused, timeouts, disconnects and 4xx replies are
recoverable; 5xx replies (535 bad credentials, 550 no such mailbox), a server
without the STARTTLS/AUTH the settings ask for, and an untrusted certificate
are not. When the server refuses some recipients but accepts others, the
message is delivered (retrying would duplicate it for the others) and the
refusal is logged with the count only.

Settings (`EmailConfig`): `host`, `port` (25; 587 for STARTTLS; 465 for
implicit TLS), `sender` (the From: address), `to` (one or more addresses),
`starttls`, `tls`, `username`, `password` (secret), `timeout_s`.
"""

from __future__ import annotations

import logging
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any, Literal

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from alerts.notify import templates
from alerts.notify.base import NotifyError, channel_name

log = logging.getLogger(__name__)


class EmailConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["email"] = "email"
    host: str = Field(min_length=1)
    port: int = Field(25, ge=1, le=65535)
    sender: str
    to: tuple[str, ...] = Field(min_length=1)
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = Field(10.0, gt=0)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if "@" not in parseaddr(value)[1]:
            raise ValueError("must be an e-mail address, e.g. 'Baogong <alerts@example.org>'")
        return value

    @field_validator("to")
    @classmethod
    def _to(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any("@" not in parseaddr(a)[1] for a in value):
            raise ValueError("every recipient must be an e-mail address")
        return value

    @model_validator(mode="after")
    def _tls(self) -> EmailConfig:
        if self.starttls and self.tls:
            raise ValueError("starttls and tls exclude each other (STARTTLS on 587, implicit TLS on 465)")
        if self.password is not None and not self.username:
            raise ValueError("a password needs a username")
        return self


def compose(payload: dict[str, Any], sender: str, to: tuple[str, ...]) -> EmailMessage:
    """The e-mail for a payload (pure): subject = the message title, text and HTML bodies."""
    msg = templates.message(payload)
    mail = EmailMessage()
    mail["Subject"] = msg.title
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to alerts
    mail.set_content(templates.plain_text(msg), charset="utf-8")
    mail.add_alternative(templates.html_text(msg), subtype="html", charset="utf-8")
    return mail


class EmailNotifier:
    def __init__(self, config: EmailConfig) -> None:
        self._config = config
        self.name = channel_name("email", f"{config.host}:{config.port}", *sorted(config.to))

    async def notify(self, payload: dict[str, Any]) -> None:
        c = self._config
        mail = compose(payload, c.sender, c.to)
        try:
            refused, _ = await aiosmtplib.send(
                mail,
                sender=parseaddr(c.sender)[1],
                recipients=[parseaddr(a)[1] for a in c.to],
                hostname=c.host,
                port=c.port,
                use_tls=c.tls,
                start_tls=c.starttls,
                username=c.username,
                password=c.password.get_secret_value() if c.password else None,
                timeout=c.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise classify(self.name, exc) from exc
        if refused:
            log.warning("%s: %d of %d recipients refused the alert e-mail", self.name, len(refused), len(c.to))


def classify(name: str, exc: BaseException) -> NotifyError:
    """What a failed send means for a retry (see the module docstring)."""
    what = type(exc).__name__
    if type(exc) is aiosmtplib.SMTPException or isinstance(
        exc, aiosmtplib.SMTPNotSupported | ssl.SSLCertVerificationError
    ):  # the plain SMTPException: no STARTTLS or AUTH where the settings ask for it
        return NotifyError(f"{name}: {what}: {str(exc)[:80]}", recoverable=False)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return NotifyError(f"{name}: recipients refused ({codes})", recoverable=all(400 <= c < 500 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return NotifyError(f"{name}: {what} {exc.code}", recoverable=400 <= exc.code < 500)
    return NotifyError(f"{name}: {what}", recoverable=True)
