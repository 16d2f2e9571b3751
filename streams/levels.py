"""Days of supply and circle status (pure domain logic; no Kafka, no database).

For circle c, necessity n, at time t:
- stock    = sum of the latest on-hand quantity of n over the circle's active outlets;
- coverage = share of the outlets expected to carry n whose latest report is
             within n's freshness window;
- daily demand = population x per-capita daily consumption x demand multiplier;
- days of supply = stock / daily demand;
- status: STALE when coverage is below n's minimum (never a silent OK), else
  CRITICAL / SHORTAGE / WATCH / OK from days of supply against n's thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    OK = "OK"
    WATCH = "WATCH"
    SHORTAGE = "SHORTAGE"
    CRITICAL = "CRITICAL"
    STALE = "STALE"


@dataclass(frozen=True, slots=True)
class Thresholds:
    watch_days: float
    shortage_days: float
    critical_days: float
    min_coverage: float


@dataclass(frozen=True, slots=True)
class CircleInputs:
    """What the database knows about one circle and necessity at one moment."""

    circle_id: str
    necessity: str
    population: int
    per_capita_daily: float
    thresholds: Thresholds
    stock: float
    outlets_expected: int
    outlets_fresh: int


@dataclass(frozen=True, slots=True)
class CircleLevel:
    computed_at: datetime
    circle_id: str
    necessity: str
    stock: float
    daily_demand: float
    days_of_supply: float | None
    coverage: float
    outlets_expected: int
    outlets_fresh: int
    status: Status


def coverage(outlets_fresh: int, outlets_expected: int) -> float:
    """Share of expected outlets with a fresh report, 0..1; nobody expected means nothing known (0)."""
    if outlets_expected <= 0:
        return 0.0
    return min(1.0, outlets_fresh / outlets_expected)


def classify(days_of_supply: float | None, cover: float, t: Thresholds) -> Status:
    if days_of_supply is None or cover < t.min_coverage:
        return Status.STALE
    if days_of_supply < t.critical_days:
        return Status.CRITICAL
    if days_of_supply < t.shortage_days:
        return Status.SHORTAGE
    if days_of_supply < t.watch_days:
        return Status.WATCH
    return Status.OK


def compute_level(inputs: CircleInputs, now: datetime, demand_multiplier: float = 1.0) -> CircleLevel:
    demand = inputs.population * inputs.per_capita_daily * demand_multiplier
    days = inputs.stock / demand if demand > 0 else None
    cover = coverage(inputs.outlets_fresh, inputs.outlets_expected)
    return CircleLevel(
        computed_at=now,
        circle_id=inputs.circle_id,
        necessity=inputs.necessity,
        stock=inputs.stock,
        daily_demand=demand,
        days_of_supply=days,
        coverage=cover,
        outlets_expected=inputs.outlets_expected,
        outlets_fresh=inputs.outlets_fresh,
        status=classify(days, cover, inputs.thresholds),
    )
