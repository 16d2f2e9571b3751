"""`baogong seed history --days N`: plausible past prices and stock for the city in the database (SYNTHETIC).

So that price baselines (28 daily medians) and the history panels exist on a fresh machine, this writes, for
the `days` days before today (Asia/Shanghai), straight into the database with COPY in one transaction:

* prices: one a day (10:00–11:00) from every active outlet for each necessity its business type carries,
  around a typical retail price (`TYPICAL_PRICE`, CNY per canonical unit) with an outlet's own markup
  (±8 %), a weekly shape (+3 % on Saturdays and Sundays), a seasonal one (±4 % over the year, highest in
  January, the Spring Festival) and ±2 % noise;
* stock: one circle level per circle, necessity and hour, days of supply around 1.5x the watch line with a
  weekly dip (weekend buying) and noise; status from the necessity's thresholds.

Then it refreshes the rollups with `baogong maintain`'s own function (prices_daily, circle_levels_hourly and
_daily), so the price pass reads the older days from the rollup. Rows older than the raw retention are then
dropped from the raw tables by that same run, as every day's maintenance would; the rollups keep them.
Deterministic for a seed. Writing the same days twice is refused by the primary keys (ConstraintViolation):
run it once on a fresh city.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from schema.db import connect
from schema.maintain import maintain

TZ = ZoneInfo("Asia/Shanghai")
#: Typical retail prices in a northern Chinese city, CNY per canonical unit (demo values, not observations).
TYPICAL_PRICE: dict[str, float] = {
    "rice": 6.0,
    "flour": 5.0,
    "cooking_oil": 16.0,
    "pork": 28.0,
    "eggs": 11.0,
    "leafy_vegetables": 6.0,
    "root_vegetables": 3.0,
    "milk": 14.0,
    "bottled_water": 3.0,
    "instant_noodles": 4.0,
    "salt": 6.0,
    "fever_medicine": 25.0,
}


@dataclass(frozen=True, slots=True)
class SeededHistory:
    days: int
    prices: int
    levels: int


def price_on(typical: float, markup: float, day: date, noise: float) -> float:
    """One outlet's price on `day`: typical x markup x weekly x seasonal x noise (2 decimals)."""
    weekly = 1.03 if day.weekday() >= 5 else 1.0
    seasonal = 1 + 0.04 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365.25)
    return round(typical * markup * weekly * seasonal * noise, 2)


def seed_history(url: str, days: int, now: datetime, *, seed: int = 2024) -> SeededHistory:
    """Write `days` days of prices and circle levels before today; refresh the rollups. See the module doc."""
    if days < 1:
        raise ValueError("--days must be at least 1")
    rng = random.Random(seed)
    today = now.astimezone(TZ).date()
    with connect(url) as conn:
        necs = conn.execute(
            "SELECT code, per_capita_daily, watch_days, shortage_days, critical_days FROM necessities ORDER BY code"
        ).fetchall()
        carries: dict[str, list[str]] = {}
        for r in conn.execute("SELECT business_type, necessity FROM business_type_necessities ORDER BY 1, 2"):
            carries.setdefault(r["business_type"], []).append(r["necessity"])
        outlets = conn.execute("SELECT id, supplier_id, business_type FROM outlets WHERE active ORDER BY id").fetchall()
        population = {
            r["circle_id"]: float(r["p"])
            for r in conn.execute("SELECT circle_id, sum(population) AS p FROM communities GROUP BY 1 ORDER BY 1")
        }
        if not outlets or not population:
            raise ValueError("no city in this database: run `baogong seed demo` (or seed city) first")
        prices = levels = 0
        with conn.cursor() as cur:
            with cur.copy(
                "COPY prices (reported_at, outlet_id, necessity, price, supplier_id, received_at) FROM STDIN"
            ) as copy:
                for o in outlets:
                    markup = {n: rng.uniform(0.92, 1.08) for n in carries.get(o["business_type"], [])}
                    for d in range(days, 0, -1):
                        day = today - timedelta(days=d)
                        at = datetime(day.year, day.month, day.day, 10, tzinfo=TZ) + timedelta(
                            minutes=rng.randint(0, 59)
                        )
                        for nec, m in markup.items():
                            price = price_on(TYPICAL_PRICE.get(nec, 10.0), m, day, rng.uniform(0.98, 1.02))
                            copy.write_row((at, o["id"], nec, price, o["supplier_id"], now))
                            prices += 1
            with cur.copy(
                "COPY circle_levels (computed_at, circle_id, necessity, stock, daily_demand, days_of_supply, coverage,"
                " coverage_stock, outlets_expected, outlets_fresh, status) FROM STDIN"
            ) as copy:
                start = datetime(today.year, today.month, today.day, tzinfo=TZ) - timedelta(days=days)
                for h in range(days * 24):
                    at = start + timedelta(hours=h)
                    weekend = at.astimezone(TZ).weekday() >= 5
                    for circle, people in population.items():
                        for n in necs:
                            demand = people * n["per_capita_daily"]
                            d_ = n["watch_days"] * (1.5 - (0.2 if weekend else 0.0)) * rng.uniform(0.9, 1.1)
                            status = (
                                "CRITICAL" if d_ < n["critical_days"] else "SHORTAGE" if d_ < n["shortage_days"]
                                else "WATCH" if d_ < n["watch_days"] else "OK"
                            )  # fmt: skip
                            copy.write_row((at, circle, n["code"], demand * d_, demand, d_, 0.9, 0.95, 20, 18, status))
                            levels += 1
    maintain(url, now=now, retention_days=35, hourly_days=180, daily_days=1095)
    return SeededHistory(days, prices, levels)
