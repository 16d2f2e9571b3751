"""`baogong teams …`: responder teams, who is on call, and where a page would go — checkable by hand.

    baogong teams import FILE [--dry-run] [--show N]   a teams YAML, or a members CSV
    baogong teams list [--at TIME]                      every team, who is on call, the routing tree
    baogong teams oncall [TEAM] [--at TIME]             who is on call, until when, who is next
    baogong teams route LABEL=VALUE… [--at TIME]        which teams a page goes to, who of them is on call
    baogong teams override TEAM MEMBER --from T --until T   put MEMBER on call instead (--delete: remove it)

TIME is ISO 8601 (`2026-11-25 08:00`; naive means Asia/Shanghai); default now.
`teams route` takes the alert's labels (`circle=C03 necessity=rice
severity=critical`); `alertname` defaults to SupplyShortage. Channel URLs
and secrets are never printed: a channel shows its name, kind and host.

Exit status: 0 fine; 3 when an import rejected some blocks or rows (the good
ones were written), or `route` found no team; 2 when the file as a whole is
unusable or an argument is wrong.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from alerts.route import duty, escalation_chain, explain, routing_labels
from baogong.settings import Settings
from schema.teams import DEFAULT_TIME_ZONE, KIND_NAMES, Directory, Member, Route, Team
from schema.teams_file import TeamFileError
from schema.teams_store import ImportResult

USAGE_ERROR = 2
SOME_REJECTED = 3
DEFAULT_SHOW = 100
DEFAULT_ALERTNAME = "SupplyShortage"
SHANGHAI = ZoneInfo(DEFAULT_TIME_ZONE)


def parse_at(text: str | None, now: datetime | None = None) -> datetime:
    """`--at`: ISO 8601, naive = Asia/Shanghai; None = now. Raises ValueError with a hint."""
    if text is None:
        return (now or datetime.now(UTC)).astimezone(SHANGHAI)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--at {text!r} is not a date and time (e.g. 2026-11-25 08:00)") from None
    return value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value


def phone(digits: str) -> str:
    """13800000301 -> 138-0000-0301 (other numbers as stored)."""
    return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}" if len(digits) == 11 and digits.startswith("1") else digits


def _when(moment: datetime | None, tz: ZoneInfo) -> str:
    return "open-ended" if moment is None else moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _person(m: Member) -> str:
    return f"{m.name} {phone(m.phone)}".strip() if m.phone else m.name


def _scope(team: Team) -> str:
    return f"{KIND_NAMES.get(team.kind, team.kind)}{f', {team.scope}' if team.scope else ''}"


def oncall_lines(team: Team, at: datetime) -> list[str]:
    """Who of `team` is on call at `at`, since when and until when, and who comes next."""
    tz = ZoneInfo(team.time_zone)
    now = duty(team, at)
    if not now.members:
        return ["nobody (the team has no members)"]
    why = {"override": "override", "rotation": "rotation", "everyone": "no rotation: every member"}[now.source]
    span = [f"{word} {_when(moment, tz)}" for word, moment in (("since", now.since), ("until", now.until)) if moment]
    lines = [f"{', '.join(_person(m) for m in now.members)}  ({why}{'; ' if span else ''}{', '.join(span)})"]
    if now.until is not None:
        then = duty(team, now.until)
        lines.append(f"then {', '.join(_person(m) for m in then.members) or 'nobody'} until {_when(then.until, tz)}")
    return lines


def _team_lines(directory: Directory, team: Team, at: datetime, indent: str = "    ") -> list[str]:
    lines = [
        f"{indent}on call: {line}" if i == 0 else f"{indent}         {line}"
        for i, line in enumerate(oncall_lines(team, at))
    ]
    if team.channels:
        lines.append(f"{indent}channels: {'; '.join(c.label for c in team.channels)}")
    else:
        lines.append(f"{indent}channels: none (nobody can be told: add one)")
    chain = escalation_chain(directory, team.id)[1:]
    if chain:
        lines.append(f"{indent}escalates to: {' → '.join(chain)}")
    return lines


def route_tree_lines(route: Route, depth: int = 1, index: int | None = None) -> list[str]:
    """The tree as people read it: matchers → teams, children indented."""
    pad = "  " * depth
    what = " ".join(str(m) for m in route.matchers) if index is not None else "root (every alert)"
    teams = "(inherited)" if route.teams is None else ", ".join(route.teams) or "(none)"
    head = (
        f"{pad}{f'[{index}] ' if index is not None else ''}{what} → {teams}{'  (continue)' if route.continue_ else ''}"
    )
    lines = [head]
    for i, child in enumerate(route.routes):
        lines += route_tree_lines(child, depth + 1, i)
    return lines


# ---------------------------------------------------------------- the actions (pure: directory in, lines out)


def list_lines(directory: Directory, at: datetime) -> list[str]:
    lines = [f"{len(directory.teams)} teams, on call at {_when(at, SHANGHAI)} (Asia/Shanghai)"]
    for team in directory.teams.values():
        rotation = ""
        if team.rotation is not None:
            r = team.rotation
            hours = r.shift.total_seconds() / 3600
            length = f"{hours / 24:g}d" if hours % 24 == 0 else f"{hours:g}h"
            rotation = f", rotation of {len(r.members)}: {length} shifts, handoff {r.handoff:%H:%M}"
        lines.append(f"{team.id}  {team.name}  [{_scope(team)}]  {len(team.members)} members{rotation}")
        lines += _team_lines(directory, team, at)
    lines.append("routing tree (first matching child wins unless it says continue):")
    lines += route_tree_lines(directory.tree.root)
    if directory.tree.fallback:
        lines.append(f"  fallback (when nothing else reaches a team) → {', '.join(directory.tree.fallback)}")
    return lines


def route_lines(directory: Directory, labels: Mapping[str, str], at: datetime) -> tuple[list[str], bool]:
    """What `teams route` prints, and whether any team answers."""
    used = routing_labels(directory, labels)
    shown = " ".join(f"{k}={v}" for k, v in sorted(used.items()))
    lines = [f"labels: {shown}", f"at {_when(at, SHANGHAI)} (Asia/Shanghai)"]
    hits = explain(directory, labels)
    if not hits:
        lines.append(
            "no team answers for these labels (no route reaches a team and there is no fallback): "
            "the dispatcher keeps BAOGONG_WEBHOOK_URLS as its last resort"
        )
        return lines, False
    for hit in hits:
        team = directory.teams[hit.team]
        lines.append(f"→ {team.id}  {team.name}  [{_scope(team)}]  via {hit.via} at {hit.route}")
        lines += _team_lines(directory, team, at)
    return lines, True


def import_lines(result: ImportResult, show: int = DEFAULT_SHOW) -> list[str]:
    dry = " (dry run: what an import would do)" if result.dry_run else ""
    unit = "team blocks" if result.kind == "yaml" else "member rows"
    lines = [f"{result.path}: {result.rows_read:,} {unit} read{dry}"]
    for label, ids in (("created", result.created), ("updated", result.updated), ("unchanged", result.unchanged)):
        listed = f"  {', '.join(ids[:8])}{' …' if len(ids) > 8 else ''}" if ids and label != "unchanged" else ""
        lines.append(f"  {label:<10} {len(ids):>5} teams{listed}")
    lines.append(f"  {'rejected':<10} {result.rejected_rows:>5} {unit}")
    if result.kind == "yaml":
        lines.append(f"  routing tree: {result.routes}")
    if result.rejected:
        kept = "the stored version stays" + ("" if result.dry_run else "; the good ones are in")
        lines.append(f"rejected (fix these and import the file again; {kept}):")
        problems = result.rejected if show <= 0 else result.rejected[:show]
        lines += [f"  {r}" for r in problems]
        if len(problems) < len(result.rejected):
            lines.append(f"  … and {len(result.rejected) - len(problems):,} more (--show 0 lists them all)")
    written = len(result.created) + len(result.updated)
    if result.dry_run:
        lines.append(f"dry run: nothing was written ({result.elapsed_s:.2f} s)")
    else:
        lines.append(f"{written} teams written in {result.elapsed_s:.2f} s")
    return lines


# ---------------------------------------------------------------- wiring


def _directory(settings: Settings) -> Directory:
    from schema.db import connect
    from schema.teams_store import load_directory

    with connect(settings.database_url.get_secret_value()) as conn:
        return load_directory(conn)


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from alerts.notify import parse_channel
    from schema.teams_store import import_teams

    try:
        result = import_teams(
            settings.database_url.get_secret_value(), args.file, dry_run=args.dry_run, channel_check=parse_channel
        )
    except TeamFileError as exc:
        print(f"baogong teams import: {exc}; nothing was written", file=sys.stderr)
        return USAGE_ERROR
    for line in import_lines(result, args.show):
        print(line)
    return SOME_REJECTED if result.rejected else 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    at = parse_at(args.at)
    for line in list_lines(_directory(settings), at):
        print(line)
    return 0


def _oncall(settings: Settings, args: argparse.Namespace) -> int:
    at = parse_at(args.at)
    directory = _directory(settings)
    if args.team is not None and args.team not in directory.teams:
        print(f"baogong teams oncall: no team {args.team!r} (`baogong teams list` shows them)", file=sys.stderr)
        return USAGE_ERROR
    print(f"on call at {_when(at, SHANGHAI)} (Asia/Shanghai)")
    for team in directory.teams.values():
        if args.team is None or team.id == args.team:
            print(f"{team.id}  {team.name}  [{_scope(team)}]")
            for line in oncall_lines(team, at):
                print(f"    {line}")
    return 0


def parse_labels(items: list[str]) -> dict[str, str]:
    """`circle=C03 severity=critical` -> labels; alertname defaults to SupplyShortage. ValueError if malformed."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r} is not LABEL=VALUE (e.g. circle=C03)")
        labels[key.strip()] = value.strip()
    labels.setdefault("alertname", DEFAULT_ALERTNAME)
    return labels


def _route(settings: Settings, args: argparse.Namespace) -> int:
    try:
        labels = parse_labels(args.labels)
        at = parse_at(args.at)
    except ValueError as exc:
        print(f"baogong teams route: {exc}", file=sys.stderr)
        return USAGE_ERROR
    lines, found = route_lines(_directory(settings), labels, at)
    for line in lines:
        print(line)
    return 0 if found else SOME_REJECTED


def _override(settings: Settings, args: argparse.Namespace) -> int:
    from schema.teams_store import set_override

    try:
        start = parse_at(args.start)
        end = None if args.until is None else parse_at(args.until)
        outcome = set_override(
            settings.database_url.get_secret_value(), args.team, args.member, start, end, delete=args.delete
        )
    except ValueError as exc:
        print(f"baogong teams override: {exc}", file=sys.stderr)
        return USAGE_ERROR
    span = f"from {_when(start, SHANGHAI)}" + (f" until {_when(end, SHANGHAI)}" if end else "")
    print(f"{args.team}: override of {args.member} {span}: {outcome}")
    if outcome != "absent":
        team = _directory(settings).teams[args.team]
        print(f"on call then: {oncall_lines(team, start)[0]}")
    return 0 if outcome != "absent" else SOME_REJECTED


def _at_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--at", metavar="TIME", help="a moment, ISO 8601 (naive: Asia/Shanghai); default now")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `teams` and its actions to the `baogong` subcommands; each sets `func(settings, args) -> int`."""
    teams = sub.add_parser("teams", help="responder teams, on-call rotations and routing")
    actions = teams.add_subparsers(dest="action", required=True)

    p = actions.add_parser("import", help="add and update teams from a YAML file (or members from a CSV)")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--dry-run", action="store_true", help="check the file and print the summary; write nothing")
    p.add_argument(
        "--show", type=int, default=DEFAULT_SHOW, metavar="N", help=f"problems to list ({DEFAULT_SHOW}; 0: all)"
    )
    p.set_defaults(func=_import)

    p = actions.add_parser("list", help="every team, who is on call, and the routing tree")
    _at_argument(p)
    p.set_defaults(func=_list)

    p = actions.add_parser("oncall", help="who is on call (one team or all), until when, who is next")
    p.add_argument("team", nargs="?", metavar="TEAM")
    _at_argument(p)
    p.set_defaults(func=_oncall)

    p = actions.add_parser("override", help="put a member on call instead of the rotation, for a while")
    p.add_argument("team", metavar="TEAM")
    p.add_argument("member", metavar="MEMBER")
    p.add_argument("--from", dest="start", required=True, metavar="TIME", help="ISO 8601; naive: Asia/Shanghai")
    p.add_argument("--until", metavar="TIME", help="ISO 8601, after --from (not needed with --delete)")
    p.add_argument("--delete", action="store_true", help="remove the override of MEMBER that starts at --from")
    p.set_defaults(func=_override)

    p = actions.add_parser("route", help="which teams a page with these labels goes to, and who is on call")
    p.add_argument("labels", nargs="+", metavar="LABEL=VALUE", help="e.g. circle=C03 necessity=rice severity=critical")
    _at_argument(p)
    p.set_defaults(func=_route)
