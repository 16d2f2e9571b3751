"""Teams on a real PostgreSQL: import, re-import, what a bad block or row costs, the demo seed, the CLI process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.notify import parse_channel
from alerts.route import on_call, route
from baogong.settings import Settings
from schema.db import connect
from schema.seed import seed_demo, seed_reference
from schema.teams_file import TeamFileError
from schema.teams_store import import_teams, load_directory

SH = ZoneInfo("Asia/Shanghai")
TABLES = ("teams", "team_members", "team_rotations", "team_overrides", "team_channels", "team_routes")

TEAMS = """\
teams:
  - id: A-team
    name: A 圈应急保供队
    kind: circle_team
    circle: A
    escalates_to: A-owner
    members:
      - {id: wang, name: 王, phone: 138-0000-0101, email: wang@example.invalid}
      - {id: li, name: 李, phone: 138-0000-0102}
      - {id: zhao, name: 赵, phone: 138-0000-0103}
    channels:
      - {kind: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET-KEY"}
      - {kind: sms, url: "https://sms.example.invalid/send"}
    rotation: {members: [wang, li, zhao], shift: 24h, handoff: "08:00", start: 2026-11-01}
    overrides:
      - {member: zhao, from: 2026-11-25 22:00, until: 2026-11-26 06:00}
  - id: A-owner
    name: A 圈圈主
    kind: circle_owner
    circle: A
    escalates_to: district
    members: [{id: zhou, name: 周, phone: 138-0000-0111}]
  - id: district
    name: 北林区商务局
    kind: district_bureau
    district: 北林区
    escalates_to: city
    members: [{id: wu, name: 吴}]
  - id: city
    name: 市商务局
    kind: city_bureau
    members: [{id: zheng, name: 郑}]
routes:
  teams: ["@circle_team"]
  fallback: [city]
  routes:
    - matchers: ['severity="critical"']
      teams: ["@circle_team", "@circle_owner"]
"""


@pytest.fixture
def url(database_url: str) -> str:
    """Circles A and B in 北林区, one community each."""
    with connect(database_url) as conn:
        seed_reference(conn)
        conn.execute(
            "INSERT INTO circles (id, name, center_lat, center_lon, district) VALUES "
            "('A', 'A', 46.65, 126.97, '北林区'), ('B', 'B', 46.66, 126.99, '北林区')"
        )
        conn.execute(
            "INSERT INTO communities (id, name, street_office, population, circle_id) VALUES "
            "('A-1', 'a', 'x', 1000, 'A'), ('B-1', 'b', 'x', 1000, 'B')"
        )
    return database_url


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the team tables, `updated_at` included (so a rewrite of the same values shows)."""
    with connect(url) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}


def test_import_stores_what_routing_and_on_call_read(url: str, tmp_path: Path) -> None:
    result = import_teams(url, write(tmp_path / "teams.yaml", TEAMS), channel_check=parse_channel)
    assert (result.created, result.updated, result.rejected, result.routes) == (
        ["A-team", "A-owner", "district", "city"],
        [],
        [],
        "created",
    )
    with connect(url) as conn:
        d = load_directory(conn)
        positions = conn.execute(
            "SELECT member_id, rotation_position FROM team_members WHERE team_id = 'A-team' ORDER BY position"
        ).fetchall()
    assert [(r["member_id"], r["rotation_position"]) for r in positions] == [("wang", 0), ("li", 1), ("zhao", 2)]
    assert d.circle_districts == {"A": "北林区", "B": "北林区"}
    alert = {"alertname": "SupplyShortage", "circle": "A", "necessity": "rice", "severity": "high"}
    assert route(d, alert) == ["A-team"]
    assert route(d, alert | {"severity": "critical"}) == ["A-team", "A-owner"]
    assert route(d, alert | {"circle": "B"}) == ["city"], "no team for B: the fallback"
    team = d.teams["A-team"]
    assert [m.id for m in on_call(team, datetime(2026, 11, 25, 12, tzinfo=SH))] == ["wang"]  # 24 days in: 24 % 3
    assert [m.id for m in on_call(team, datetime(2026, 11, 26, 1, tzinfo=SH))] == ["zhao"], "the override"
    sms = parse_channel(team.channels[1].settings(on_call(team, datetime(2026, 11, 25, 12, tzinfo=SH))))
    assert sms.phones == ("13800000101",), "SMS goes to whoever is on call"


def test_reimport_changes_nothing(url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "teams.yaml", TEAMS)
    import_teams(url, path)
    before = snapshot(url)
    again = import_teams(url, path)
    assert (again.created, again.updated, again.routes) == ([], [], "unchanged")
    assert again.unchanged == ["A-team", "A-owner", "district", "city"]
    assert snapshot(url) == before, "not even updated_at moved"


def test_a_bad_block_costs_only_its_team_and_the_stored_version_stays(url: str, tmp_path: Path) -> None:
    import_teams(url, write(tmp_path / "v1.yaml", TEAMS))
    before = snapshot(url)
    v2 = (
        TEAMS.replace("name: A 圈应急保供队", "name: A 圈应急保供队（新）")
        .replace("phone: 138-0000-0102", "phone: 138-0000-01")  # A-team: bad phone
        .replace("name: 市商务局", "name: 绥化市商务局")  # city: fine
        .replace("members: [{id: zhou, name: 周, phone: 138-0000-0111}]", "members: []")  # A-owner: fine
    )
    result = import_teams(url, write(tmp_path / "v2.yaml", v2))
    assert [str(r) for r in result.rejected] == [
        "line 9: A-team: members[1].phone: '138-0000-01': a mobile number has 11 digits"
    ]
    assert (result.updated, result.unchanged, result.rejected_rows) == (["A-owner", "city"], ["district"], 1)
    after = snapshot(url)
    assert after["team_members"] == [r for r in before["team_members"] if r["team_id"] != "A-owner"]
    with connect(url) as conn:
        names = {r["id"]: r["name"] for r in conn.execute("SELECT id, name FROM teams").fetchall()}
    assert names["A-team"] == "A 圈应急保供队" and names["city"] == "绥化市商务局"


def test_members_csv_a_bad_row_costs_only_that_row(url: str, tmp_path: Path) -> None:
    import_teams(url, write(tmp_path / "teams.yaml", TEAMS))
    csv = write(
        tmp_path / "members.csv",
        "team,id,name,phone,email\n"
        "A-team,li,李四,138-0000-0199,li@example.invalid\n"
        "A-team,sun,孙,not a phone,\n"
        "city,qian,钱,138-0000-0121,\n",
    )
    result = import_teams(url, csv)
    assert [(r.line, r.field) for r in result.rejected] == [(3, "phone")]
    assert (result.kind, result.rows_read, result.updated) == ("csv", 3, ["A-team", "city"])
    with connect(url) as conn:
        d = load_directory(conn)
    assert [(m.id, m.name, m.phone) for m in d.teams["A-team"].members][1] == ("li", "李四", "13800000199")
    assert [m.id for m in d.teams["city"].members] == ["zheng", "qian"]
    assert d.teams["A-team"].rotation is not None and d.teams["A-team"].overrides, "rotation and overrides kept"
    assert import_teams(url, csv).updated == [], "again: nothing to change"


def test_dry_run_and_whole_file_errors_write_nothing(url: str, tmp_path: Path) -> None:
    dry = import_teams(url, write(tmp_path / "teams.yaml", TEAMS), dry_run=True)
    assert (len(dry.created), dry.routes) == (4, "created")
    assert all(rows == [] for rows in snapshot(url).values())
    with pytest.raises(TeamFileError, match=r"broken\.yaml: line 3: not valid YAML"):
        import_teams(url, write(tmp_path / "broken.yaml", "teams:\n  - id: [\n"))
    assert all(rows == [] for rows in snapshot(url).values())


def test_the_demo_seed_ships_its_teams_and_reseeding_keeps_them(database_url: str) -> None:
    result = seed_demo(database_url, progress=lambda line: None)
    assert (result.counts["teams"], result.counts["team_members"]) == (24, 65)
    with connect(database_url) as conn:
        d = load_directory(conn)
    labels = {"alertname": "SupplyShortage", "circle": "C03", "necessity": "rice", "severity": "critical"}
    assert route(d, labels) == ["C03-team", "C03-owner"]
    before = snapshot(database_url)
    seed_demo(database_url, progress=lambda line: None)
    assert snapshot(database_url) == before


def baogong(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **Settings.from_env(database_url=url).env()}
    return subprocess.run(
        [sys.executable, "-m", "baogong.cli", "teams", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_cli_imports_and_shows_where_a_page_goes(url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "teams.yaml", TEAMS.replace("{id: li, name: 李, phone: 138-0000-0102}", "{id: li}"))
    done = baogong("import", str(path), url=url)
    assert done.returncode == 3, done.stderr
    assert "line 9: A-team: members[1].name: missing" in done.stdout
    assert "created        3 teams  A-owner, district, city" in done.stdout
    assert baogong("import", str(write(tmp_path / "teams.yaml", TEAMS)), url=url).returncode == 0

    shown = baogong("route", "circle=A", "necessity=rice", "severity=critical", "--at", "2026-11-26 01:00", url=url)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "labels: alertname=SupplyShortage circle=A district=北林区 necessity=rice severity=critical"
    assert "→ A-team  A 圈应急保供队  [应急保供队伍, A]  via @circle_team at root.routes[0]" in lines
    assert "    on call: 赵 138-0000-0103  (override; since 2026-11-25 22:00, until 2026-11-26 06:00)" in lines
    assert "             then 王 138-0000-0101 until 2026-11-26 08:00" in lines
    assert "    escalates to: A-owner → district → city" in lines
    assert "→ A-owner  A 圈圈主  [圈主, A]  via @circle_owner at root.routes[0]" in lines
    assert "SECRET-KEY" not in shown.stdout and "qyapi.weixin.qq.com" in shown.stdout

    oncall = baogong("oncall", "A-team", "--at", "2026-11-25T12:00:00+08:00", url=url)
    assert oncall.returncode == 0, oncall.stderr
    assert "    王 138-0000-0101  (rotation; since 2026-11-25 08:00, until 2026-11-25 22:00)" in oncall.stdout
    assert "    then 赵 138-0000-0103 until 2026-11-26 06:00" in oncall.stdout

    listed = baogong("list", "--at", "2026-11-25 12:00", url=url)
    assert listed.returncode == 0, listed.stderr
    assert (
        "A-team  A 圈应急保供队  [应急保供队伍, A]  3 members, rotation of 3: 1d shifts, handoff 08:00" in listed.stdout
    )
    assert '    [0] severity="critical" → @circle_team, @circle_owner' in listed.stdout
    assert "SECRET-KEY" not in listed.stdout

    nowhere = baogong("route", "alertname=PipelineStalled", url=url)
    assert nowhere.returncode == 0 and "→ city" in nowhere.stdout, "the fallback"
    assert baogong("oncall", "nobody", url=url).returncode == 2
    assert baogong("route", "circle", url=url).returncode == 2


def test_an_override_by_hand_and_the_async_loader(url: str, tmp_path: Path) -> None:
    import asyncio

    import psycopg
    from psycopg.rows import dict_row

    from schema.teams_store import load_directory_async, set_override

    path = write(tmp_path / "teams.yaml", TEAMS)
    import_teams(url, path)
    start, end = datetime(2026, 11, 27, 20, tzinfo=SH), datetime(2026, 11, 28, 9, tzinfo=SH)
    assert set_override(url, "A-team", "li", start, end) == "created"
    assert set_override(url, "A-team", "li", start, end + (end - start)) == "updated"
    with pytest.raises(ValueError, match="has no member 'ghost'; its members: wang, li, zhao"):
        set_override(url, "A-team", "ghost", start, end)
    with pytest.raises(ValueError, match="until must be after from"):
        set_override(url, "A-team", "li", end, start)

    async def load() -> Any:
        async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
            return await load_directory_async(conn)

    d = asyncio.run(load())
    with connect(url) as conn:
        assert load_directory(conn) == d, "the async loader reads the same directory"
    assert [m.id for m in on_call(d.teams["A-team"], datetime(2026, 11, 28, 12, tzinfo=SH))] == ["li"]
    assert import_teams(url, path).updated == ["A-team"], "the file lists overrides: they replace the hand-made one"
    assert set_override(url, "A-team", "li", start, None, delete=True) == "absent"
