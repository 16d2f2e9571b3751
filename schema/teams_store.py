"""Teams in the database: load a `Directory` (for routing and on-call), import a teams file (YAML or members CSV).

Contract of `import_teams` / `apply_teams_file`:

- A whole-file problem raises `schema.teams_file.TeamFileError` before
  anything is written: fix the file and run again.
- Each team block (YAML) or row (CSV) is checked on its own against the
  stored teams and the registry (`schema.teams_file`); a bad one is reported
  by line, field and reason and costs only itself: the stored version stays.
- Changed teams are written whole (the team row, then its members,
  rotation, overrides and channels replaced) in one transaction with the
  routing tree, if the file has a good one. Teams not in the file are left
  alone. Re-importing the same file writes nothing and reports every team
  unchanged (and the tree unchanged).
- With `dry_run` the same checks and counts are made and nothing is written.

Database errors surface as `schema.db.DatabaseError` subclasses (nothing written).
Statements live in `schema/teams.sql`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from schema.db import SCHEMA_DIR, Row, connect, load_queries
from schema.teams import (
    Channel,
    Directory,
    Member,
    Override,
    Rotation,
    RouteTree,
    Team,
    tree_from_doc,
    tree_to_doc,
)
from schema.teams_file import ChannelCheck, Checked, Reference, Rejection, check, read_teams_file

QUERIES = load_queries(SCHEMA_DIR / "teams.sql")
_LOADS = (
    "load_teams",
    "load_team_members",
    "load_team_rotations",
    "load_team_overrides",
    "load_team_channels",
    "load_route_tree",
    "load_circle_districts",
)


@dataclass
class ImportResult:
    """What an import did (or, with `dry_run`, would do)."""

    path: Path | None
    dry_run: bool
    kind: str  # 'yaml' or 'csv'
    rows_read: int = 0
    created: list[str] = field(default_factory=list)  # team ids
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    routes: str = "absent"  # absent | created | updated | unchanged | rejected
    elapsed_s: float = 0.0

    @property
    def rejected_rows(self) -> int:
        return len({(r.line, r.subject) for r in self.rejected if r.subject != "routes"})


# ---------------------------------------------------------------- loading


def assemble(rows: Mapping[str, list[Row]]) -> Directory:
    """A Directory from the rows of the `load_*` statements (keyed by statement name)."""
    members: dict[str, list[Member]] = {}
    order: dict[str, list[tuple[int, str]]] = {}
    for r in rows["load_team_members"]:
        members.setdefault(r["team_id"], []).append(Member(r["member_id"], r["name"], r["phone"], r["email"]))
        if r["rotation_position"] is not None:
            order.setdefault(r["team_id"], []).append((r["rotation_position"], r["member_id"]))
    rotations = {
        r["team_id"]: Rotation(
            tuple(m for _, m in sorted(order.get(r["team_id"], []))),
            r["shift"],
            r["handoff"],
            r["start_date"],
            r["time_zone"],
        )
        for r in rows["load_team_rotations"]
    }
    overrides: dict[str, list[Override]] = {}
    for r in rows["load_team_overrides"]:
        overrides.setdefault(r["team_id"], []).append(Override(r["member_id"], r["starts_at"], r["ends_at"]))
    channels: dict[str, list[Channel]] = {}
    for r in rows["load_team_channels"]:
        channels.setdefault(r["team_id"], []).append(Channel(r["name"], r["kind"], r["config"]))
    teams = {
        r["id"]: Team(
            r["id"],
            r["name"],
            r["kind"],
            r["scope"],
            tuple(members.get(r["id"], ())),
            tuple(channels.get(r["id"], ())),
            rotations.get(r["id"]),
            tuple(sorted(overrides.get(r["id"], ()), key=lambda o: (o.start, o.member))),
            r["escalates_to"],
        )
        for r in rows["load_teams"]
    }
    tree_rows = rows["load_route_tree"]
    tree = tree_from_doc(tree_rows[0]["tree"]) if tree_rows else RouteTree()
    districts = {r["id"]: r["district"] for r in rows["load_circle_districts"]}
    return Directory(teams, tree, districts)


def load_directory(conn: psycopg.Connection[Row]) -> Directory:
    """Every team, the routing tree (the default tree if none was imported) and each circle's district."""
    return assemble({name: conn.execute(QUERIES[name]).fetchall() for name in _LOADS})


async def load_directory_async(conn: psycopg.AsyncConnection[Row]) -> Directory:
    """`load_directory` on an async connection (the dispatcher's pool); a handful of small reads."""
    rows: dict[str, list[Row]] = {}
    for name in _LOADS:
        cur = await conn.execute(QUERIES[name])
        rows[name] = await cur.fetchall()
    return assemble(rows)


def _reference(conn: psycopg.Connection[Row]) -> Reference:
    circles = conn.execute(QUERIES["team_reference_circles"]).fetchall()
    return Reference(
        circles=frozenset(r["id"] for r in circles),
        communities=frozenset(r["id"] for r in conn.execute(QUERIES["team_reference_communities"]).fetchall()),
        districts=frozenset(r["district"] for r in circles if r["district"]),
    )


# ---------------------------------------------------------------- writing


def _write_team(cur: psycopg.Cursor[Row], team: Team) -> None:
    scope_column = {"circle_team": "circle_id", "circle_owner": "circle_id", "community": "community_id"}.get(
        team.kind, "district" if team.kind == "district_bureau" else None
    )
    scope: dict[str, str | None] = {"circle_id": None, "community_id": None, "district": None}
    if scope_column:
        scope[scope_column] = team.scope
    cur.execute(
        QUERIES["upsert_team"],
        {"id": team.id, "name": team.name, "kind": team.kind, "escalates_to": team.escalates_to, **scope},
    )
    for statement in ("delete_team_members", "delete_team_rotation", "delete_team_channels"):
        cur.execute(QUERIES[statement], {"team_id": team.id})
    rotation = team.rotation.members if team.rotation else ()
    cur.executemany(
        QUERIES["insert_team_member"],
        [
            {
                "team_id": team.id,
                "member_id": m.id,
                "position": i,
                "name": m.name,
                "phone": m.phone,
                "email": m.email,
                "rotation_position": rotation.index(m.id) if m.id in rotation else None,
            }
            for i, m in enumerate(team.members)
        ],
    )
    if team.rotation is not None:
        r = team.rotation
        cur.execute(
            QUERIES["insert_team_rotation"],
            {
                "team_id": team.id,
                "shift": r.shift,
                "handoff": r.handoff,
                "start_date": r.start,
                "time_zone": r.time_zone,
            },
        )
    cur.executemany(
        QUERIES["insert_team_override"],
        [{"team_id": team.id, "member_id": o.member, "starts_at": o.start, "ends_at": o.end} for o in team.overrides],
    )
    cur.executemany(
        QUERIES["insert_team_channel"],
        [
            {"team_id": team.id, "name": c.name, "position": i, "kind": c.kind, "config": Jsonb(dict(c.config))}
            for i, c in enumerate(team.channels)
        ],
    )


def apply_teams_file(
    conn: psycopg.Connection[Row],
    kind: str,
    parsed: Any,
    *,
    dry_run: bool = False,
    path: Path | None = None,
    channel_check: ChannelCheck | None = None,
) -> ImportResult:
    """Check what `read_teams_file` read against the stored teams and write the good part, in `conn`'s transaction.

    Does not commit: the caller's transaction decides (`import_teams` commits;
    the demo seed writes the demo city and its teams in one transaction).
    `channel_check` checks each channel fully (`alerts.notify.parse_channel`; see
    `schema.teams_file.ChannelCheck`).
    """
    if not dry_run:
        conn.execute(QUERIES["lock_teams"])
    stored = load_directory(conn)
    checked: Checked = check(kind, parsed, stored.teams, _reference(conn), channel_check)
    result = ImportResult(path, dry_run, checked.kind, checked.rows_read, rejected=checked.rejected)
    changed: list[Team] = []
    for _, team in checked.teams:
        before = stored.teams.get(team.id)
        if before is None:
            result.created.append(team.id)
        elif before == team:
            result.unchanged.append(team.id)
            continue
        else:
            result.updated.append(team.id)
        changed.append(team)
    if checked.tree is not None:
        rows = conn.execute(QUERIES["load_route_tree"]).fetchall()
        doc = tree_to_doc(checked.tree)
        result.routes = "created" if not rows else "unchanged" if rows[0]["tree"] == doc else "updated"
    elif any(r.subject == "routes" for r in checked.rejected):
        result.routes = "rejected"
    if not dry_run:
        with conn.cursor() as cur:
            for team in changed:
                _write_team(cur, team)
            if checked.tree is not None and result.routes != "unchanged":
                cur.execute(QUERIES["upsert_route_tree"], {"tree": Jsonb(tree_to_doc(checked.tree))})
    return result


def import_teams(
    url: str, path: Path, *, dry_run: bool = False, channel_check: ChannelCheck | None = None
) -> ImportResult:
    """Read, check and write the teams file at `path` into the database at `url` (see the module docstring).

    Blocks for the import (milliseconds for a city's teams). Raises TeamFileError
    (nothing written) or schema.db.DatabaseError.
    """
    started = time.perf_counter()
    kind, parsed = read_teams_file(path)
    with connect(url) as conn:
        result = apply_teams_file(conn, kind, parsed, dry_run=dry_run, path=Path(path), channel_check=channel_check)
    result.elapsed_s = time.perf_counter() - started
    return result


def team_counts(conn: psycopg.Connection[Row]) -> dict[str, int]:
    """Rows in `teams` and `team_members` (for the seed's summary)."""
    row = conn.execute(QUERIES["count_team_rows"]).fetchone() or {}
    return {k: int(v) for k, v in row.items()}


#: The demo city's responder teams (synthetic people, local webhook channels), seeded by `baogong seed demo`.
DEMO_TEAMS = SCHEMA_DIR / "demo_teams.yaml"


def seed_demo_teams(conn: psycopg.Connection[Row], path: Path = DEMO_TEAMS) -> ImportResult:
    """Import the demo teams file in `conn`'s transaction (after the demo city: teams name its circles).

    Idempotent like every import. A rejection here is a bug in the shipped file: ValueError, nothing kept.
    """
    kind, parsed = read_teams_file(path)
    result = apply_teams_file(conn, kind, parsed, path=path)
    if result.rejected or result.routes == "rejected":
        raise ValueError(f"{path} does not fit the demo city: " + "; ".join(str(r) for r in result.rejected[:5]))
    return result


def set_override(
    url: str, team_id: str, member_id: str, start: datetime, end: datetime | None, *, delete: bool = False
) -> str:
    """Put `member_id` of `team_id` on call from `start` until `end` (or, with `delete`, remove that override).

    Returns 'created', 'updated' (same member and start: the end moved), 'deleted' or 'absent'
    (nothing to delete). Raises ValueError for an unknown team or member, a naive time, or an
    end not after the start; schema.db.DatabaseError as usual. A teams YAML that lists the team's
    `overrides` replaces them all on its next import.
    """
    if start.tzinfo is None or (end is not None and end.tzinfo is None):
        raise ValueError("override times must carry a time zone")
    if not delete and (end is None or end <= start):
        raise ValueError("until must be after from")
    with connect(url) as conn:
        conn.execute(QUERIES["lock_teams"])
        team = load_directory(conn).teams.get(team_id)
        if team is None:
            raise ValueError(f"no team {team_id!r} (`baogong teams list` shows them)")
        if team.member(member_id) is None:
            known = ", ".join(m.id for m in team.members) or "(none)"
            raise ValueError(f"{team_id} has no member {member_id!r}; its members: {known}")
        params = {"team_id": team_id, "member_id": member_id, "starts_at": start, "ends_at": end}
        if delete:
            done = conn.execute(QUERIES["delete_team_override"], params).rowcount
            outcome = "deleted" if done else "absent"
        else:
            row = conn.execute(QUERIES["upsert_team_override"], params).fetchone()
            outcome = "created" if row and row["created"] else "updated"
        if outcome != "absent":
            conn.execute(QUERIES["touch_team"], {"team_id": team_id})
    return outcome
