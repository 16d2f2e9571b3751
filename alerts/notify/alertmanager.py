"""Push to a real Prometheus Alertmanager through its API v2, for sites that route there.

POST `{url}/api/v2/alerts` with a JSON list of postable alerts (`labels`,
`annotations`, `startsAt`, `endsAt`, `generatorURL`), one per alert of the
payload. A resolution is the same alert (same labels) with `endsAt` in the
past: the alert's end time. Alertmanager resolves an alert it has not heard
of again within its `resolve_timeout` (5 min by default) by itself, so a
firing alert is posted with `endsAt` `hold_s` ahead (default 7 days): it stays
firing there until Baogong posts its resolution (or the hold runs out).
Alertmanager then groups, silences, inhibits and routes as configured.

Labels are the alert's labels (Alertmanager identifies an alert by them);
annotations are the alert's annotations plus `title` (the Chinese title of
the message) and `link` (the link to act, when there is one). A blank
`generatorURL` is left out (Alertmanager requires a valid URI).

Failures: transport errors, 5xx, 408 and 429 are recoverable; 400 (an alert
Alertmanager refuses) and other 4xx are not.

Settings (`AlertmanagerConfig`): `url` (Alertmanager's base URL, e.g.
`http://alertmanager:9093`), `username` and `password` (secret; HTTP basic
auth in front of it) or `bearer_token` (secret), `hold_s`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from alerts.notify import templates
from alerts.notify.base import channel_name, http_url, send

ZERO_PREFIX = "0001-"


class AlertmanagerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["alertmanager"] = "alertmanager"
    url: SecretStr
    username: str | None = None
    password: SecretStr | None = None
    bearer_token: SecretStr | None = None
    hold_s: float = Field(7 * 24 * 3600.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        return http_url(value)

    @model_validator(mode="after")
    def _auth(self) -> AlertmanagerConfig:
        if self.bearer_token is not None and self.username:
            raise ValueError("use basic auth (username, password) or bearer_token, not both")
        return self


def postable_alerts(payload: dict[str, Any], now: datetime, hold_s: float) -> list[dict[str, Any]]:
    """The API v2 body for a payload at `now` (pure)."""
    msg = templates.message(payload)
    out = []
    for alert in payload.get("alerts") or ():
        annotations = {str(k): str(v) for k, v in (alert.get("annotations") or {}).items()}
        annotations["title"] = msg.title
        link = str(alert.get("generatorURL") or "") or msg.link
        if link:
            annotations["link"] = link
        item: dict[str, Any] = {"labels": dict(alert.get("labels") or {}), "annotations": annotations}
        starts = str(alert.get("startsAt") or "")
        if starts and not starts.startswith(ZERO_PREFIX):
            item["startsAt"] = starts
        ends = str(alert.get("endsAt") or "")
        if alert.get("status") == "resolved":
            item["endsAt"] = ends if ends and not ends.startswith(ZERO_PREFIX) else now.isoformat()
        else:
            item["endsAt"] = (now + timedelta(seconds=hold_s)).isoformat()
        if link:
            item["generatorURL"] = link
        out.append(item)
    return out


class AlertmanagerNotifier:
    def __init__(
        self, config: AlertmanagerConfig, client: httpx.AsyncClient, clock: Callable[[], float] = time.time
    ) -> None:
        base = config.url.get_secret_value().rstrip("/")
        self._url = base + "/api/v2/alerts"
        self.name = channel_name("alertmanager", base)
        self._client = client
        self._clock = clock
        self._hold_s = config.hold_s
        self._auth: httpx.BasicAuth | None = None
        self._headers: dict[str, str] = {}
        if config.username:
            password = config.password.get_secret_value() if config.password else ""
            self._auth = httpx.BasicAuth(config.username, password)
        if config.bearer_token is not None:
            self._headers["Authorization"] = "Bearer " + config.bearer_token.get_secret_value()

    async def notify(self, payload: dict[str, Any]) -> None:
        now = datetime.fromtimestamp(self._clock(), UTC)
        body = postable_alerts(payload, now, self._hold_s)
        if not body:
            return
        kwargs: dict[str, Any] = {"json": body, "headers": self._headers}
        if self._auth is not None:
            kwargs["auth"] = self._auth
        await send(self._client, self.name, "POST", self._url, **kwargs)
