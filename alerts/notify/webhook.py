"""Webhook receivers, in the Prometheus Alertmanager webhook format (version 4).

Existing Alertmanager webhook receivers work unchanged. One notification
carries one alert; `groupKey` and `fingerprint` are stable per alert, so a
receiver can de-duplicate a redelivery (delivery is at-least-once).

Settings (`WebhookConfig`): `url`, the receiver's URL (a secret: it may carry a token).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from alerts.model import Alert, Event
from alerts.notify.base import http_url, send

ZERO_TIME = "0001-01-01T00:00:00Z"


class WebhookConfig(BaseModel):
    """A generic webhook receiver: POSTs the Alertmanager webhook body (version 4) as JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["webhook"] = "webhook"
    url: SecretStr

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        return http_url(value)


def receiver_name(url: str) -> str:
    """A stable, log-safe name for a webhook URL (robot URLs carry secrets in the query)."""
    return "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:8]


def _ts(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ZERO_TIME


def alertmanager_payload(alert: Alert, event: Event, receiver: str, external_url: str = "") -> dict[str, Any]:
    group_labels = {k: alert.labels[k] for k in ("alertname", "circle", "necessity") if k in alert.labels}
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items())) + "}"
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": event.value,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": alert.labels,
        "commonAnnotations": alert.annotations,
        "externalURL": external_url,
        "alerts": [
            {
                "status": event.value,
                "labels": alert.labels,
                "annotations": alert.annotations,
                "startsAt": _ts(alert.starts_at),
                "endsAt": _ts(alert.ends_at) if event is Event.RESOLVED else ZERO_TIME,
                "generatorURL": external_url,
                "fingerprint": alert.fingerprint,
            }
        ],
    }


class WebhookNotifier:
    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.name = receiver_name(url)
        self._url = url
        self._client = client

    async def notify(self, payload: dict[str, Any]) -> None:
        """POST the body as is; 5xx, 408, 429 and transport errors are recoverable, other 4xx not."""
        await send(self._client, self.name, "POST", self._url, json=payload)
