"""`baogong keys`: issue, rotate, revoke and list supplier API keys.

    baogong keys create SUPPLIER_ID                       a new key, printed once
    baogong keys rotate SUPPLIER_ID [--grace-minutes N]   a new key; the old ones stop after N minutes (60)
    baogong keys revoke PREFIX|KEY                        stop one key now
    baogong keys list [SUPPLIER_ID]                       prefixes and dates, never keys

A new key goes alone on stdout (so `KEY=$(baogong keys create S01)` works);
everything said about it goes to stderr. No other output ever contains a key
or a hash. Operator mistakes (unknown supplier, unknown prefix) exit 2 with a
message saying what to do.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta

from baogong.settings import Settings
from ingest import key_admin
from schema.keys import IssuedKey

DEFAULT_GRACE_MINUTES = 60
USAGE_ERROR = 2


def _grace_minutes(text: str) -> int:
    try:
        minutes = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of minutes") from None
    if minutes < 0:
        raise argparse.ArgumentTypeError("grace must be 0 (revoke at once) or more minutes")
    return minutes


def _when(t: datetime | None) -> str:
    return "-" if t is None else t.isoformat(timespec="seconds")


def _fail(message: object) -> int:
    print(f"baogong keys: {message}", file=sys.stderr)
    return USAGE_ERROR


def _show_new_key(supplier_id: str, issued: IssuedKey) -> None:
    print(f"New API key for supplier {supplier_id} (prefix {issued.prefix}):", file=sys.stderr)
    print(issued.key)
    print(
        "It cannot be shown again (only its hash is stored): hand it to the supplier now.\n"
        "The supplier sends it on every request as: Authorization: Bearer <key>",
        file=sys.stderr,
    )


def _create(settings: Settings, args: argparse.Namespace) -> int:
    try:
        issued = key_admin.create_key(settings.database_url.get_secret_value(), args.supplier_id)
    except key_admin.UnknownSupplier as exc:
        return _fail(exc)
    _show_new_key(args.supplier_id, issued)
    return 0


def _rotate(settings: Settings, args: argparse.Namespace) -> int:
    url = settings.database_url.get_secret_value()
    try:
        issued = key_admin.rotate_key(url, args.supplier_id, timedelta(minutes=args.grace_minutes))
    except key_admin.UnknownSupplier as exc:
        return _fail(exc)
    _show_new_key(args.supplier_id, issued)
    in_grace = [k for k in key_admin.list_keys(url, args.supplier_id) if k.prefix != issued.prefix and k.active]
    for k in in_grace:
        print(
            f"Old key {k.prefix} keeps working until {_when(k.revoked_at)}; "
            f"to stop it sooner: baogong keys revoke {k.prefix}",
            file=sys.stderr,
        )
    if not in_grace:
        print(f"Every other key of {args.supplier_id} is revoked now.", file=sys.stderr)
    return 0


def _revoke(settings: Settings, args: argparse.Namespace) -> int:
    url = settings.database_url.get_secret_value()
    try:
        prefix = key_admin.prefix_of(args.key)
    except key_admin.InvalidKeyReference as exc:
        return _fail(exc)
    if key_admin.revoke_key(url, prefix):
        info = key_admin.key_info(url, prefix)
        owner = f" of supplier {info.supplier_id}" if info else ""
        print(f"Revoked key {prefix}{owner}; the API refuses it within its key-cache time (30 s by default).")
        return 0
    info = key_admin.key_info(url, prefix)
    if info is None:
        return _fail(f"no key has prefix {prefix}; `baogong keys list` shows the prefixes")
    print(f"Key {prefix} of supplier {info.supplier_id} was already revoked at {_when(info.revoked_at)}.")
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    try:
        keys = key_admin.list_keys(settings.database_url.get_secret_value(), args.supplier_id)
    except key_admin.UnknownSupplier as exc:
        return _fail(exc)
    if not keys:
        whose = f" for supplier {args.supplier_id}" if args.supplier_id else ""
        print(f"No API keys{whose}; `baogong keys create SUPPLIER_ID` issues one.", file=sys.stderr)
        return 0
    print(f"{'PREFIX':8}  {'SUPPLIER':24}  {'CREATED':25}  {'REVOKED':25}  STATE")
    for k in keys:
        state = "revoked" if not k.active else "grace" if k.revoked_at is not None else "active"
        print(f"{k.prefix:8}  {k.supplier_id:24}  {_when(k.created_at):25}  {_when(k.revoked_at):25}  {state}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `keys` and its actions to the `baogong` subcommands; each sets `func(settings, args) -> int`."""
    keys = sub.add_parser("keys", help="supplier API keys: create, rotate, revoke, list")
    actions = keys.add_subparsers(dest="action", required=True)

    p = actions.add_parser("create", help="issue a new key for a supplier (printed once)")
    p.add_argument("supplier_id")
    p.set_defaults(func=_create)

    p = actions.add_parser("rotate", help="issue a new key and revoke the supplier's other keys after a grace period")
    p.add_argument("supplier_id")
    p.add_argument(
        "--grace-minutes",
        type=_grace_minutes,
        default=DEFAULT_GRACE_MINUTES,
        metavar="N",
        help=f"old keys keep working this long, so the ERP can switch (default {DEFAULT_GRACE_MINUTES}; 0 = now)",
    )
    p.set_defaults(func=_rotate)

    p = actions.add_parser("revoke", help="revoke one key now, by its prefix (or the whole key)")
    p.add_argument("key", metavar="PREFIX", help="the key's 8-character prefix, as `keys list` shows, or the key")
    p.set_defaults(func=_revoke)

    p = actions.add_parser("list", help="keys with their supplier and dates (never the keys themselves)")
    p.add_argument("supplier_id", nargs="?", default=None)
    p.set_defaults(func=_list)
