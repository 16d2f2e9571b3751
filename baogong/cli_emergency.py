"""`baogong emergency …`: declare, lift and list emergencies; operator keys for the HTTP API.

    baogong emergency declare --scope city|district:NAME|circle:ID --grade IV|III|II|I --reason TEXT [--by NAME]
    baogong emergency lift ID --reason TEXT [--by NAME]
    baogong emergency list [--all]
    baogong emergency key create NAME      prints the key once (bg_…): keep it, it is not stored
    baogong emergency key list | revoke PREFIX

`--by` defaults to `cli:<login name>`; it is recorded with the time (now) and the reason: the
`emergencies` table is the audit. What a grade changes is in `schema/emergency.py`; the worker's next
levels and the dispatcher's next wave apply it.

Exit status: 0 done (also lifting what was already lifted: it says so); 2 a bad argument (scope,
grade, empty reason, unknown emergency or circle); the database's own errors as `baogong` reports them.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from baogong.settings import Settings
from schema.db import connect
from schema.emergency import Grade, Scope, rules
from schema.emergency_store import (
    Emergency,
    EmergencyNotFound,
    create_operator_key,
    declare,
    lift,
    list_emergencies,
    list_operator_keys,
    revoke_operator_key,
)

USAGE_ERROR = 2
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _when(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def effect(grade: Grade) -> str:
    """What `grade` changes, in one line."""
    r = rules(grade)
    assert r is not None
    return (
        f"demand x{r.demand_multiplier:g} (some necessities more), thresholds x{r.threshold_factor:g}, "
        f"reports every {r.report_every_h:g} h, alert waits x{r.timer_factor:g}"
    )


def describe(e: Emergency) -> list[str]:
    """An emergency as operators read it: grade, scope, who, when, why; lifted or not."""
    head = f"{e.id:>4}  {e.grade.roman:<3} {e.grade.name_zh}  {e.scope}"
    if e.circles is not None:
        head += f" ({e.circles} circle{'s' if e.circles != 1 else ''})"
    lines = [head, f"      declared {_when(e.declared_at)} by {e.declared_by}: {e.reason}"]
    if e.lifted_at is not None:
        lines.append(f"      lifted   {_when(e.lifted_at)} by {e.lifted_by}: {e.lift_reason}")
    else:
        lines.append(f"      {effect(e.grade)}")
    return lines


def _by(args: argparse.Namespace) -> str:
    return str(args.by) if args.by else f"cli:{getpass.getuser()}"


def _declare(settings: Settings, args: argparse.Namespace) -> int:
    try:
        scope = Scope.parse(args.scope)
        with connect(settings.database_url.get_secret_value()) as conn:
            e = declare(conn, scope, args.grade, args.reason, _by(args), datetime.now(UTC))
    except ValueError as exc:
        print(f"baogong emergency declare: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(f"declared emergency {e.id}: grade {e.grade.roman} over {e.scope}")
    print("\n".join(describe(e)))
    print("the next circle levels (within the level interval) are computed under it")
    return 0


def _lift(settings: Settings, args: argparse.Namespace) -> int:
    try:
        with connect(settings.database_url.get_secret_value()) as conn:
            e, changed = lift(conn, args.id, _by(args), args.reason, datetime.now(UTC))
    except (ValueError, EmergencyNotFound) as exc:
        print(f"baogong emergency lift: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(f"lifted emergency {e.id}" if changed else f"emergency {e.id} had already been lifted; nothing changed")
    print("\n".join(describe(e)))
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    with connect(settings.database_url.get_secret_value()) as conn:
        found = list_emergencies(conn, datetime.now(UTC), include_lifted=args.all)
    if not found:
        print("no emergency has ever been declared" if args.all else "no emergency in force (normal times)")
        return 0
    print(f"{len(found)} emergenc{'ies' if len(found) != 1 else 'y'}{' (all)' if args.all else ' in force'}:")
    for e in found:
        print("\n".join(describe(e)))
    return 0


def _key_create(settings: Settings, args: argparse.Namespace) -> int:
    try:
        with connect(settings.database_url.get_secret_value()) as conn:
            key = create_operator_key(conn, args.name)
    except ValueError as exc:
        print(f"baogong emergency key create: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(f"operator key for {args.name} (shown once; only its hash is stored):")
    print(key.key)
    return 0


def _key_list(settings: Settings, args: argparse.Namespace) -> int:
    with connect(settings.database_url.get_secret_value()) as conn:
        rows = list_operator_keys(conn)
    for r in rows:
        state = "active" if r["revoked_at"] is None else f"revoked {_when(r['revoked_at'])}"
        print(f"{r['prefix']}  {r['name']:<20} created {_when(r['created_at'])}  {state}")
    if not rows:
        print("no operator keys (baogong emergency key create NAME)")
    return 0


def _key_revoke(settings: Settings, args: argparse.Namespace) -> int:
    with connect(settings.database_url.get_secret_value()) as conn:
        done = revoke_operator_key(conn, args.prefix, datetime.now(UTC))
    print(f"revoked {args.prefix}" if done else f"no active operator key {args.prefix}; nothing changed")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `baogong emergency …` to the top-level parser's subcommands."""
    p = sub.add_parser("emergency", help="emergency grades IV–I: declare, lift, list; operator keys")
    actions = p.add_subparsers(dest="emergency_action", required=True)
    d = actions.add_parser("declare", help="declare an emergency over the city, a district or a circle")
    d.add_argument("--scope", required=True, help="city, district:NAME or circle:ID")
    d.add_argument("--grade", required=True, help="IV (lowest), III, II or I (highest)")
    d.add_argument("--reason", required=True, help="why (kept in the audit)")
    d.add_argument("--by", help="who declares (default cli:<login name>)")
    d.set_defaults(func=_declare)
    lp = actions.add_parser("lift", help="lift an emergency")
    lp.add_argument("id", type=int)
    lp.add_argument("--reason", required=True, help="why (kept in the audit)")
    lp.add_argument("--by", help="who lifts (default cli:<login name>)")
    lp.set_defaults(func=_lift)
    ls = actions.add_parser("list", help="emergencies in force (--all: every one ever)")
    ls.add_argument("--all", action="store_true")
    ls.set_defaults(func=_list)
    k = actions.add_parser("key", help="operator keys for the HTTP API").add_subparsers(
        dest="key_action", required=True
    )
    kc = k.add_parser("create", help="a new operator key (printed once)")
    kc.add_argument("name", help="the operator, recorded as declared_by / lifted_by")
    kc.set_defaults(func=_key_create)
    k.add_parser("list", help="operator keys (never the keys themselves)").set_defaults(func=_key_list)
    kr = k.add_parser("revoke", help="revoke an operator key now")
    kr.add_argument("prefix")
    kr.set_defaults(func=_key_revoke)
