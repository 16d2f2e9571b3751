"""Signed, expiring links that act on one alert (pure: no I/O, no clock of its own).

A page carries a link such as `https://baogong.example/a/42.ack.1767225600.<sig>`:
opening it shows a confirmation page (a GET never acts, so chat apps and
mail scanners that prefetch links acknowledge nothing); the button on that
page POSTs to the same URL, which performs the action.

A token is `<alert id>.<action>.<expiry, unix seconds>.<signature>`, all
url-safe: the signature is HMAC-SHA256 under the `action_secret` setting
over a versioned message naming the alert, the action and the expiry,
url-safe base64 without padding. Changing any part breaks the signature;
`verify` compares in constant time and then enforces the expiry against the
caller's clock (`now`), so tests drive time. Whoever holds an unexpired link
may act with it, as with any chat-borne acknowledgement link: keep the
lifetime short (`action_link_ttl_h`) and the secret secret; rotating the
secret invalidates every link issued under the old one.

With no `action_secret` configured links are off: `link_secret` returns None,
pages carry no link, and the responder app says so on /a/… .
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

#: Actions a link may carry: `ack` (acknowledge) and `resolve`. Comments need a person and a text: use the app.
ACTIONS = ("ack", "resolve")
#: What people read for each action (the confirmation page, the message).
ACTION_NAMES = {"ack": "确认收到（认领处置）", "resolve": "标记为已解决"}
MIN_SECRET_CHARS = 16
_VERSION = "baogong-link-v1"


class LinkError(Exception):
    """The token cannot be acted on; `reason` is one of malformed | signature | expired (say so, never act)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Link:
    """What a verified token allows: `action` on `alert_id` until `expires_at`."""

    alert_id: int
    action: str
    expires_at: datetime


def _key(secret: str | SecretStr) -> bytes:
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if len(raw) < MIN_SECRET_CHARS:
        raise ValueError(f"action_secret must be at least {MIN_SECRET_CHARS} characters (use a random string)")
    return raw.encode()


def _signature(key: bytes, alert_id: int, action: str, expiry: int) -> str:
    message = f"{_VERSION}\n{alert_id}\n{action}\n{expiry}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(alert_id: int, action: str, expires_at: datetime, secret: str | SecretStr) -> str:
    """A token allowing `action` (ACTIONS) on `alert_id` until `expires_at` (aware; whole seconds count)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown link action {action!r}; one of {', '.join(ACTIONS)}")
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must carry a time zone")
    expiry = int(expires_at.timestamp())
    return f"{int(alert_id)}.{action}.{expiry}.{_signature(_key(secret), int(alert_id), action, expiry)}"


def verify(token: str, secret: str | SecretStr, now: datetime) -> Link:
    """The link `token` grants, checked against `secret` and the caller's clock; raises LinkError if none.

    The signature is checked (constant time) before anything the token says is
    believed; a link is good up to and excluding its expiry second.
    """
    parts = token.split(".")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[2].isdigit() or parts[1] not in ACTIONS:
        raise LinkError("malformed", "this link is incomplete or damaged; open the link from the message again")
    alert_id, action, expiry = int(parts[0]), parts[1], int(parts[2])
    if not hmac.compare_digest(_signature(_key(secret), alert_id, action, expiry).encode(), parts[3].encode()):
        raise LinkError("signature", "this link was not issued by Baogong (or was altered); do not use it")
    expires_at = datetime.fromtimestamp(expiry, UTC)
    if now >= expires_at:
        raise LinkError("expired", f"this link expired at {expires_at:%Y-%m-%d %H:%M} UTC; act in the app or CLI")
    return Link(alert_id, action, expires_at)


def action_url(public_url: str, alert_id: int, action: str, expires_at: datetime, secret: str | SecretStr) -> str:
    """The link to put in a message: `<public_url>/a/<token>`."""
    return f"{public_url.rstrip('/')}/a/{sign(alert_id, action, expires_at, secret)}"


def link_secret(action_secret: SecretStr | None) -> SecretStr | None:
    """The secret links are signed with, or None when links are off (no or an empty `action_secret`)."""
    if action_secret is None or not action_secret.get_secret_value():
        return None
    _key(action_secret)  # too short: say so now, not at the first page
    return action_secret


def ack_url(public_url: str, action_secret: SecretStr | None, alert_id: int, now: datetime, ttl: timedelta) -> str:
    """The acknowledge link of a page sent at `now` (valid for `ttl`), or '' when links are off.

    What the dispatcher passes as the Alertmanager body's `externalURL`.
    """
    secret = link_secret(action_secret)
    if secret is None:
        return ""
    return action_url(public_url, alert_id, "ack", now + ttl, secret)
