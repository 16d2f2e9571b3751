"""One price pass over the database: daily medians and current prices in, price levels and gouging leads out.

`refresh` (blocking; `baogong prices refresh`) and `refresh_async` (the worker leader's timer,
streams/agents/prices.py) run the same pass in ONE transaction as of the caller's `now`:

1. read the daily medians before today (`price_history`: raw prices for the last `RAW_DAYS` days, the
   prices_daily rollup before that and for last year's weeks — so the rollup must be refreshed by
   `baogong maintain` for older history to count) and the current prices (`price_current`);
2. grade every scope (each circle, and '*' the city) and necessity that has either (`schema.prices.grade`);
   one with history but no fresh price is stored stale (UNKNOWN), never normal;
3. for every spiking circle, list the outlets far above its median (`schema.prices.gouging`) as leads;
4. upsert today's row of each level and each lead (idempotent: a pass run twice stores the same).

Raises `schema.db.DatabaseError` (nothing written) when the database fails.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg_pool import AsyncConnectionPool

from schema.db import SCHEMA_DIR, Row, load_queries, transaction
from schema.prices import CITY, PriceGrade, PriceRules, gouging, grade, parse_plan

QUERIES = load_queries(SCHEMA_DIR / "prices.sql")
TZ = ZoneInfo("Asia/Shanghai")
#: Days before today whose medians come from the raw prices (late reports still change them).
RAW_DAYS = 8


@dataclass(frozen=True, slots=True)
class PriceLevel:
    """One scope and necessity graded as of `computed_at` (stored as the row of `day`)."""

    circle_id: str  # CITY for city-wide
    necessity: str
    day: date
    computed_at: datetime
    outlets: int
    grade: PriceGrade

    def row(self) -> dict[str, Any]:
        g = self.grade
        return {
            "circle_id": self.circle_id,
            "necessity": self.necessity,
            "day": self.day,
            "computed_at": self.computed_at,
            "price": g.price,
            "outlets": self.outlets,
            "baseline": g.baseline,
            "baseline_kind": g.baseline_kind,
            "history_days": g.history_days,
            "sd": g.sd,
            "deviation": g.deviation,
            "phase": g.phase.value,
            "rise_day": g.rise_day,
            "rise_week": g.rise_week,
            "plan_grade": g.plan_grade,
            "stale": g.stale,
            "spiking": g.spiking,
        }


@dataclass(frozen=True, slots=True)
class Lead:
    outlet_id: str
    circle_id: str
    necessity: str
    price: float
    circle_price: float
    phase: str
    plan_grade: str

    @property
    def ratio(self) -> float:
        return self.price / self.circle_price


@dataclass
class PricePass:
    now: datetime
    levels: list[PriceLevel] = field(default_factory=list)
    leads: list[Lead] = field(default_factory=list)

    def by_circle(self) -> dict[str, list[PriceLevel]]:
        out: dict[str, list[PriceLevel]] = defaultdict(list)
        for level in self.levels:
            out[level.circle_id].append(level)
        return dict(out)


def rules_from(settings: Any) -> PriceRules:
    """The grading rules of a `baogong.settings.Settings` (its `price_*` fields)."""
    return PriceRules(
        window_days=settings.price_window_days,
        min_history_days=settings.price_min_history_days,
        sd_floor=settings.price_sd_floor,
        plan=parse_plan(settings.price_plan_grades),
        gouging_ratio=settings.price_gouging_ratio,
    )


def shanghai_day(at: datetime) -> date:
    return at.astimezone(TZ).date()


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=TZ)


def history_params(now: datetime, rules: PriceRules) -> dict[str, datetime]:
    today = shanghai_day(now)
    lag = rules.seasonal_lag_days
    return {
        "today": _day_start(today),
        "raw_from": _day_start(today - timedelta(days=RAW_DAYS)),
        "from": _day_start(today - timedelta(days=rules.window_days)),
        "ly_from": _day_start(today - timedelta(days=lag + rules.window_days)),
        "ly_to": _day_start(today - timedelta(days=lag - 4)),
    }


def grade_all(now: datetime, history: Iterable[Row], current: Iterable[Row], rules: PriceRules) -> list[PriceLevel]:
    """Grade every scope and necessity found in `history` (price_history rows) or `current` (price_current)."""
    today = shanghai_day(now)
    days: dict[tuple[str, str], dict[date, float]] = defaultdict(dict)
    for r in history:
        if r["median"] is not None and r["day"] < today:
            days[(r["circle_id"], r["necessity"])][r["day"]] = float(r["median"])
    prices: dict[tuple[str, str], tuple[float, int]] = {
        (r["circle_id"], r["necessity"]): (float(r["price"]), int(r["outlets"])) for r in current
    }
    out = []
    for key in sorted(set(days) | set(prices)):
        price, outlets = prices.get(key, (None, 0))
        out.append(PriceLevel(key[0], key[1], today, now, outlets, grade(price, days.get(key, {}), today, rules)))
    return out


def spiking_circles(levels: Sequence[PriceLevel]) -> list[PriceLevel]:
    return [lv for lv in levels if lv.circle_id != CITY and lv.grade.spiking and lv.grade.price is not None]


def find_leads(levels: Sequence[PriceLevel], outlets: Iterable[Row], rules: PriceRules) -> list[Lead]:
    """The outlets (price_outlets_latest rows) far above their spiking circle's median."""
    spiking = {(lv.circle_id, lv.necessity): lv for lv in spiking_circles(levels)}
    out = []
    for r in outlets:
        lv = spiking.get((r["circle_id"], r["necessity"]))
        if lv is None or lv.grade.price is None:
            continue
        if gouging(float(r["price"]), lv.grade.price, True, rules):
            out.append(
                Lead(
                    r["outlet_id"],
                    r["circle_id"],
                    r["necessity"],
                    float(r["price"]),
                    lv.grade.price,
                    lv.grade.phase.value,
                    lv.grade.plan_grade,
                )
            )
    return sorted(out, key=lambda lead: (lead.circle_id, lead.necessity, -lead.ratio, lead.outlet_id))


def _lead_params(lead: Lead, day: date, at: datetime) -> dict[str, Any]:
    return {
        "outlet_id": lead.outlet_id,
        "necessity": lead.necessity,
        "circle_id": lead.circle_id,
        "day": day,
        "at": at,
        "price": lead.price,
        "circle_price": lead.circle_price,
        "ratio": lead.ratio,
        "phase": lead.phase,
        "plan_grade": lead.plan_grade,
    }


def _fresh(now: datetime, fresh_h: float) -> dict[str, datetime]:
    return {"now": now, "fresh_from": now - timedelta(hours=fresh_h)}


def _wanted(levels: Sequence[PriceLevel]) -> dict[str, list[str]]:
    spiking = spiking_circles(levels)
    return {"circles": [lv.circle_id for lv in spiking], "necessities": [lv.necessity for lv in spiking]}


def refresh(conn: psycopg.Connection[Row], now: datetime, rules: PriceRules, fresh_h: float) -> PricePass:
    """One pass as of `now` on `conn` (committed on return when the connection is not in a transaction)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(QUERIES["price_history"], history_params(now, rules))
        history = cur.fetchall()
        cur.execute(QUERIES["price_current"], _fresh(now, fresh_h))
        out = PricePass(now, grade_all(now, history, cur.fetchall(), rules))
        wanted = _wanted(out.levels)
        if wanted["circles"]:
            cur.execute(QUERIES["price_outlets_latest"], {**wanted, **_fresh(now, fresh_h)})
            out.leads = find_leads(out.levels, cur.fetchall(), rules)
        for level in out.levels:
            cur.execute(QUERIES["upsert_price_level"], level.row())
        for lead in out.leads:
            cur.execute(QUERIES["upsert_price_lead"], _lead_params(lead, shanghai_day(now), now))
    return out


async def refresh_async(pool: AsyncConnectionPool[Any], now: datetime, rules: PriceRules, fresh_h: float) -> PricePass:
    """`refresh` for the worker's event loop: the same pass on a pooled connection."""
    async with transaction(pool) as conn, conn.cursor() as cur:
        await cur.execute(QUERIES["price_history"], history_params(now, rules))
        history = await cur.fetchall()
        await cur.execute(QUERIES["price_current"], _fresh(now, fresh_h))
        out = PricePass(now, grade_all(now, history, await cur.fetchall(), rules))
        wanted = _wanted(out.levels)
        if wanted["circles"]:
            await cur.execute(QUERIES["price_outlets_latest"], {**wanted, **_fresh(now, fresh_h)})
            out.leads = find_leads(out.levels, await cur.fetchall(), rules)
        await cur.executemany(QUERIES["upsert_price_level"], [lv.row() for lv in out.levels])
        if out.leads:
            await cur.executemany(
                QUERIES["upsert_price_lead"], [_lead_params(lead, shanghai_day(now), now) for lead in out.leads]
            )
    return out


def level_message(circle_id: str, levels: Sequence[PriceLevel]) -> dict[str, Any]:
    """The `supply.price-levels.v1` message of one scope (a circle, or '*' the city): every necessity's level."""
    return {
        "circle_id": circle_id,
        "computed_at": max(lv.computed_at for lv in levels).isoformat(),
        "day": levels[0].day.isoformat(),
        "levels": [
            {k: v for k, v in lv.row().items() if k not in ("circle_id", "day", "computed_at")} for lv in levels
        ],
    }


def leads(
    conn: psycopg.Connection[Row], since: date, circle: str | None = None, necessity: str | None = None
) -> list[Row]:
    """Gouging leads since `since` (a day), newest and worst first."""
    return conn.execute(QUERIES["price_leads"], {"since": since, "circle": circle, "necessity": necessity}).fetchall()


def outlet_history(
    conn: psycopg.Connection[Row], outlet_id: str, necessity: str, circle_id: str, since: datetime
) -> list[Row]:
    """An outlet's daily low/high/last price of a necessity since `since`, beside its circle's price level."""
    return conn.execute(
        QUERIES["outlet_price_history"],
        {"outlet_id": outlet_id, "necessity": necessity, "circle_id": circle_id, "since": since},
    ).fetchall()


def latest_levels(conn: psycopg.Connection[Row]) -> list[Row]:
    """The newest price level of every scope and necessity (circles since removed left out)."""
    return conn.execute(QUERIES["price_levels_latest"]).fetchall()


def levels_of_day(conn: psycopg.Connection[Row], day: date) -> list[Row]:
    """The price levels of `day` that were not calm (spiking, STRESS or stale), worst first."""
    return conn.execute(QUERIES["price_levels_of_day"], {"day": day}).fetchall()
