"""Supplier API keys: format, hashing and verification (pure).

A key looks like `bg_<prefix>_<secret>`: `prefix` (8 hex chars) is public and
finds the stored row, `secret` (32 bytes, url-safe base64) is never stored —
only SHA-256 of the whole key is. Keys are random with 256 bits of entropy, so
a fast hash is the right tool (a slow password hash protects guessable
secrets; these are not guessable), and verification is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

KEY_PREFIX = "bg_"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    prefix: str
    key: str = field(repr=False)  # shown once to the supplier, never stored or logged

    @property
    def key_hash(self) -> str:
        return hash_key(self.key)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> IssuedKey:
    prefix = secrets.token_hex(4)
    return IssuedKey(prefix, f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}")


def demo_key(supplier_id: str, seed: int) -> IssuedKey:
    """A deterministic key for the synthetic demo city only, so re-seeding prints the same keys."""
    digest = hashlib.sha256(f"baogong-demo:{seed}:{supplier_id}".encode()).hexdigest()
    prefix = digest[:8]
    return IssuedKey(prefix, f"{KEY_PREFIX}{prefix}_demo{digest[8:40]}")


def parse_prefix(key: str) -> str | None:
    """The public prefix of a well-formed key, or None."""
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 8 or not secret:
        return None
    return prefix


def verify(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)
