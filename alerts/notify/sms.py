"""An SMS gateway over HTTP, generic: a city points it at its provider.

One request per member phone, each carrying the short text of the payload
(`templates.sms_text`: the title, days of supply per necessity, the link when
it fits; at most `max_chars`, 70 = one SMS segment of Chinese text). The
request is built from templates: `{phone}`, `{text}` and `{title}` in `url`
are URL-encoded; in `body` they are escaped for `content_type` (JSON string
escaping for JSON, form encoding for `application/x-www-form-urlencoded`,
as is otherwise). `GET` sends no body.

Success is a 2xx answer and, when `ok_field` is set, that field of the JSON
answer (a dotted path, e.g. `Code` or `result.code`) equal to `ok_value`;
other values fail, recoverable when listed in `retry_values` (the provider's
rate-limit codes). 5xx, 408, 429 and transport errors are recoverable, other
4xx not. When some phones fail, the error is raised after all were tried; the
phones that got this payload are remembered (in memory, the last 1,000
payloads), so the dispatcher's retry texts only the others.

Settings (`SmsConfig`): `url` (secret), `method`, `phones`, `body`,
`content_type`, `headers` (values secret, e.g. an Authorization header),
`max_chars`, `with_link`, `ok_field`, `ok_value`, `retry_values`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import OrderedDict
from typing import Any, Literal
from urllib.parse import quote, quote_plus

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from alerts.notify import templates
from alerts.notify.base import NotifyError, channel_name, json_escape, send

PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,19}$")
REMEMBERED = 1000


class SmsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["sms"] = "sms"
    url: SecretStr
    method: Literal["POST", "PUT", "GET"] = "POST"
    phones: tuple[str, ...] = Field(min_length=1)
    body: str = '{"phone": "{phone}", "text": "{text}"}'
    content_type: str = "application/json"
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    max_chars: int = Field(70, ge=20, le=1000)
    with_link: bool = True
    ok_field: str | None = None
    ok_value: str = ""
    retry_values: tuple[str, ...] = ()

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        probe = fill(value.get_secret_value(), {"phone": "1", "text": "t", "title": "t"}, quote)
        try:
            url = httpx.URL(probe)
        except Exception:
            raise ValueError("not a URL") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("phones")
    @classmethod
    def _phones(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not PHONE.match(p) for p in value):
            raise ValueError("phone numbers are digits, optionally with a leading + and spaces or dashes")
        return value

    @model_validator(mode="after")
    def _body(self) -> SmsConfig:
        if self.method != "GET" and "json" in self.content_type:
            try:
                json.loads(render_body(self, "13800000000", 'a "quoted" 文本'))
            except ValueError:
                raise ValueError("body is not valid JSON once {phone} and {text} are filled in") from None
        return self


def fill(template: str, values: dict[str, str], escape: Any) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", escape(value))
    return out


def render_body(config: SmsConfig, phone: str, text: str, title: str = "") -> str:
    if "json" in config.content_type:
        escape: Any = json_escape
    elif "x-www-form-urlencoded" in config.content_type:
        escape = quote_plus
    else:
        escape = str
    return fill(config.body, {"phone": phone, "text": text, "title": title}, escape)


def _field(answer: Any, path: str) -> Any:
    for part in path.split("."):
        answer = answer.get(part) if isinstance(answer, dict) else None
    return answer


def _key(payload: dict[str, Any]) -> str:
    alerts = [
        (a.get("fingerprint"), a.get("status"), a.get("startsAt"), a.get("endsAt")) for a in payload.get("alerts") or ()
    ]
    return hashlib.sha256(json.dumps([payload.get("status"), alerts]).encode()).hexdigest()


class SmsNotifier:
    def __init__(self, config: SmsConfig, client: httpx.AsyncClient) -> None:
        self._config = config
        self._url = config.url.get_secret_value()
        self.name = channel_name("sms", self._url, *sorted(config.phones))
        self._client = client
        self._sent: OrderedDict[str, set[str]] = OrderedDict()

    async def notify(self, payload: dict[str, Any]) -> None:
        msg = templates.message(payload)
        text = templates.sms_text(msg, self._config.max_chars, self._config.with_link)
        key = _key(payload)
        done = self._sent.setdefault(key, set())
        self._sent.move_to_end(key)
        while len(self._sent) > REMEMBERED:
            self._sent.popitem(last=False)
        todo = [p for p in self._config.phones if p not in done]
        results = await asyncio.gather(*(self._one(p, text, msg.title) for p in todo), return_exceptions=True)
        failed: list[NotifyError] = []
        for phone, result in zip(todo, results, strict=True):
            if result is None:
                done.add(phone)
            elif isinstance(result, NotifyError):
                failed.append(result)
            else:
                raise result  # a bug, not a delivery failure
        if failed:
            raise NotifyError(
                f"{self.name}: {len(failed)} of {len(self._config.phones)} phones failed: {failed[0]}",
                recoverable=all(e.recoverable for e in failed),
            )

    async def _one(self, phone: str, text: str, title: str) -> None:
        c = self._config
        values = {"phone": phone, "text": text, "title": title}
        url = fill(self._url, values, lambda v: quote(v, safe=""))
        headers = {k: v.get_secret_value() for k, v in c.headers.items()}
        kwargs: dict[str, Any] = {"headers": headers}
        if c.method != "GET":
            headers.setdefault("Content-Type", c.content_type)
            kwargs["content"] = render_body(c, phone, text, title).encode()
        response = await send(self._client, self.name, c.method, url, **kwargs)
        if c.ok_field:
            try:
                value = _field(response.json(), c.ok_field)
            except ValueError:
                raise NotifyError(f"{self.name}: the gateway's answer is not JSON", recoverable=True) from None
            if str(value) != c.ok_value:
                raise NotifyError(
                    f"{self.name}: {c.ok_field}={str(value)[:40]}", recoverable=str(value) in c.retry_values
                )
