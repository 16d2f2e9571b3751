"""`baogong alerts …` acting on alerts, silences, the responder app; `baogong responders keys …`.

    baogong alerts serve                                 the responder HTTP app (alerts_host:alerts_port)
    baogong alerts ack ID [--comment TEXT] [--as NAME]   acknowledge (a shortage opens its supply task)
    baogong alerts resolve ID [--comment TEXT] [--as NAME]
    baogong alerts comment ID TEXT [--as NAME]
    baogong alerts show ID                               the alert and its history
    baogong alerts silence add LABEL=VALUE|LABEL=~REGEX… (--for 2h | --until TIME) [--from TIME] --comment TEXT
    baogong alerts silence list [--all]                  active and pending silences (--all: ended ones too)
    baogong alerts silence expire ID
    baogong responders keys create TEAM/MEMBER           a responder's key, printed once
    baogong responders keys list [--team TEAM]
    baogong responders keys revoke PREFIX

The CLI acts as the operator: `--as NAME`, else the OS user (recorded as
the actor, with `via: cli`). TIME is ISO 8601 (naive: Asia/Shanghai).
Exit status: 0 done (also when nothing needed doing: the output says so);
2 a bad argument, or no such alert, silence or member; 3 refused (the alert
is resolved).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from alerts import actions
from alerts.cli_teams import parse_at
from baogong.settings import Settings
from schema.db import Row, connect

USAGE_ERROR = 2
REFUSED = 3
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _url(settings: Settings) -> str:
    return settings.database_url.get_secret_value()


def _actor(args: argparse.Namespace) -> str:
    return (args.as_ or "").strip() or getpass.getuser()


def _t(at: datetime | None) -> str:
    return f"{at.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}" if at else "-"


def _fail(command: str, exc: Exception, status: int = USAGE_ERROR) -> int:
    print(f"baogong {command}: {exc}", file=sys.stderr)
    return status


def _act(settings: Settings, args: argparse.Namespace) -> int:
    do: dict[str, Callable[..., actions.Outcome]] = {
        "ack": actions.acknowledge,
        "resolve": actions.resolve,
        "comment": actions.comment,
    }
    text = args.text if args.action == "comment" else args.comment
    try:
        with connect(_url(settings)) as conn:
            outcome = do[args.action](conn, args.id, _actor(args), datetime.now(UTC), text, via="cli")
    except actions.ActionRefused as exc:
        return _fail(f"alerts {args.action}", exc, REFUSED)
    except (actions.AlertNotFound, ValueError) as exc:
        return _fail(f"alerts {args.action}", exc)
    print(outcome.message)
    return 0


def history_lines(alert: Row, history: list[Row]) -> list[str]:
    """What `alerts show` prints: the alert, then one line per event, oldest first."""
    ann = alert.get("annotations") or {}
    lines = [
        f"alert {alert['id']}  {alert['rule']}  {alert['state']}  {alert['severity']}"
        f"  circle {alert.get('circle_id') or '-'}  necessity {alert.get('necessity') or '-'}",
        f"  {ann.get('summary', '')}".rstrip(),
        f"  pending since {_t(alert['pending_since'])}, fired {_t(alert['starts_at'])}, ended {_t(alert['ends_at'])}",
    ]
    if alert.get("acknowledged_at"):
        lines.append(f"  acknowledged {_t(alert['acknowledged_at'])} by {alert['acknowledged_by']}")
    if alert.get("resolved_by"):
        lines.append(f"  resolved by hand by {alert['resolved_by']}")
    lines.append("history:" if history else "history: (none recorded)")
    for e in history:
        detail = dict(e["detail"] or {})
        who = e["actor"] + (f" ({detail.pop('name')})" if "name" in detail else "")
        via = detail.pop("via", None)
        said = detail.pop("text", None) or detail.pop("comment", None)
        extra = f"  {json.dumps(detail, ensure_ascii=False, sort_keys=True)}" if detail else ""
        lines.append(
            f"  {_t(e['at'])}  {e['kind']:<14} {who}{' via ' + via if via else ''}"
            f"{': ' + json.dumps(said, ensure_ascii=False) if said else ''}{extra}"
        )
    return lines


def _show(settings: Settings, args: argparse.Namespace) -> int:
    try:
        with connect(_url(settings)) as conn:
            alert, history = actions.alert_with_history(conn, args.id)
    except actions.AlertNotFound as exc:
        return _fail("alerts show", exc)
    print("\n".join(history_lines(alert, history)))
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from alerts.http import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.alerts_host,
        port=settings.alerts_port,
        log_level="info",
        log_config=None,
        access_log=False,  # signed links carry their token in the path: no access log
    )
    return 0


# ---------------------------------------------------------------- silences


def silence_line(doc: dict[str, Any]) -> str:
    matchers = " ".join(f"{m['name']}{'=~' if m['is_regex'] else '='}{m['value']}" for m in doc["matchers"])
    start, end = (datetime.fromisoformat(doc[k]) for k in ("starts_at", "ends_at"))
    expired = f", expired by {doc['expired_by']}" if doc.get("expired_by") else ""
    return (
        f"{doc['id']:>5} {doc['state']:8} {matchers}  {_t(start)} -> {_t(end)}"
        f"  by {doc['created_by']}{expired}: {doc['comment']}"
    )


def _silence_add(settings: Settings, args: argparse.Namespace) -> int:
    from alerts.silence import parse_duration, parse_matcher

    now = datetime.now(UTC)
    try:
        matchers = [parse_matcher(m) for m in args.matchers]
        start = parse_at(args.start) if args.start else now
        if (args.for_ is None) == (args.until is None):
            raise ValueError("give --for DURATION (e.g. 2h) or --until TIME")
        end = start + parse_duration(args.for_) if args.for_ else parse_at(args.until)
        with connect(_url(settings)) as conn:
            created = actions.create_silence(conn, matchers, start, end, _actor(args), args.comment, now)
    except ValueError as exc:
        return _fail("alerts silence add", exc)
    print(f"silence {created.id} created: {created} until {_t(created.ends_at)}")
    return 0


def _silence_list(settings: Settings, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    with connect(_url(settings)) as conn:
        found = actions.list_silences(conn, now, include_ended=args.all)
    for s in found:
        print(silence_line(s.as_doc(now)))
    if not found:
        print("no silences" + ("" if args.all else " active or pending (--all: ended ones too)"))
    return 0


def _silence_expire(settings: Settings, args: argparse.Namespace) -> int:
    try:
        with connect(_url(settings)) as conn:
            silence, changed = actions.expire_silence(conn, args.id, _actor(args), datetime.now(UTC))
    except actions.SilenceNotFound as exc:
        return _fail("alerts silence expire", exc)
    print(f"silence {args.id} {'expired' if changed else 'had already ended'} ({silence} until {_t(silence.ends_at)})")
    return 0


# ---------------------------------------------------------------- responder keys


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from alerts import responders

    with connect(_url(settings)) as conn:
        if args.key_action == "create":
            try:
                key, member = responders.create_key(conn, args.member, _actor(args))
            except responders.UnknownMember as exc:
                return _fail("responders keys create", exc)
            print(f"key for {member['team_id']}/{member['member_id']} ({member['name']}, {member['team_name']}):")
            print(f"  {key.key}")
            print(
                "Shown once: give it to them now (it is stored hashed). Revoke: baogong responders keys revoke "
                f"{key.prefix}"
            )
            return 0
        if args.key_action == "revoke":
            row = responders.revoke_key(conn, args.prefix, _actor(args), datetime.now(UTC))
            if row is None:
                return _fail("responders keys revoke", ValueError(f"no active key {args.prefix}"))
            print(f"key {row['prefix']} of {row['team_id']}/{row['member_id']} revoked at {_t(row['revoked_at'])}")
            return 0
        rows = responders.list_keys(conn, args.team)
    for r in rows:
        state = f"revoked {_t(r['revoked_at'])} by {r['revoked_by']}" if r["revoked_at"] else "active"
        if r["member_name"] is None:
            state += " (member no longer in the team: refused)"
        print(
            f"{r['prefix']}  {r['team_id']}/{r['member_id']:<12} {r['member_name'] or '-'}  "
            f"created {_t(r['created_at'])} by {r['created_by']}  {state}"
        )
    if not rows:
        print("no responder keys" + (f" in {args.team}" if args.team else ""))
    return 0


def _as(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as", dest="as_", metavar="NAME", help="who acts (recorded); default the OS user")


def register(actions_: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ack, resolve, comment, show, silence and serve to the `baogong alerts` subcommands."""
    p = actions_.add_parser("serve", help="the responder HTTP app (acknowledge, resolve, silences, signed links)")
    p.set_defaults(func=_serve)

    for name, help_ in (("ack", "acknowledge an alert: I am on it"), ("resolve", "resolve an alert by hand")):
        p = actions_.add_parser(name, help=help_)
        p.add_argument("id", type=int, metavar="ID")
        p.add_argument("--comment", metavar="TEXT", help="a note kept in the alert's history")
        _as(p)
        p.set_defaults(func=_act)

    p = actions_.add_parser("comment", help="add a comment to an alert's history")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("text", metavar="TEXT")
    _as(p)
    p.set_defaults(func=_act)

    p = actions_.add_parser("show", help="an alert and its history")
    p.add_argument("id", type=int, metavar="ID")
    p.set_defaults(func=_show)

    silence = actions_.add_parser("silence", help="silence pages about matching alerts for a while")
    verbs = silence.add_subparsers(dest="silence_action", required=True)
    p = verbs.add_parser("add", help="a new silence: every matcher must match")
    p.add_argument(
        "matchers", nargs="+", metavar="LABEL=VALUE", help="circle=C03 necessity=rice rule=shortage; =~ regex"
    )
    p.add_argument("--for", dest="for_", metavar="DURATION", help="how long: 30m, 2h, 1d")
    p.add_argument("--until", metavar="TIME", help="until when (ISO 8601; naive: Asia/Shanghai)")
    p.add_argument("--from", dest="start", metavar="TIME", help="from when (default now)")
    p.add_argument("--comment", required=True, metavar="TEXT", help="why (others read it)")
    _as(p)
    p.set_defaults(func=_silence_add)
    p = verbs.add_parser("list", help="active and pending silences")
    p.add_argument("--all", action="store_true", help="ended ones too (newest first)")
    p.set_defaults(func=_silence_list)
    p = verbs.add_parser("expire", help="end a silence now")
    p.add_argument("id", type=int, metavar="ID")
    _as(p)
    p.set_defaults(func=_silence_expire)


def register_responders(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `baogong responders keys create|list|revoke`."""
    responders = sub.add_parser("responders", help="responders' keys for the responder app")
    what = responders.add_subparsers(dest="what", required=True)
    keys = what.add_parser("keys", help="create, list, revoke responder keys")
    verbs = keys.add_subparsers(dest="key_action", required=True)
    p = verbs.add_parser("create", help="a new key for a team member, printed once")
    p.add_argument("member", metavar="TEAM/MEMBER", help="e.g. C03-team/sun.xs (or a member id in one team only)")
    _as(p)
    p.set_defaults(func=_keys)
    p = verbs.add_parser("list", help="every key (never the key itself)")
    p.add_argument("--team", metavar="TEAM")
    p.set_defaults(func=_keys)
    p = verbs.add_parser("revoke", help="revoke a key now")
    p.add_argument("prefix", metavar="PREFIX")
    _as(p)
    p.set_defaults(func=_keys)
