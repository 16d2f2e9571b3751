"""WeCom (企业微信) group robot: one markdown message per payload.

POST `{"msgtype": "markdown", "markdown": {"content": …}}` as JSON to the
robot's URL (`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`). The
robot answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`; any other
errcode is a failure: 45009 (rate limit: 20 messages a minute per robot) and
-1 (system busy) are recoverable, anything else (93000: invalid webhook URL,
i.e. a wrong or deleted key) is not. Markdown content is at most 4096 bytes
of UTF-8: alerts that do not fit are left out and counted ("另有 N 条").

Settings (`WecomConfig`): `url`, the robot URL with its key (a secret).
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from alerts.notify import templates
from alerts.notify.base import channel_name, http_url, robot_answer, send

MAX_BYTES = 4096
RETRY_CODES = frozenset({-1, 45009})


class WecomConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["wecom"] = "wecom"
    url: SecretStr

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        return http_url(value)


def body(payload: dict[str, Any]) -> dict[str, Any]:
    """The robot's JSON body for a payload (pure)."""
    msg = templates.message(payload)
    content = templates.fit(msg, lambda items, more: templates.markdown(msg, "wecom", items, more), MAX_BYTES)
    return {"msgtype": "markdown", "markdown": {"content": content}}


class WecomNotifier:
    def __init__(self, config: WecomConfig, client: httpx.AsyncClient) -> None:
        self._url = config.url.get_secret_value()
        self.name = channel_name("wecom", self._url)
        self._client = client

    async def notify(self, payload: dict[str, Any]) -> None:
        response = await send(self._client, self.name, "POST", self._url, json=body(payload))
        robot_answer(self.name, response, RETRY_CODES)
