"""API key administration on a real PostgreSQL: what is stored, what still authenticates, what is shown."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import timedelta

import pytest

from baogong.settings import Settings
from ingest import cli_keys, key_admin
from ingest.auth import AuthError, KeyCache
from ingest.key_admin import InvalidKeyReference, UnknownSupplier, create_key, list_keys, revoke_key, rotate_key
from schema.db import connect, make_pool
from schema.keys import IssuedKey, hash_key, new_key, verify

NOW = timedelta(0)


@pytest.fixture
def url(database_url: str) -> str:
    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO suppliers (id, name, kind) VALUES "
            "('s1', 'Test chain', 'chain'), ('s2', 'Test market', 'market')"
        )
    return database_url


def stored(url: str) -> list[dict[str, object]]:
    with connect(url) as conn:
        return conn.execute("SELECT * FROM api_keys ORDER BY created_at, prefix").fetchall()


def table_text(url: str) -> str:
    with connect(url) as conn:
        return "\n".join(r["t"] for r in conn.execute("SELECT api_keys::text AS t FROM api_keys").fetchall())


def authenticate(url: str, key: str) -> str:
    """What the ingest API answers for `key`: its supplier, or AuthError (no cache in between)."""

    async def check() -> str:
        pool = make_pool(url, max_size=1)
        await pool.open()
        try:
            return await KeyCache(pool, ttl_s=0).supplier_for(key)
        finally:
            await pool.close()

    return asyncio.run(check())


def active(url: str, issued: IssuedKey) -> bool:
    info = key_admin.key_info(url, issued.prefix)
    assert info is not None
    return info.active


def secret_of(issued: IssuedKey) -> str:
    return _secret(issued.key)


def _secret(key: str) -> str:
    """The secret part of `bg_<prefix>_<secret>`, whole: the secret may itself hold "_" (URL-safe base64)."""
    return key.split("_", 2)[2]


# ---------------------------------------------------------------- library


def test_create_stores_only_the_hash_and_the_key_verifies(url: str) -> None:
    issued = create_key(url, "s1")
    (row,) = stored(url)
    assert row["prefix"] == issued.prefix and row["supplier_id"] == "s1" and row["revoked_at"] is None
    assert row["key_hash"] == hash_key(issued.key)
    assert verify(issued.key, str(row["key_hash"]))
    text = table_text(url)
    assert issued.key not in text and secret_of(issued) not in text
    assert authenticate(url, issued.key) == "s1"


def test_create_keeps_the_suppliers_other_keys(url: str) -> None:
    first, second = create_key(url, "s1"), create_key(url, "s1")
    assert first.prefix != second.prefix
    assert active(url, first) and active(url, second)


def test_unknown_supplier_is_named_with_the_known_ones(url: str) -> None:
    for call in (lambda: create_key(url, "nope"), lambda: rotate_key(url, "nope", NOW), lambda: list_keys(url, "nope")):
        with pytest.raises(UnknownSupplier) as caught:
            call()
        message = str(caught.value)
        assert "'nope'" in message and "s1, s2" in message and "SELECT id, name, kind FROM suppliers" in message
    assert stored(url) == []


def test_rotate_without_grace_revokes_the_old_key_now(url: str) -> None:
    old = create_key(url, "s1")
    new = rotate_key(url, "s1", NOW)
    assert not active(url, old) and active(url, new)
    with pytest.raises(AuthError, match="revoked"):
        authenticate(url, old.key)
    assert authenticate(url, new.key) == "s1"


def test_rotate_with_grace_keeps_the_old_key_until_then(url: str) -> None:
    old = create_key(url, "s1")
    new = rotate_key(url, "s1", timedelta(seconds=2))
    old_info, new_info = key_admin.key_info(url, old.prefix), key_admin.key_info(url, new.prefix)
    assert old_info is not None and new_info is not None
    assert old_info.revoked_at is not None
    assert old_info.revoked_at - new_info.created_at == timedelta(seconds=2)  # one transaction, one now()
    assert old_info.active and new_info.active
    time.sleep(2.2)
    assert not active(url, old) and active(url, new)


def test_default_grace_is_an_hour_and_never_extends_a_revocation(url: str) -> None:
    first = create_key(url, "s1")
    second = rotate_key(url, "s1", timedelta(minutes=60))
    first_until = key_admin.key_info(url, first.prefix).revoked_at  # type: ignore[union-attr]
    third = rotate_key(url, "s1", timedelta(minutes=120))
    assert key_admin.key_info(url, first.prefix).revoked_at == first_until  # type: ignore[union-attr]
    assert all(active(url, k) for k in (first, second, third))
    rotate_key(url, "s1", NOW)  # an emergency rotation cuts every grace short
    assert not any(active(url, k) for k in (first, second, third))


def test_rotate_touches_only_that_supplier(url: str) -> None:
    other = create_key(url, "s2")
    create_key(url, "s1")
    rotate_key(url, "s1", NOW)
    assert active(url, other)
    assert authenticate(url, other.key) == "s2"


def test_revoke_by_prefix_and_by_whole_key(url: str) -> None:
    by_prefix, by_key = create_key(url, "s1"), create_key(url, "s1")
    assert revoke_key(url, key_admin.prefix_of(by_prefix.prefix))
    assert revoke_key(url, key_admin.prefix_of(by_key.key))
    assert not active(url, by_prefix) and not active(url, by_key)
    for issued in (by_prefix, by_key):
        with pytest.raises(AuthError):
            authenticate(url, issued.key)
    assert not revoke_key(url, by_prefix.prefix)  # already revoked: idempotent, says so
    assert not revoke_key(url, "0badcafe")
    assert key_admin.key_info(url, "0badcafe") is None


def test_revoke_cuts_a_grace_period_short(url: str) -> None:
    old = create_key(url, "s1")
    rotate_key(url, "s1", timedelta(minutes=60))
    assert active(url, old)
    assert revoke_key(url, old.prefix)
    assert not active(url, old)


@pytest.mark.parametrize("reference", ["", "ABCDEF12", "abc", "bg_short_secret", "bg_0123456z_secret", "bg_01234567_"])
def test_a_reference_that_is_no_prefix_or_key_is_refused_without_echo(reference: str) -> None:
    with pytest.raises(InvalidKeyReference) as caught:
        key_admin.prefix_of(reference)
    assert not reference or reference not in str(caught.value)


def test_list_never_carries_key_material(url: str) -> None:
    a, b = create_key(url, "s1"), create_key(url, "s2")
    rotate_key(url, "s2", NOW)
    everything = list_keys(url)
    assert [k.supplier_id for k in everything] == ["s1", "s2", "s2"]
    assert [k.prefix for k in list_keys(url, "s1")] == [a.prefix]
    shown = repr(everything)
    for issued in (a, b):
        assert issued.key not in shown and secret_of(issued) not in shown and issued.key_hash not in shown
    assert not any(hasattr(k, "key_hash") or hasattr(k, "key") for k in everything)
    with connect(url) as conn:
        conn.execute("INSERT INTO suppliers (id, name, kind) VALUES ('s3', 'No keys yet', 'pharmacy')")
    assert list_keys(url, "s3") == []


def test_a_prefix_collision_draws_again(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = create_key(url, "s1")
    fresh = new_key()
    draws = iter([IssuedKey(taken.prefix, f"bg_{taken.prefix}_other"), fresh])
    monkeypatch.setattr(key_admin, "new_key", lambda: next(draws))
    assert create_key(url, "s2") == fresh
    assert authenticate(url, taken.key) == "s1"  # the existing key was not overwritten


def test_the_api_accepts_an_old_key_during_the_grace_period(url: str) -> None:
    old = create_key(url, "s1")
    rotate_key(url, "s1", timedelta(minutes=60))
    assert authenticate(url, old.key) == "s1"


# ---------------------------------------------------------------- CLI


def run(url: str, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="baogong")
    cli_keys.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["keys", *argv])
    return int(args.func(Settings.from_env({}, database_url=url), args))


def test_cli_create_prints_the_key_once_and_how_to_use_it(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(url, "create", "s1") == 0
    out, err = capsys.readouterr()
    (info,) = list_keys(url)
    key = out.strip()
    assert out.count("bg_") == 1 and key.startswith(f"bg_{info.prefix}_")
    assert verify(key, str(stored(url)[0]["key_hash"]))
    assert key not in err
    assert "cannot be shown again" in err and "Authorization: Bearer <key>" in err and info.prefix in err

    assert run(url, "list") == 0
    out, err = capsys.readouterr()
    assert info.prefix in out and "s1" in out and "active" in out
    assert key not in out + err and _secret(key) not in out + err and hash_key(key) not in out + err


def test_cli_rotate_default_grace_then_revoke_by_key(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    old = create_key(url, "s1")
    assert run(url, "rotate", "s1") == 0
    out, err = capsys.readouterr()
    new_key_text = out.strip()
    assert new_key_text.startswith("bg_") and out.count("bg_") == 1 and old.key not in out + err
    assert f"Old key {old.prefix} keeps working until" in err
    old_info = key_admin.key_info(url, old.prefix)
    assert old_info is not None and old_info.revoked_at is not None
    new_info = key_admin.key_info(url, key_admin.prefix_of(new_key_text))
    assert new_info is not None and old_info.revoked_at - new_info.created_at == timedelta(minutes=60)

    assert run(url, "list", "s1") == 0
    out, _ = capsys.readouterr()
    assert "grace" in out and "bg_" not in out

    assert run(url, "revoke", old.key) == 0
    out, err = capsys.readouterr()
    assert f"Revoked key {old.prefix}" in out and old.key not in out + err and secret_of(old) not in out + err
    assert not active(url, old)
    assert run(url, "revoke", old.prefix) == 0
    assert "already revoked" in capsys.readouterr().out


def test_cli_rotate_without_grace(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    old = create_key(url, "s1")
    assert run(url, "rotate", "s1", "--grace-minutes", "0") == 0
    assert "Every other key of s1 is revoked now" in capsys.readouterr().err
    assert not active(url, old)


def test_cli_mistakes_exit_2_saying_what_to_do(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (("create", "nope"), ("rotate", "nope"), ("list", "nope")):
        assert run(url, *argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and "unknown supplier 'nope'" in err and "s1, s2" in err
    assert run(url, "revoke", "0badcafe") == 2
    assert "no key has prefix 0badcafe" in capsys.readouterr().err
    assert run(url, "revoke", "bg_nothex!!_secret-not-to-echo") == 2
    assert "secret-not-to-echo" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(url, "rotate", "s1", "--grace-minutes", "-5")
    assert stored(url) == []
