"""Every channel kind builds from a team's stored mapping; names and reprs never carry a secret (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from alerts.notify import KINDS, ChannelError, build, channel_config, dingtalk, parse_channel, sms

KEY = "c0ffee-wecom-key-0000"
TOKEN = "d1ng-access-token-1111"
SECRET = "SECd1ng-signing-secret-2222"
PASSWORD = "smtp-password-3333"
GATEWAY_KEY = "sms-gateway-key-4444"
BEARER = "am-bearer-5555"
SECRETS = (KEY, TOKEN, SECRET, PASSWORD, GATEWAY_KEY, BEARER)

CHANNELS: dict[str, dict[str, Any]] = {
    "webhook": {"kind": "webhook", "url": f"https://hooks.example.org/baogong?token={KEY}"},
    "wecom": {"kind": "wecom", "url": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"},
    "dingtalk": {
        "kind": "dingtalk",
        "url": f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}",
        "secret": SECRET,
        "at_mobiles": ["13800000001"],
    },
    "email": {
        "kind": "email",
        "host": "smtp.example.org",
        "port": 587,
        "sender": "保供平台 <alerts@example.org>",
        "to": ["c03-team@example.org", "owner@example.org"],
        "starttls": True,
        "username": "alerts",
        "password": PASSWORD,
    },
    "sms": {
        "kind": "sms",
        "url": f"https://sms.example.org/send?apikey={GATEWAY_KEY}",
        "phones": ["13800000001", "+86 139-0000-0002"],
        "headers": {"Authorization": f"Bearer {GATEWAY_KEY}"},
        "ok_field": "code",
        "ok_value": "0",
    },
    "alertmanager": {"kind": "alertmanager", "url": "http://alertmanager:9093", "bearer_token": BEARER},
}


def test_the_examples_cover_every_kind() -> None:
    assert set(CHANNELS) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_builds_and_keeps_its_secrets_out_of_names_and_reprs(kind: str) -> None:
    spec = parse_channel(CHANNELS[kind])
    notifier = build(spec, httpx.AsyncClient())
    assert notifier.name.startswith(f"{kind}-") and len(notifier.name) == len(kind) + 9
    shown = repr(spec) + str(spec) + notifier.name + repr(notifier)
    assert not any(secret in shown for secret in SECRETS)
    # the stored mapping reads back into the same channel, so the same notifier name
    assert parse_channel(channel_config(spec)) == spec
    assert build(parse_channel(channel_config(spec)), httpx.AsyncClient()).name == notifier.name


def test_names_tell_destinations_apart() -> None:
    one = build(parse_channel(CHANNELS["wecom"]), httpx.AsyncClient()).name
    other = build(parse_channel({**CHANNELS["wecom"], "url": CHANNELS["wecom"]["url"] + "x"}), httpx.AsyncClient())
    assert one != other.name


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"kind": "fax"}, "channel kind must be one of"),
        ({"kind": "wecom", "url": f"ftp://example.org/?key={KEY}"}, "url: must be an http:// or https:// URL"),
        ({"kind": "wecom", "url": "https://x.example.org", "colour": "red"}, "colour: Extra inputs"),
        ({**CHANNELS["email"], "tls": True}, "starttls and tls exclude each other"),
        ({**CHANNELS["email"], "to": []}, "to: "),
        ({**CHANNELS["sms"], "phones": [f"call {KEY}"]}, "phone numbers are digits"),
        ({**CHANNELS["sms"], "body": '{"phone": "{phone}", "text": {text}}'}, "body is not valid JSON"),
    ],
)
def test_invalid_settings_name_the_field_never_the_value(data: dict[str, Any], says: str) -> None:
    with pytest.raises(ChannelError) as err:
        parse_channel(data)
    assert says in str(err.value)
    assert not any(secret in str(err.value) for secret in SECRETS)


def test_dingtalk_signature_is_the_documented_algorithm() -> None:
    url = dingtalk.signed_url(CHANNELS["dingtalk"]["url"], SECRET, 1_700_000_000.123)
    query = parse_qs(urlsplit(url).query)
    assert query["access_token"] == [TOKEN] and query["timestamp"] == ["1700000000123"]
    expected = hmac.new(SECRET.encode(), f"1700000000123\n{SECRET}".encode(), hashlib.sha256).digest()
    assert base64.b64decode(query["sign"][0]) == expected
    assert dingtalk.signed_url("https://oapi.dingtalk.com/robot/send?access_token=t", None, 0) == (
        "https://oapi.dingtalk.com/robot/send?access_token=t"
    )


def test_sms_templates_escape_for_their_content_type() -> None:
    cfg = parse_channel(CHANNELS["sms"])
    assert isinstance(cfg, sms.SmsConfig)
    assert sms.render_body(cfg, "13800000001", '大米 "2.4天"') == '{"phone": "13800000001", "text": "大米 \\"2.4天\\""}'
    form = parse_channel(
        {**CHANNELS["sms"], "body": "to={phone}&msg={text}", "content_type": "application/x-www-form-urlencoded"}
    )
    assert isinstance(form, sms.SmsConfig)
    assert sms.render_body(form, "13800000001", "大米 & 油") == "to=13800000001&msg=%E5%A4%A7%E7%B1%B3+%26+%E6%B2%B9"
