"""Notifiers: one module per channel, each behind the `Notifier` interface, its settings beside it.

A notifier delivers one prepared payload. It returns on success and raises
`NotifyError` otherwise; `recoverable` says whether retrying the same payload
may succeed (a 5xx, a timeout, a rate limit) or not (a 4xx, an invalid robot
key: fix the channel's settings). The dispatcher retries both, with back-off,
and keeps undelivered pages visible.

Channels (module: settings class, `kind`):

    webhook.py       WebhookConfig       webhook       Alertmanager webhook JSON, as is
    wecom.py         WecomConfig         wecom         企业微信 group robot, markdown
    dingtalk.py      DingtalkConfig      dingtalk      钉钉 group robot, signed, markdown
    email.py         EmailConfig         email         SMTP, plain text + HTML
    sms.py           SmsConfig           sms           HTTP SMS gateway, one request per phone
    alertmanager.py  AlertmanagerConfig  alertmanager  a real Alertmanager, API v2

What people read is rendered in `templates` from the channel-neutral payload.

A `ChannelSpec` is one channel's settings: the settings class of its `kind`.
Teams store channels as flat mappings (`{"kind": "wecom", "url": "…"}`, i.e.
a kind and a JSON config); `parse_channel` validates one into a ChannelSpec
(errors name the field, never quote a value), `channel_config` turns it back
into the mapping to store (secrets revealed: store it as you store secrets),
and `build` makes its notifier. Secrets are `SecretStr`: a ChannelSpec's repr
shows `'**********'`, and a notifier's `name` is `<kind>-<hash>`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import httpx
from pydantic import Field, SecretStr, TypeAdapter, ValidationError

from alerts.notify.alertmanager import AlertmanagerConfig, AlertmanagerNotifier
from alerts.notify.base import Notifier, NotifyError, channel_name
from alerts.notify.dingtalk import DingtalkConfig, DingtalkNotifier
from alerts.notify.email import EmailConfig, EmailNotifier
from alerts.notify.sms import SmsConfig, SmsNotifier
from alerts.notify.webhook import WebhookConfig, WebhookNotifier
from alerts.notify.wecom import WecomConfig, WecomNotifier

__all__ = [
    "KINDS",
    "AlertmanagerConfig",
    "ChannelError",
    "ChannelSpec",
    "DingtalkConfig",
    "EmailConfig",
    "Notifier",
    "NotifyError",
    "SmsConfig",
    "WebhookConfig",
    "WecomConfig",
    "build",
    "channel_config",
    "channel_name",
    "parse_channel",
]

ChannelSpec = Annotated[
    WebhookConfig | WecomConfig | DingtalkConfig | EmailConfig | SmsConfig | AlertmanagerConfig,
    Field(discriminator="kind"),
]
KINDS = ("webhook", "wecom", "dingtalk", "email", "sms", "alertmanager")
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ChannelSpec)


class ChannelError(ValueError):
    """A channel's settings are invalid; the message names the kind and fields, never a value."""


def parse_channel(data: Mapping[str, Any]) -> ChannelSpec:
    """Validate a flat mapping (`kind` plus that kind's fields) into a ChannelSpec. Raises ChannelError."""
    kind = data.get("kind")
    if kind not in KINDS:
        raise ChannelError(f"channel kind must be one of {', '.join(KINDS)} (got {str(kind)[:20]!r})")
    try:
        return _ADAPTER.validate_python(dict(data))  # type: ignore[no-any-return]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise ChannelError(f"{kind} channel: {problems}") from None


def channel_config(spec: ChannelSpec) -> dict[str, Any]:
    """The flat mapping that `parse_channel` reads back, secrets revealed, unset defaults left out."""
    out: dict[str, Any] = {"kind": spec.kind}
    for name, value in spec.model_dump(exclude_defaults=True, exclude={"kind"}).items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, dict):
            value = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in value.items()}
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def build(spec: ChannelSpec, client: httpx.AsyncClient, *, clock: Callable[[], float] = time.time) -> Notifier:
    """The notifier for one channel.

    `client` carries the HTTP timeout (the dispatcher's `notify_timeout_s`) and
    is shared by every HTTP channel; e-mail opens its own SMTP connection per
    message, bounded by its `timeout_s`. `clock` (seconds since the epoch) signs
    DingTalk requests and dates Alertmanager's hold. Never blocks, never sends.
    """
    if isinstance(spec, WebhookConfig):
        return WebhookNotifier(spec.url.get_secret_value(), client)
    if isinstance(spec, WecomConfig):
        return WecomNotifier(spec, client)
    if isinstance(spec, DingtalkConfig):
        return DingtalkNotifier(spec, client, clock)
    if isinstance(spec, EmailConfig):
        return EmailNotifier(spec)
    if isinstance(spec, SmsConfig):
        return SmsNotifier(spec, client)
    if isinstance(spec, AlertmanagerConfig):
        return AlertmanagerNotifier(spec, client, clock)
    raise ChannelError(f"no notifier for {type(spec).__name__}")
