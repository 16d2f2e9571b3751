"""Circle levels: compute them from `streams.level_state`, store them; totals above circles.

`refresh_levels` computes the levels of every circle (or of some) as of `now` from a `LevelState` (the worker's
leader keeps one in memory and passes it; without one a fresh state is read) and stores them in one
transaction:

* `circle_levels_latest` gets every computed level (with the stream lag it was given);
* the history, `circle_levels`, gets a row only when the level changed (`history_due`: status, grade, any
  number but the unconfirmed stock's age) or when the series' last history row is `HISTORY_EVERY` old, so a
  quiet city writes one row a minute per series instead of one every pass, and a changing one loses nothing.

Safe to run twice at the same `now` (both writes are idempotent), and recomputing at the time of the latest
level replaces its raw observed rate instead of adding another. `live=True` marks a recomputation after new
reports between periodic passes (`streams.levels.recent_rates`).

`area_levels` computes the same levels for the areas above circles (each
district and the whole city) from `area_totals`, where an outlet serving
several circles counts once. They are not stored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from baogong.settings import Settings
from schema.db import QUERIES, transaction, translate
from schema.emergency import roman
from schema.emergency import rules as grade_rules
from streams.level_state import QUERIES as STATE_QUERIES
from streams.level_state import LevelState
from streams.levels import DEFAULT_DEMAND, CircleInputs, CircleLevel, DemandRule, Lag, Thresholds, compute_level

#: `CircleLevel.circle_id` of the whole city in `area_levels`.
CITY = "city"
#: A series gets a history row at least this often, changed or not.
HISTORY_EVERY = timedelta(minutes=1)


def demand_rule(settings: Settings) -> DemandRule:
    """The demand rule configured for this deployment (`BAOGONG_DEMAND_*`, `BAOGONG_OBSERVED_DEMAND_SHARE`)."""
    return DemandRule(
        multiplier=settings.demand_multiplier,
        min_observed_share=settings.observed_demand_share,
        median_of=settings.demand_median_of,
    )


def _inputs(r: dict[str, Any], key: str, previous: bool) -> CircleInputs:
    return CircleInputs(
        circle_id=key,
        necessity=r["necessity"],
        population=int(r["population"]),
        per_capita_daily=r["per_capita_daily"],
        thresholds=Thresholds(r["watch_days"], r["shortage_days"], r["critical_days"], r["min_coverage"]),
        stock=float(r["stock"]),
        outlets_expected=int(r["outlets_expected"]),
        outlets_fresh=int(r["outlets_fresh"]),
        stock_unconfirmed=float(r["stock_unconfirmed"]),
        oldest_unconfirmed=r["oldest_unconfirmed"],
        reports_fresh=int(r["reports_fresh"]),
        sold_24h=None if r["sold_24h"] is None else float(r["sold_24h"]),
        stock_with_sold=float(r["stock_with_sold"]),
        prev_observed_raw=tuple(r["prev_observed_raw"] or ()) if previous else (),
        prev_computed_at=r["prev_computed_at"] if previous else None,
        grade=r.get("grade"),
    )


@dataclass(frozen=True, slots=True)
class Stored:
    """A series' latest stored level, as `history_due` compares it."""

    computed_at: datetime
    recorded_at: datetime | None
    observed_raw: tuple[float, ...]
    values: tuple[object, ...]


def _values(
    status: str, grade: int | None, source: str, counts: tuple[int, int], *numbers: float | None
) -> tuple[object, ...]:
    return (status, grade, source, counts, *numbers)


def level_values(level: CircleLevel) -> tuple[object, ...]:
    """What makes a level different from another (never the unconfirmed stock's age, which grows every pass)."""
    return _values(
        level.status.value,
        level.grade,
        level.demand_source.value,
        (level.outlets_expected, level.outlets_fresh),
        level.stock,
        level.stock_unconfirmed,
        level.daily_demand,
        level.days_of_supply,
        level.coverage,
        level.coverage_stock,
    )


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif x != y:
            return False
    return True


def history_due(stored: Stored | None, level: CircleLevel, every: timedelta = HISTORY_EVERY) -> bool:
    """Whether `level` gets a history row: the series is new, changed, or its last row is `every` old."""
    if stored is None or stored.recorded_at is None:
        return True
    if level.computed_at - stored.recorded_at >= every:
        return True
    return not _same(stored.values, level_values(level))


async def refresh_levels(
    pool: AsyncConnectionPool,
    now: datetime,
    *,
    lag: Lag | None = None,
    demand: DemandRule = DEFAULT_DEMAND,
    state: LevelState | None = None,
    circles: Iterable[str] | None = None,
    live: bool = False,
) -> list[CircleLevel]:
    """Compute the levels of `circles` (every circle when None) for every necessity as of `now`, store them
    (module docstring) and return them.

    `state` is brought up to date first (`LevelState.sync`); a fresh one is read when none is given. `live`:
    only the circles whose stock that update changed (all of them after a reload; none: nothing is written
    and [] returned), as a recomputation between periodic passes. `lag` (how far behind the report stream
    is) is stored in every row written (NULL when not given). Raises `schema.db.DatabaseError` (nothing written).
    """
    state = state if state is not None else LevelState()
    try:
        async with pool.connection() as reader:
            touched = await state.sync(reader)
    except Exception as exc:
        raise _database_error(exc) from exc
    chosen: Iterable[int] | None = None
    if circles is not None:
        chosen = [i for i in (state.circle_index(c) for c in circles) if i is not None]
    elif live and not touched.everything:
        if not touched.circles:
            return []
        chosen = touched.circles
    async with transaction(pool) as conn, conn.cursor() as cur:
        await cur.execute(STATE_QUERIES["grades"], {"now": now})
        grades = {r["circle_id"]: int(r["grade"]) for r in await cur.fetchall()}
        ids = None if chosen is None else [state.circles[i] for i in chosen]
        await cur.execute(STATE_QUERIES["previous_levels"], {"circles": ids})
        stored = {(r["circle_id"], r["necessity"]): _stored(r) for r in await cur.fetchall()}
        previous = {key: (s.observed_raw, s.computed_at) for key, s in stored.items()}
        levels = [
            compute_level(i, now, rule=demand, lag=lag, live=live) for i in state.inputs(now, grades, chosen, previous)
        ]
        if levels:
            await cur.execute(QUERIES["create_level_staging"])
            async with cur.copy(QUERIES["copy_level_staging"]) as copy:
                for level in levels:
                    before = stored.get((level.circle_id, level.necessity))
                    due = history_due(before, level)
                    recorded = level.computed_at if due else None if before is None else before.recorded_at
                    await copy.write_row((*_row(level), recorded, due))
            await cur.execute(QUERIES["insert_history_from_staging"])
            await cur.execute(QUERIES["upsert_latest_from_staging"])
    return levels


def _row(level: CircleLevel) -> tuple[object, ...]:
    """`level` in the staging table's column order, up to `grade`."""
    return (
        level.computed_at,
        level.circle_id,
        level.necessity,
        level.stock,
        level.stock_unconfirmed,
        level.unconfirmed_age_s,
        level.daily_demand,
        level.demand_source.value,
        level.demand_observed,
        list(level.observed_raw) or None,
        level.days_of_supply,
        level.coverage,
        level.coverage_stock,
        level.outlets_expected,
        level.outlets_fresh,
        level.status.value,
        level.lag_reports,
        level.lag_s,
        level.grade,
    )


def _stored(r: dict[str, Any]) -> Stored:
    return Stored(
        computed_at=r["computed_at"],
        recorded_at=r["recorded_at"],
        observed_raw=tuple(r["demand_observed_recent"] or ()),
        values=_values(
            r["status"],
            r["grade"],
            r["demand_source"],
            (r["outlets_expected"], r["outlets_fresh"]),
            r["stock"],
            r["stock_unconfirmed"],
            r["daily_demand"],
            r["days_of_supply"],
            r["coverage"],
            r["coverage_stock"],
        ),
    )


def _database_error(exc: Exception) -> Exception:
    import psycopg

    return translate(exc) if isinstance(exc, psycopg.Error) else exc


async def area_levels(
    pool: AsyncConnectionPool, now: datetime, *, demand: DemandRule = DEFAULT_DEMAND
) -> list[CircleLevel]:
    """Levels of the areas above circles as of `now`: `circle_id` is `CITY` or a district's name.

    Every outlet counts once (in its own community's district and in the city),
    whatever circles it serves. Observed demand is this moment's rate (no history to take a median over).
    Raises `schema.db.DatabaseError`.
    """
    async with transaction(pool) as conn, conn.cursor() as cur:
        await cur.execute(QUERIES["area_totals"], {"now": now})
        rows = await cur.fetchall()
    return [
        compute_level(_inputs(r, CITY if r["district"] is None else r["district"], False), now, rule=demand)
        for r in rows
    ]


def level_message(circle_id: str, levels: list[CircleLevel]) -> dict[str, object]:
    """The `supply.circle-levels.v1` message for one circle: all its necessities at one time.

    `computed_at` (ISO 8601) and `lag` (`{"reports", "seconds"}`, null when unknown) are the
    computation's; per necessity: confirmed `stock`, `stock_unconfirmed` with `unconfirmed_age_s`,
    `daily_demand` and its `demand_source`, `days_of_supply`, both coverages, outlet counts, `status`.
    `emergency` is null in normal times, else the grade the levels were computed under (`grade` as a
    Roman numeral, `grade_number` 1..4) and how often each outlet is expected to report each necessity
    under it (`report_every_h`).
    """
    first = levels[0] if levels else None
    emergency = None if first is None else grade_rules(first.grade)
    lag = (
        None
        if first is None or first.lag_reports is None or first.lag_s is None
        else {"reports": first.lag_reports, "seconds": first.lag_s}
    )
    return {
        "circle_id": circle_id,
        "computed_at": first.computed_at.isoformat() if first else None,
        "lag": lag,
        "emergency": None
        if emergency is None or first is None
        else {
            "grade": roman(first.grade),
            "grade_number": first.grade,
            "report_every_h": {
                lv.necessity: emergency.report_every(lv.necessity).total_seconds() / 3600 for lv in levels
            },
        },
        "necessities": {
            lv.necessity: {
                "stock": lv.stock,
                "stock_unconfirmed": lv.stock_unconfirmed,
                "unconfirmed_age_s": lv.unconfirmed_age_s,
                "daily_demand": lv.daily_demand,
                "demand_source": lv.demand_source.value,
                "days_of_supply": lv.days_of_supply,
                "coverage": lv.coverage,
                "coverage_stock": lv.coverage_stock,
                "outlets_expected": lv.outlets_expected,
                "outlets_fresh": lv.outlets_fresh,
                "status": lv.status.value,
            }
            for lv in levels
        },
    }
