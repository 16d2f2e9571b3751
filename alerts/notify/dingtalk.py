"""DingTalk (钉钉) group robot, signed: one markdown message per payload.

POST `{"msgtype": "markdown", "markdown": {"title": …, "text": …}}` as JSON
to the robot's URL (`https://oapi.dingtalk.com/robot/send?access_token=…`).
With a signing secret (the robot's 加签 security setting) the URL gets
`&timestamp=T&sign=S`: T is the current time in milliseconds and S is the
standard Base64 of HMAC-SHA256 over `"T\\nsecret"` keyed by the secret, then
URL-encoded (DingTalk's documented algorithm; it rejects a timestamp more than
an hour away from its clock, so keep the host's clock in sync).

The robot answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`; any other
errcode is a failure: 130101 and 410100 (sending too fast: 20 messages a
minute per robot, then throttled for 10 minutes) and -1 (system busy) are
recoverable; 310000 (signature, keyword or IP whitelist mismatch), 300001 and
300005 (no such token) are not. Our titles always contain "保供", a keyword a
robot with the keyword security setting can use. Text is capped at 4096
bytes, like WeCom's (alerts that do not fit are counted, not shown).

Settings (`DingtalkConfig`): `url` (secret: carries the access token),
`secret` (the signing secret, optional), `at_mobiles` (phones to @ in the
group, e.g. the on-call member), `at_all`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote_plus

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from alerts.notify import templates
from alerts.notify.base import channel_name, http_url, robot_answer, send

MAX_BYTES = 4096
RETRY_CODES = frozenset({-1, 130101, 410100})


class DingtalkConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["dingtalk"] = "dingtalk"
    url: SecretStr
    secret: SecretStr | None = None
    at_mobiles: tuple[str, ...] = ()
    at_all: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        return http_url(value)


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature for `timestamp_ms`: Base64(HMAC-SHA256(secret, "T\\nsecret")), not yet URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_url(url: str, secret: str | None, now_s: float) -> str:
    """`url` with `timestamp` and `sign` appended (unchanged without a secret)."""
    if not secret:
        return url
    ts = int(now_s * 1000)
    return f"{url}{'&' if '?' in url else '?'}timestamp={ts}&sign={quote_plus(sign(secret, ts))}"


def body(payload: dict[str, Any], at_mobiles: tuple[str, ...] = (), at_all: bool = False) -> dict[str, Any]:
    """The robot's JSON body for a payload (pure). Mentions are appended to the text, as DingTalk requires."""
    msg = templates.message(payload)
    mention = " ".join(f"@{m}" for m in at_mobiles)
    limit = MAX_BYTES - len(mention.encode()) - 2

    def render(items: Any, more: int) -> str:
        return templates.markdown(msg, "dingtalk", items, more)

    text = templates.fit(msg, render, limit)
    if mention:
        text += "\n\n" + mention
    out: dict[str, Any] = {"msgtype": "markdown", "markdown": {"title": msg.title, "text": text}}
    if at_mobiles or at_all:
        out["at"] = {"atMobiles": list(at_mobiles), "isAtAll": at_all}
    return out


class DingtalkNotifier:
    def __init__(
        self, config: DingtalkConfig, client: httpx.AsyncClient, clock: Callable[[], float] = time.time
    ) -> None:
        self._url = config.url.get_secret_value()
        self._secret = config.secret.get_secret_value() if config.secret else None
        self._at = config.at_mobiles
        self._at_all = config.at_all
        self.name = channel_name("dingtalk", self._url)
        self._client = client
        self._clock = clock

    async def notify(self, payload: dict[str, Any]) -> None:
        """Sign with the time of this attempt (a retry is signed anew), send, check errcode."""
        url = signed_url(self._url, self._secret, self._clock())
        response = await send(self._client, self.name, "POST", url, json=body(payload, self._at, self._at_all))
        robot_answer(self.name, response, RETRY_CODES)
