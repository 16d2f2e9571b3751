"""What every notifier shares: the `Notifier` interface, `NotifyError`, names and HTTP answers.

A notifier delivers one prepared payload (the Alertmanager webhook body,
`alerts.notify.webhook.alertmanager_payload`; it may list several alerts). It
returns on success and raises `NotifyError` otherwise; `recoverable` says
whether sending the same payload again may succeed (a 5xx, a timeout, a rate
limit) or not (a 4xx, an invalid robot key: fix the channel's settings).

Names are log-safe: `<kind>-<8 hex chars of SHA-256 over the destination>`.
Robot and gateway URLs carry keys in their query, so no name, log line or
error message ever contains a URL or a secret; errors name the notifier, the
HTTP status or the service's error code, and the exception type.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

import httpx
from pydantic import SecretStr


class NotifyError(Exception):
    def __init__(self, message: str, *, recoverable: bool) -> None:
        super().__init__(message)
        self.recoverable = recoverable


class Notifier(Protocol):
    name: str

    async def notify(self, payload: dict[str, Any]) -> None: ...


def channel_name(kind: str, *identity: str) -> str:
    """A stable, log-safe name for a channel of `kind` whose destination is `identity`."""
    digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:8]
    return f"{kind}-{digest}"


async def send(
    client: httpx.AsyncClient,
    name: str,
    method: str,
    url: str,
    **kwargs: Any,
) -> httpx.Response:
    """One HTTP request; transport errors (refused, reset, timeout) raise a recoverable `NotifyError`.

    The error names the exception type only: httpx messages quote the URL, which may carry a key.
    """
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise NotifyError(f"{name}: {type(exc).__name__}", recoverable=True) from exc
    check_status(name, response)
    return response


def check_status(name: str, response: httpx.Response) -> None:
    """Raise for a non-2xx answer: 5xx, 408 and 429 are recoverable, other 4xx are not."""
    code = response.status_code
    if code >= 300:
        raise NotifyError(f"{name}: HTTP {code}", recoverable=code >= 500 or code in (408, 429))


def robot_answer(name: str, response: httpx.Response, retry_codes: frozenset[int]) -> None:
    """Check a chat robot's JSON answer `{"errcode": 0, "errmsg": "ok"}` (WeCom, DingTalk).

    Both answer HTTP 200 even when they refuse a message; `errcode` != 0 is a
    failure, recoverable when it is in `retry_codes` (rate limits, "system
    busy"). An answer that is not such JSON (a proxy's page) is recoverable.
    """
    try:
        body = response.json()
        errcode = int(body["errcode"])
    except (ValueError, KeyError, TypeError):
        raise NotifyError(f"{name}: the answer is not the robot's JSON", recoverable=True) from None
    if errcode != 0:
        errmsg = str(body.get("errmsg", ""))[:80]  # WeCom appends hints (and our IP); keep it short
        raise NotifyError(f"{name}: errcode {errcode} {errmsg}".rstrip(), recoverable=errcode in retry_codes)


def json_escape(value: str) -> str:
    """`value` as the inside of a JSON string literal."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def http_url(value: SecretStr) -> SecretStr:
    """Check that a (secret) URL is http(s) with a host; the error never quotes it."""
    try:
        parsed = httpx.URL(value.get_secret_value())
    except Exception:
        raise ValueError("not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value
