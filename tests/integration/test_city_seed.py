"""`baogong seed city` on a real PostgreSQL: the tables, refusing to overwrite, --replace, levels computable."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime

from schema.catalogue import NECESSITIES
from schema.city_seed import read_city
from schema.db import connect, make_pool
from streams.circles import refresh_levels
from streams.levels import CircleLevel


def _baogong(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baogong.cli", *args],
        env={**os.environ, "BAOGONG_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _counts(url: str) -> dict[str, int]:
    with connect(url) as conn:
        return {
            table: conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]  # type: ignore[index]
            for table in ("circles", "communities", "outlets", "outlet_circles", "suppliers", "api_keys")
        }


def _levels(url: str, now: datetime) -> list[CircleLevel]:
    async def run() -> list[CircleLevel]:
        pool = make_pool(url)
        await pool.open(wait=True, timeout=30)
        try:
            return await refresh_levels(pool, now)
        finally:
            await pool.close()

    return asyncio.run(run())


def test_seed_city_writes_the_city_refuses_to_overwrite_and_levels_are_computable(database_url: str) -> None:
    done = _baogong(database_url, "seed", "city", "--outlets", "2000", "--circles", "8", "--seed", "3")
    assert done.returncode == 0, done.stderr
    assert "generating outlets: 2,000 / 2,000" in done.stdout
    counts = _counts(database_url)
    assert counts["circles"] == 8 and counts["communities"] == 32 and counts["outlets"] == 2_000
    assert counts["outlet_circles"] >= 2_000
    with connect(database_url) as conn:
        orphans = conn.execute(
            "SELECT count(*) AS n FROM outlets o "
            "WHERE NOT EXISTS (SELECT 1 FROM outlet_circles oc WHERE oc.outlet_id = o.id)"
        ).fetchone()
    assert orphans is not None and orphans["n"] == 0

    # The same database again: refused, nothing changed.
    again = _baogong(database_url, "seed", "city", "--outlets", "1000", "--circles", "4")
    assert again.returncode == 2
    assert "already holds a city" in again.stderr and "--replace" in again.stderr
    assert _counts(database_url) == counts

    now = datetime.now(UTC)
    levels = _levels(database_url, now)
    assert sorted((lv.circle_id, lv.necessity) for lv in levels) == sorted(
        (f"C{i:03d}", n.code) for i in range(1, 9) for n in NECESSITIES
    )
    assert all(lv.outlets_expected > 0 for lv in levels)  # every circle has carriers of every necessity

    # --replace: a new city, and the old one's levels gone with it.
    replaced = _baogong(database_url, "seed", "city", "--outlets", "1000", "--circles", "4", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    counts = _counts(database_url)
    assert counts["circles"] == 4 and counts["outlets"] == 1_000
    with connect(database_url) as conn:
        left = conn.execute("SELECT count(*) AS n FROM circle_levels_latest").fetchone()
    assert left is not None and left["n"] == 0
    city = read_city(database_url)
    assert len(city.outlets) == 1_000 and len(city.circles) == 4
    assert all(o.circle_ids for o in city.outlets)
