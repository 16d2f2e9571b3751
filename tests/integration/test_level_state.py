"""The in-memory level state against the reference query, on random cities in the real database.

`streams.level_state.LevelState` computes what `circle_inputs` (schema/queries.sql, with `counted_stock(at)`)
computes; here both see the same random stock — fresh, stale, from the future, from inactive outlets, from before
an outlet's reactivation, exactly at a window's edge — under random emergencies, and must agree on every input of
every circle and necessity. Then changes made after a first read (new stock, a deactivated outlet) are picked up
by the next `sync`, and only the circles they touch are reported.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schema.db import QUERIES, connect, make_pool
from schema.emergency import freshness_caps
from schema.seed import seed_demo
from streams.circles import _inputs
from streams.level_state import LevelState, Touched
from streams.levels import CircleInputs

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _random_city(url: str, seed: int) -> None:
    rng = random.Random(seed)
    seed_demo(url, progress=lambda _line: None)
    with connect(url) as conn:
        outlets = [r["id"] for r in conn.execute("SELECT id FROM outlets ORDER BY id")]
        necs = {
            r["code"]: r["freshness_minutes"] for r in conn.execute("SELECT code, freshness_minutes FROM necessities")
        }
        circles = [r["id"] for r in conn.execute("SELECT id, district FROM circles ORDER BY id")]
        district = conn.execute("SELECT district FROM circles ORDER BY id LIMIT 1").fetchone()
        rows = []
        for outlet in rng.sample(outlets, len(outlets) * 2 // 3):
            for code in rng.sample(sorted(necs), rng.randint(1, 4)):
                window = timedelta(minutes=necs[code])
                age = rng.choice(
                    [
                        timedelta(minutes=rng.uniform(0, 30)),
                        window,  # exactly at the edge: still fresh
                        window + timedelta(microseconds=1),  # just past it
                        timedelta(hours=rng.uniform(0, 72)),
                        -timedelta(minutes=2),  # from the future (within the clock skew)
                    ]
                )
                sold = None if rng.random() < 0.4 else round(rng.uniform(0, 50), 3)
                rows.append((outlet, code, round(rng.uniform(0, 800), 3), sold, NOW - age))
        with conn.cursor().copy(
            "COPY outlet_stock (outlet_id, necessity, quantity, sold_24h, reported_at) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        for outlet in rng.sample(outlets, 30):
            conn.execute("UPDATE outlets SET active = false WHERE id = %s", (outlet,))
        for outlet in rng.sample(outlets, 30):  # reactivated an hour ago: older stock no longer counts
            conn.execute("UPDATE outlets SET active_since = %s WHERE id = %s", (NOW - timedelta(hours=1), outlet))
        at = NOW - timedelta(hours=2)
        declare = "INSERT INTO emergencies (scope_kind, scope_id, grade, reason, declared_by, declared_at) "
        conn.execute(declare + "VALUES ('circle', %s, 2, 'test', 'test', %s)", (rng.choice(circles), at))
        assert district is not None
        conn.execute(declare + "VALUES ('district', %s, 3, 'test', 'test', %s)", (district["district"], at))


def _reference(url: str, now: datetime) -> dict[tuple[str, str], CircleInputs]:
    with connect(url) as conn:
        rows = conn.execute(QUERIES["circle_inputs"], {"now": now, **freshness_caps()}).fetchall()
    return {(r["circle_id"], r["necessity"]): _inputs(r, r["circle_id"], False) for r in rows}


def _state(url: str, now: datetime, state: LevelState | None = None) -> tuple[LevelState, Touched, list[CircleInputs]]:
    async def run() -> tuple[LevelState, Touched, list[CircleInputs]]:
        pool = make_pool(url)
        await pool.open(wait=True, timeout=30)
        try:
            mine = state or LevelState()
            async with pool.connection() as conn:
                touched = await mine.sync(conn)
                grades = {
                    r["circle_id"]: r["grade"]
                    for r in await (
                        await conn.execute("SELECT circle_id, grade FROM circle_grades(%s)", (now,))
                    ).fetchall()
                }
            return mine, touched, mine.inputs(now, grades)
        finally:
            await pool.close()

    return asyncio.run(run())


def _compare(got: list[CircleInputs], want: dict[tuple[str, str], CircleInputs]) -> None:
    assert {(i.circle_id, i.necessity) for i in got} == set(want)
    for mine in got:
        ref = want[(mine.circle_id, mine.necessity)]
        for name in (
            "population",
            "per_capita_daily",
            "thresholds",
            "outlets_expected",
            "outlets_fresh",
            "oldest_unconfirmed",
            "reports_fresh",
            "grade",
        ):
            assert getattr(mine, name) == getattr(ref, name), (mine.circle_id, mine.necessity, name)
        for name in ("stock", "stock_unconfirmed", "stock_with_sold"):
            assert getattr(mine, name) == pytest.approx(getattr(ref, name), rel=1e-12, abs=1e-9), name
        assert (mine.sold_24h is None) == (ref.sold_24h is None)
        if ref.sold_24h is not None:
            assert mine.sold_24h == pytest.approx(ref.sold_24h, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_state_gives_what_the_reference_query_gives(database_url: str, seed: int) -> None:
    _random_city(database_url, seed)
    state, touched, got = _state(database_url, NOW)
    assert touched.everything
    want = _reference(database_url, NOW)
    assert any(i.stock_unconfirmed > 0 for i in want.values()) and any(i.grade for i in want.values())
    _compare(got, want)

    later = NOW + timedelta(minutes=40)  # some stock ages out: nothing read, the state judges it again
    _, touched, got = _state(database_url, later, state)
    assert not touched
    _compare(got, _reference(database_url, later))

    with connect(database_url) as conn:
        row: dict[str, Any] | None = conn.execute(
            "SELECT s.outlet_id, s.necessity, oc.circle_id FROM outlet_stock s "
            "JOIN outlet_circles oc USING (outlet_id) JOIN outlets o ON o.id = s.outlet_id AND o.active LIMIT 1"
        ).fetchone()
        assert row is not None
        conn.execute(
            "UPDATE outlet_stock SET quantity = quantity + 1000, reported_at = %s "
            "WHERE outlet_id = %s AND necessity = %s",
            (later, row["outlet_id"], row["necessity"]),
        )
        circles = {
            r["circle_id"]
            for r in conn.execute("SELECT circle_id FROM outlet_circles WHERE outlet_id = %s", (row["outlet_id"],))
        }
    _, touched, got = _state(database_url, later, state)
    assert not touched.everything and {state.circles[c] for c in touched.circles} == circles
    _compare(got, _reference(database_url, later))

    with connect(database_url) as conn:  # reference data changed: everything is read again
        conn.execute("UPDATE outlets SET active = false WHERE id = %s", (row["outlet_id"],))
    _, touched, got = _state(database_url, later, state)
    assert touched.everything
    _compare(got, _reference(database_url, later))
