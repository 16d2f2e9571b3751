"""`baogong tasks …`: the supply tasks of acknowledged shortages, moved by hand.

    baogong tasks list [--open] [--limit N]     newest first; --open: not closed
    baogong tasks show ID [--json]              target, suggested sources (distance, quantity), the times
                                                paged -> acknowledged -> dispatched -> delivered -> recovered
    baogong tasks dispatch ID [--as WHO]        the team sent the stock on its way
    baogong tasks deliver ID [--as WHO]         it arrived
    baogong tasks review [--days N]             after-action review: each step's duration, per closed task

WHO defaults to `operator:<login name>`. Times are shown in Asia/Shanghai.
Exit status: 0 done; 2 no such task or a bad argument; 3 the move is
impossible from the task's state (the reason is printed; nothing changed).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts import tasks_store
from alerts.tasks import MoveRefused, State, Task, TaskNotFound, durations, task_doc
from baogong.settings import Settings
from schema.db import connect

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOT_FOUND = 2
REFUSED = 3


def _t(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def _qty(value: float | None, unit: str) -> str:
    return "unknown" if value is None else f"{value:,.0f} {unit}".rstrip()


def _span(seconds: float | None) -> str:
    if seconds is None:
        return ""
    sign, minutes = "+" if seconds >= 0 else "-", round(abs(seconds) / 60)
    return f"({sign}{minutes // 60} h {minutes % 60:02d} min)" if minutes >= 60 else f"({sign}{minutes} min)"


def render_line(t: Task) -> str:
    return (
        f"{t.id:>4}  {t.state:10} {t.circle_id} {t.necessity}  target {_qty(t.target_quantity, t.unit)}, "
        f"{len(t.suggestions)} source(s)  alert {t.alert_id}  opened {_t(t.opened_at)} by {t.opened_by}"
    )


def render(t: Task) -> str:
    """One task in full: target, suggested sources nearest first, and its times with each step's duration."""
    days = f" (back to {t.target_days:g} days of supply)" if t.target_days is not None else ""
    lines = [
        f"supply task {t.id}: circle {t.circle_id}, {t.necessity} — {t.state}",
        f"  alert {t.alert_id}; target {_qty(t.target_quantity, t.unit)}{days}",
    ]
    if t.suggestions:
        lines.append("  suggested sources (nearest first):")
        for i, s in enumerate(t.suggestions, 1):
            lines.append(
                f"    {i}. {s['outlet_name']} ({s['outlet_id']}, circle {s['circle_id']})  "
                f"{s['distance_km']:.1f} km  {_qty(s['quantity'], t.unit)}  (spare {_qty(s['spare'], t.unit)})"
            )
        covered = sum(float(s["quantity"]) for s in t.suggestions)
        if t.target_quantity is not None and covered < t.target_quantity - 1e-9:
            lines.append(f"    still missing: {_qty(t.target_quantity - covered, t.unit)} (no more spare nearby)")
    else:
        lines.append("  suggested sources: none with spare stock nearby")
    took = durations(t)
    lines.append("  times:")
    for step, at, by, span in (
        ("paged", t.paged_at, None, None),
        ("acknowledged", t.acknowledged_at, t.opened_by, took["page_to_ack_s"]),
        ("dispatched", t.dispatched_at, t.dispatched_by, took["ack_to_dispatched_s"]),
        ("delivered", t.delivered_at, t.delivered_by, None),
        ("recovered", t.recovered_at, None, took["dispatched_to_recovered_s"]),
        ("closed", t.closed_at, None, None),
    ):
        who = f" by {by}" if by and at else ""
        lines.append(f"    {step:13} {_t(at)}{who} {_span(span)}".rstrip())
    return "\n".join(lines)


def _list(settings: Settings, args: argparse.Namespace) -> int:
    with connect(settings.database_url.get_secret_value()) as conn:
        found = tasks_store.list_tasks(conn, open_only=args.open, limit=args.limit)
    print("\n".join(render_line(t) for t in found) if found else "no supply tasks")
    return 0


def _show(settings: Settings, args: argparse.Namespace) -> int:
    try:
        with connect(settings.database_url.get_secret_value()) as conn:
            task = tasks_store.get_task(conn, args.id)
    except TaskNotFound as exc:
        print(f"baogong tasks: {exc}", file=sys.stderr)
        return NOT_FOUND
    print(json.dumps(task_doc(task), ensure_ascii=False, indent=2) if args.json else render(task))
    return 0


def _move(to: State) -> Any:
    def move(settings: Settings, args: argparse.Namespace) -> int:
        actor = args.actor or f"operator:{getpass.getuser()}"
        try:
            with connect(settings.database_url.get_secret_value()) as conn:
                task = tasks_store.advance(conn, args.id, to, actor, datetime.now(UTC))
        except TaskNotFound as exc:
            print(f"baogong tasks: {exc}", file=sys.stderr)
            return NOT_FOUND
        except MoveRefused as exc:
            print(f"baogong tasks: {exc}", file=sys.stderr)
            return REFUSED
        print(f"task {task.id} {to} by {actor} at {_t(task.moved(to)[0])}")
        return 0

    return move


def _review(settings: Settings, args: argparse.Namespace) -> int:
    since = datetime.now(UTC) - timedelta(days=args.days)
    with connect(settings.database_url.get_secret_value()) as conn:
        rows = tasks_store.review(conn, since)
    if not rows:
        print(f"no supply task closed in the last {args.days:g} day(s)")
    for r in rows:
        steps = "  ".join(
            f"{label} {_span(r[key]).strip('()') or '-'}"
            for label, key in (
                ("page->ack", "page_to_ack_s"),
                ("ack->dispatched", "ack_to_dispatched_s"),
                ("dispatched->recovered", "dispatched_to_recovered_s"),
            )
        )
        print(f"{r['id']:>4}  {r['circle_id']} {r['necessity']}  closed {_t(r['closed_at'])}  {steps}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `tasks` and its actions to the `baogong` subcommands; each sets `func(settings, args) -> int`."""
    tasks = sub.add_parser("tasks", help="supply tasks of acknowledged shortages: list, show, dispatch, deliver")
    actions = tasks.add_subparsers(dest="action", required=True)

    p = actions.add_parser("list", help="supply tasks, newest first")
    p.add_argument("--open", action="store_true", help="only those not closed")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=_list)

    p = actions.add_parser("show", help="a task's target, suggested sources and times")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=_show)

    for state in (State.DISPATCHED, State.DELIVERED):
        verb = "dispatch" if state is State.DISPATCHED else "deliver"
        p = actions.add_parser(verb, help=f"mark the task {state}")
        p.add_argument("id", type=int, metavar="ID")
        p.add_argument("--as", dest="actor", metavar="WHO", help="who did it (default operator:<login name>)")
        p.set_defaults(func=_move(state))

    p = actions.add_parser("review", help="after-action review: how long each step took, per closed task")
    p.add_argument("--days", type=float, default=30.0, help="tasks closed in the last N days (30)")
    p.set_defaults(func=_review)
