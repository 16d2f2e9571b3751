"""Circle levels: read the inputs, compute with `streams.levels`, store them.

`refresh_levels` is called on a timer by the stream worker; it reads every
circle's inputs in one query, computes levels in Python (pure), and writes the
history row and the latest row in one transaction. Safe to run concurrently
or twice: both writes are idempotent.
"""

from __future__ import annotations

from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from schema.db import QUERIES, transaction
from streams.levels import CircleInputs, CircleLevel, Thresholds, compute_level


async def refresh_levels(pool: AsyncConnectionPool, now: datetime, demand_multiplier: float = 1.0) -> list[CircleLevel]:
    async with transaction(pool) as conn, conn.cursor() as cur:
        await cur.execute(QUERIES["circle_inputs"], {"now": now})
        rows = await cur.fetchall()
        levels = [
            compute_level(
                CircleInputs(
                    circle_id=r["circle_id"],
                    necessity=r["necessity"],
                    population=int(r["population"]),
                    per_capita_daily=r["per_capita_daily"],
                    thresholds=Thresholds(r["watch_days"], r["shortage_days"], r["critical_days"], r["min_coverage"]),
                    stock=float(r["stock"]),
                    outlets_expected=int(r["outlets_expected"]),
                    outlets_fresh=int(r["outlets_fresh"]),
                ),
                now,
                demand_multiplier,
            )
            for r in rows
        ]
        params = [_params(level) for level in levels]
        if params:
            await cur.executemany(QUERIES["insert_circle_level"], params)
            await cur.executemany(QUERIES["upsert_circle_level_latest"], params)
    return levels


def _params(level: CircleLevel) -> dict[str, object]:
    return {
        "computed_at": level.computed_at,
        "circle_id": level.circle_id,
        "necessity": level.necessity,
        "stock": level.stock,
        "daily_demand": level.daily_demand,
        "days_of_supply": level.days_of_supply,
        "coverage": level.coverage,
        "outlets_expected": level.outlets_expected,
        "outlets_fresh": level.outlets_fresh,
        "status": level.status.value,
    }


def level_message(circle_id: str, levels: list[CircleLevel]) -> dict[str, object]:
    """The `supply.circle-levels.v1` message for one circle: all its necessities at one time."""
    return {
        "circle_id": circle_id,
        "computed_at": levels[0].computed_at.isoformat() if levels else None,
        "necessities": {
            lv.necessity: {
                "stock": lv.stock,
                "daily_demand": lv.daily_demand,
                "days_of_supply": lv.days_of_supply,
                "coverage": lv.coverage,
                "status": lv.status.value,
            }
            for lv in levels
        },
    }
