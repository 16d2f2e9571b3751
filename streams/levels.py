"""Days of supply and circle status (pure domain logic; no Kafka, no database).

For circle c, necessity n, at time `now` (the database side is the
`circle_inputs` query in schema/queries.sql; it counts an outlet's stock only
while the outlet is active, and only reports made since it was last activated):

- **stock** (confirmed) = sum of the latest quantity of n of the circle's
  outlets whose report is within n's freshness window. Older stock is
  **stock_unconfirmed**: kept with the age of its oldest report
  (`unconfirmed_age_s`), never added to days of supply.
- **coverage** (outlets) = share of the outlets expected to carry n (by
  business type) with a fresh report.
- **coverage_stock** = stock / (stock + stock_unconfirmed): the share of the
  last known stock that is fresh, so a silent supermarket weighs more than a
  silent kiosk. When no stock is known at all it is 1.0 if some outlet made a
  fresh report (all of them said zero: a confirmed empty circle) and 0.0 if
  none did (nothing known).
- **daily demand**, from what people buy when enough of them say so: the
  outlets with a fresh report carrying `sold_24h` must hold at least
  `DemandRule.min_observed_share` of the fresh stock. Their sold_24h sum,
  divided by that share (scaled up to all fresh stock), is the raw observed
  rate. It is smoothed as the median of the raw rates of the last
  `DemandRule.median_of` computations (kept in `circle_levels_latest`), so
  a computation that caught a report half written, or one odd tick, does
  not move demand, a lasting change does within a few ticks, and levels
  computed from the same data are the same however the ticks fell. Then
  times the emergency multiplier: `demand_source` 'observed'. Otherwise (too
  few outlets send sold_24h, no fresh stock, or nothing sold) demand =
  population x per-capita daily consumption x multiplier: 'population'.
- **days of supply** = stock / daily demand (None when demand is zero).
- **status**: STALE when either coverage is below n's `min_coverage` or there
  are no days of supply: an unknown circle is never OK and never a false
  shortage. Else CRITICAL / SHORTAGE / WATCH / OK against n's thresholds.
- **emergency**: a circle under an emergency grade (`CircleInputs.grade`,
  `schema.emergency`) has its demand multiplied by the grade's multiplier for
  n (or the configured one, if larger: a grade never lowers what the
  deployment set) and n's watch / shortage / critical days times the grade's
  threshold factor; its stricter freshness window is applied by the query
  (what is fresh is decided where the report times are). The level keeps the
  grade it was computed under.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from schema.emergency import rules as grade_rules


class Status(StrEnum):
    OK = "OK"
    WATCH = "WATCH"
    SHORTAGE = "SHORTAGE"
    CRITICAL = "CRITICAL"
    STALE = "STALE"


class DemandSource(StrEnum):
    OBSERVED = "observed"
    POPULATION = "population"


@dataclass(frozen=True, slots=True)
class Thresholds:
    watch_days: float
    shortage_days: float
    critical_days: float
    min_coverage: float


@dataclass(frozen=True, slots=True)
class Lag:
    """How far behind the report stream was when levels were computed: reports not yet written, and seconds."""

    reports: int
    seconds: float


@dataclass(frozen=True, slots=True)
class DemandRule:
    """How daily demand is worked out (see the module docstring).

    `multiplier`: the emergency demand multiplier (1.0 in normal times).
    `min_observed_share`: observed demand is used when the fresh outlets sending
    sold_24h hold at least this share of the circle's fresh stock.
    `median_of`: observed demand is the median of the raw rates of this many computations (the latest
    included); 1 means no smoothing.
    """

    multiplier: float = 1.0
    min_observed_share: float = 0.5
    median_of: int = 5


#: The default rule: no emergency multiplier, observed demand from half the fresh stock, median of 5.
DEFAULT_DEMAND = DemandRule()


@dataclass(frozen=True, slots=True)
class CircleInputs:
    """What the database knows about one circle (or area) and necessity at one moment.

    `stock` is fresh (confirmed) stock; `stock_unconfirmed` the rest of the known
    stock, whose oldest report is `oldest_unconfirmed`. `reports_fresh` counts
    fresh stock rows of any outlet; `outlets_fresh` only those of outlets expected
    to carry the necessity. `sold_24h` is the sum over fresh outlets that sent it
    (None when none did) and `stock_with_sold` their fresh stock.
    `prev_observed_raw` / `prev_computed_at`: the raw observed rates of the
    previous computations, oldest first, as the previous level kept them, and
    when it was computed (empty / None: start afresh).
    """

    circle_id: str
    necessity: str
    population: int
    per_capita_daily: float
    thresholds: Thresholds
    stock: float
    outlets_expected: int
    outlets_fresh: int
    stock_unconfirmed: float = 0.0
    oldest_unconfirmed: datetime | None = None
    reports_fresh: int | None = None  # None: same as outlets_fresh
    sold_24h: float | None = None
    stock_with_sold: float = 0.0
    prev_observed_raw: tuple[float, ...] = ()
    prev_computed_at: datetime | None = None
    grade: int | None = None  # emergency grade in force (1 = I … 4 = IV), None: none


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
    stock_unconfirmed: float = 0.0
    unconfirmed_age_s: float | None = None
    coverage_stock: float = 0.0
    demand_source: DemandSource = DemandSource.POPULATION
    demand_observed: float | None = None  # smoothed observed demand before the multiplier
    observed_raw: tuple[float, ...] = ()  # the raw rates the median was taken over, oldest first
    lag_reports: int | None = None
    lag_s: float | None = None
    grade: int | None = None  # the emergency grade it was computed under (1 = I … 4 = IV), None: none


def coverage(outlets_fresh: int, outlets_expected: int) -> float:
    """Share of expected outlets with a fresh report, 0..1; nobody expected means nothing known (0)."""
    if outlets_expected <= 0:
        return 0.0
    return min(1.0, outlets_fresh / outlets_expected)


def stock_coverage(stock: float, stock_unconfirmed: float, reports_fresh: int) -> float:
    """Share of the last known stock that is fresh, 0..1.

    No known stock: 1.0 when some outlet reported fresh (all of them zero), else 0.0.
    """
    known = stock + stock_unconfirmed
    if known <= 0:
        return 1.0 if reports_fresh > 0 else 0.0
    return min(1.0, max(0.0, stock / known))


def observed_rate(sold_24h: float | None, stock_with_sold: float, stock: float, min_share: float) -> float | None:
    """Raw observed daily demand of the circle, or None when it cannot be trusted.

    The fresh outlets that sent sold_24h hold `stock_with_sold` of the fresh
    `stock`; their sales, scaled up by that share, are the circle's rate. None
    when the share is below `min_share`, there is no fresh stock, or nothing sold.
    """
    if sold_24h is None or sold_24h <= 0 or stock <= 0 or stock_with_sold <= 0:
        return None
    share = min(1.0, stock_with_sold / stock)
    if share < min_share:
        return None
    return sold_24h / share


def recent_rates(
    prev: tuple[float, ...],
    prev_at: datetime | None,
    now: datetime,
    raw: float,
    keep: int,
    *,
    replace_newest: bool = False,
) -> tuple[float, ...]:
    """The last `keep` raw rates with `raw` as the newest, oldest first.

    A previous computation at `now` or later is replaced, not followed: computing
    twice at the same moment gives the same rates as computing once. `replace_newest`
    replaces it whenever it was: a live recomputation between two periodic passes
    refines the newest rate instead of adding one, so smoothing spans the same time.
    """
    replace = replace_newest or (prev_at is not None and prev_at >= now)
    base = prev[:-1] if prev and replace else prev
    return (*base, raw)[-max(1, keep) :]


def classify(days_of_supply: float | None, cover: float, t: Thresholds, cover_stock: float = 1.0) -> Status:
    """STALE when either coverage is below the minimum or there are no days; else by days against thresholds."""
    if days_of_supply is None or cover < t.min_coverage or cover_stock < t.min_coverage:
        return Status.STALE
    if days_of_supply < t.critical_days:
        return Status.CRITICAL
    if days_of_supply < t.shortage_days:
        return Status.SHORTAGE
    if days_of_supply < t.watch_days:
        return Status.WATCH
    return Status.OK


def compute_level(
    inputs: CircleInputs,
    now: datetime,
    demand_multiplier: float | None = None,
    *,
    rule: DemandRule = DEFAULT_DEMAND,
    lag: Lag | None = None,
    live: bool = False,
) -> CircleLevel:
    """The level of one circle and necessity at `now` (see the module docstring).

    `live`: a recomputation after new reports, between periodic passes (see `recent_rates`).

    `demand_multiplier`, when given, overrides `rule.multiplier`. Under an emergency grade
    (`inputs.grade`) the multiplier is the larger of that and the grade's, and the thresholds are scaled.
    """
    multiplier = rule.multiplier if demand_multiplier is None else demand_multiplier
    thresholds = inputs.thresholds
    emergency = grade_rules(inputs.grade)
    if emergency is not None:
        multiplier = max(multiplier, emergency.demand(inputs.necessity))
        watch, shortage, critical = emergency.thresholds(
            thresholds.watch_days, thresholds.shortage_days, thresholds.critical_days
        )
        thresholds = Thresholds(watch, shortage, critical, thresholds.min_coverage)
    raw = observed_rate(inputs.sold_24h, inputs.stock_with_sold, inputs.stock, rule.min_observed_share)
    observed: float | None = None
    rates: tuple[float, ...] = ()
    if raw is not None:
        rates = recent_rates(
            inputs.prev_observed_raw, inputs.prev_computed_at, now, raw, rule.median_of, replace_newest=live
        )
        observed = statistics.median(rates)
        source = DemandSource.OBSERVED
        demand = observed * multiplier
    else:
        source = DemandSource.POPULATION
        demand = inputs.population * inputs.per_capita_daily * multiplier
    days = inputs.stock / demand if demand > 0 else None
    cover = coverage(inputs.outlets_fresh, inputs.outlets_expected)
    reports_fresh = inputs.outlets_fresh if inputs.reports_fresh is None else inputs.reports_fresh
    cover_stock = stock_coverage(inputs.stock, inputs.stock_unconfirmed, reports_fresh)
    age = None if inputs.oldest_unconfirmed is None else (now - inputs.oldest_unconfirmed).total_seconds()
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
        status=classify(days, cover, thresholds, cover_stock),
        stock_unconfirmed=inputs.stock_unconfirmed,
        unconfirmed_age_s=age,
        coverage_stock=cover_stock,
        demand_source=source,
        demand_observed=observed,
        observed_raw=rates,
        lag_reports=None if lag is None else lag.reports,
        lag_s=None if lag is None else lag.seconds,
        grade=inputs.grade,
    )
