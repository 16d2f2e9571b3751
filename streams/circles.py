"""Circle levels: read the inputs, compute with `streams.levels`, store them; totals above circles.

`refresh_levels` is called on a timer by the stream worker; it reads every
circle's inputs in one query (`circle_inputs`), computes levels in Python
(pure), and writes the history row and the latest row in one transaction,
each with the stream lag it was given. Safe to run concurrently or twice at
the same `now`: both writes are idempotent, and recomputing at the time of
the latest level replaces its raw observed rate instead of adding another.

`area_levels` computes the same levels for the areas above circles (each
district and the whole city) from `area_totals`, where an outlet serving
several circles counts once. They are not stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from baogong.settings import Settings
from schema.db import QUERIES, transaction
from schema.emergency import freshness_caps, roman
from schema.emergency import rules as grade_rules
from streams.levels import DEFAULT_DEMAND, CircleInputs, CircleLevel, DemandRule, Lag, Thresholds, compute_level

#: `CircleLevel.circle_id` of the whole city in `area_levels`.
CITY = "city"


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


async def refresh_levels(
    pool: AsyncConnectionPool,
    now: datetime,
    *,
    lag: Lag | None = None,
    demand: DemandRule = DEFAULT_DEMAND,
) -> list[CircleLevel]:
    """Compute every circle's level of every necessity as of `now` and store them; return them.

    `lag` (how far behind the report stream is) is stored in every row written
    (NULL when not given). Raises `schema.db.DatabaseError` (nothing written).
    """
    async with transaction(pool) as conn, conn.cursor() as cur:
        await cur.execute(QUERIES["circle_inputs"], {"now": now, **freshness_caps()})
        rows = await cur.fetchall()
        levels = [compute_level(_inputs(r, r["circle_id"], True), now, rule=demand, lag=lag) for r in rows]
        params = [_params(level) for level in levels]
        if params:
            await cur.executemany(QUERIES["insert_circle_level"], params)
            await cur.executemany(QUERIES["upsert_circle_level_latest"], params)
    return levels


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


def _params(level: CircleLevel) -> dict[str, object]:
    return {
        "computed_at": level.computed_at,
        "circle_id": level.circle_id,
        "necessity": level.necessity,
        "stock": level.stock,
        "stock_unconfirmed": level.stock_unconfirmed,
        "unconfirmed_age_s": level.unconfirmed_age_s,
        "daily_demand": level.daily_demand,
        "demand_source": level.demand_source.value,
        "demand_observed": level.demand_observed,
        "observed_raw": list(level.observed_raw) or None,
        "days_of_supply": level.days_of_supply,
        "coverage": level.coverage,
        "coverage_stock": level.coverage_stock,
        "outlets_expected": level.outlets_expected,
        "outlets_fresh": level.outlets_fresh,
        "status": level.status.value,
        "lag_reports": level.lag_reports,
        "lag_s": level.lag_s,
        "grade": level.grade,
    }


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
