"""Signed action links: sign, verify, expiry by an explicit clock, tampering, links off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from alerts import links
from alerts.links import LinkError

SECRET = "a-test-secret-of-enough-length"
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_a_signed_link_verifies_until_its_expiry_second() -> None:
    token = links.sign(42, "ack", T0 + timedelta(hours=1), SECRET)
    assert token.startswith("42.ack.")
    assert all(c.isalnum() or c in "._-" for c in token)  # url-safe as it is
    link = links.verify(token, SECRET, T0)
    assert (link.alert_id, link.action, link.expires_at) == (42, "ack", T0 + timedelta(hours=1))
    assert links.verify(token, SecretStr(SECRET), T0 + timedelta(minutes=59, seconds=59)).alert_id == 42
    with pytest.raises(LinkError) as expired:
        links.verify(token, SECRET, T0 + timedelta(hours=1))
    assert expired.value.reason == "expired"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("42.", "43.", 1),  # another alert
        lambda t: t.replace(".ack.", ".resolve.", 1),  # another action
        lambda t: t.replace(f".{int((T0 + timedelta(hours=1)).timestamp())}.", f".{int(T0.timestamp()) + 86400}.", 1),
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # the signature itself
    ],
)
def test_any_change_to_a_link_breaks_its_signature(tamper) -> None:  # type: ignore[no-untyped-def]
    token = links.sign(42, "ack", T0 + timedelta(hours=1), SECRET)
    with pytest.raises(LinkError) as refused:
        links.verify(tamper(token), SECRET, T0)
    assert refused.value.reason == "signature"


def test_another_secret_or_a_damaged_token_is_refused() -> None:
    token = links.sign(7, "resolve", T0 + timedelta(hours=1), SECRET)
    with pytest.raises(LinkError, match="not issued"):
        links.verify(token, "another-secret-of-enough-length", T0)
    for damaged in ("", "7.resolve", "x.ack.1.sig", "7.delete.1767225600.sig", token + ".extra"):
        with pytest.raises(LinkError) as refused:
            links.verify(damaged, SECRET, T0)
        assert refused.value.reason == "malformed"


def test_action_url_and_links_off() -> None:
    url = links.action_url("https://bg.example/", 5, "ack", T0 + timedelta(hours=2), SECRET)
    assert url.startswith("https://bg.example/a/5.ack.")
    assert links.verify(url.rsplit("/", 1)[1], SECRET, T0).action == "ack"
    assert links.ack_url("https://bg.example", None, 5, T0, timedelta(hours=2)) == ""
    assert links.ack_url("https://bg.example", SecretStr(""), 5, T0, timedelta(hours=2)) == ""
    assert links.ack_url("https://bg.example", SecretStr(SECRET), 5, T0, timedelta(hours=2)) == url
    with pytest.raises(ValueError, match="at least 16"):
        links.link_secret(SecretStr("short"))
    with pytest.raises(ValueError, match="unknown link action"):
        links.sign(5, "delete", T0, SECRET)
