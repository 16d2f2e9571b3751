"""Price watch (pure): a necessity's price against its baseline, graded two ways side by side.

For one scope (a living circle, or the whole city) and one necessity, given the daily medians of outlet
prices before today (CNY per canonical unit) and the current price, `grade` works out:

Baseline
    the median of the daily medians of the last `window_days` (28) days before today — days without prices
    are skipped, and with fewer than `min_history_days` (7) of them there is no baseline. Once a year of
    history exists it is seasonal: the rolling median times last year's movement over the same weeks,
    `median(last year, the 7 days centred on today - 364) / median(last year, the 28 days before today - 364)`
    (364 days keeps weekdays aligned; each part needs 3 and `min_history_days` days of history).

ALPS-style phase (in the spirit of WFP's Alert for Price Spikes)
    ALPS grades the gap between a price and its seasonal trend in standard deviations of the residuals of
    that trend over history. Kept simple here: the trend is the baseline above; the standard deviation is
    the sample standard deviation of the window's daily medians, but never below `sd_floor` (5 %) of the
    baseline — so a perfectly flat history does not make a one-fen move a crisis. The deviation
    `(current - baseline) / sd` is NORMAL below 0.25, STRESS from 0.25, ALERT from 1, CRISIS from 2;
    falling prices are NORMAL. No baseline: UNKNOWN.

Plan grade (the percent rises of Chinese municipal emergency plans for necessities)
    `rise_day`: the current price against yesterday's daily median; `rise_week`: against the daily
    median 7 days before (or, when that day has none, the nearest of the 3 days before it). The highest
    `PlanGrade` whose day or week threshold is exceeded (strictly) is the grade; none exceeded is NONE;
    neither rise computable is UNKNOWN. The defaults (`DEFAULT_PLAN`) are typical values of municipal
    plans (README, "Price watch"); a city sets its own.

Stale data
    No current price (no outlet reported one within the freshness window) makes both UNKNOWN, never
    NORMAL or NONE: silence is not a calm market.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

#: The scope id of a city-wide level (circle ids never contain '*').
CITY = "*"


class Phase(StrEnum):
    NORMAL = "NORMAL"
    STRESS = "STRESS"
    ALERT = "ALERT"
    CRISIS = "CRISIS"
    UNKNOWN = "UNKNOWN"


#: Lower bounds of the ALPS phases, in standard deviations above the trend (WFP's ALPS thresholds).
PHASE_BOUNDS: tuple[tuple[float, Phase], ...] = ((2.0, Phase.CRISIS), (1.0, Phase.ALERT), (0.25, Phase.STRESS))
#: Plan grade when no threshold is exceeded / when no rise can be computed.
NONE = "NONE"
UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class PlanGrade:
    """One grade of a plan: exceeded when the day-on-day rise is above `day` or the week-on-week one above `week`."""

    name: str  # 'IV' (一般) .. 'I' (特别重大)
    day: float  # 0.30 = 30 %
    week: float


#: Typical municipal values, lowest grade first: IV–II as in Qingdao's 2014 price-emergency plan (日涨幅环比
#: 超过 30 % / 50 % / 70 % 或周涨幅环比超过 40 % / 60 % / 80 %); I (100 % / 100 %) is Baogong's own step above.
#: Every city must set its own plan's numbers (setting `price_plan_grades`).
DEFAULT_PLAN: tuple[PlanGrade, ...] = (
    PlanGrade("IV", 0.30, 0.40),
    PlanGrade("III", 0.50, 0.60),
    PlanGrade("II", 0.70, 0.80),
    PlanGrade("I", 1.00, 1.00),
)


@dataclass(frozen=True, slots=True)
class PriceRules:
    """How prices are graded (settings `price_*`)."""

    window_days: int = 28
    min_history_days: int = 7
    sd_floor: float = 0.05
    seasonal_lag_days: int = 364
    plan: tuple[PlanGrade, ...] = DEFAULT_PLAN
    gouging_ratio: float = 0.5  # an outlet above its circle's median by more than this during a spike

    def history_days(self) -> int:
        """How many days before today `grade` may read: the window, or last year's weeks."""
        return self.seasonal_lag_days + self.window_days + 1


@dataclass(frozen=True, slots=True)
class PriceGrade:
    """One scope and necessity graded at one moment; None where a number cannot be had."""

    price: float | None  # current median over outlets' latest fresh prices
    baseline: float | None
    baseline_kind: str | None  # 'rolling' | 'seasonal'
    history_days: int  # daily medians in the window
    sd: float | None  # the standard deviation used (after the floor)
    deviation: float | None  # (price - baseline) / sd
    phase: Phase
    rise_day: float | None
    rise_week: float | None
    plan_grade: str  # NONE | UNKNOWN | a PlanGrade name
    stale: bool
    reasons: tuple[str, ...] = field(default=())

    @property
    def spiking(self) -> bool:
        """ALPS alert or worse, or any plan grade: what the price alert fires on."""
        return self.phase in (Phase.ALERT, Phase.CRISIS) or self.plan_grade not in (NONE, UNKNOWN)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def phase_of(deviation: float) -> Phase:
    for bound, phase in PHASE_BOUNDS:
        if deviation >= bound:
            return phase
    return Phase.NORMAL


def plan_grade_of(rise_day: float | None, rise_week: float | None, plan: Sequence[PlanGrade]) -> str:
    if rise_day is None and rise_week is None:
        return UNKNOWN
    found = NONE
    for g in plan:  # lowest first: the last one exceeded wins
        if (rise_day is not None and rise_day > g.day) or (rise_week is not None and rise_week > g.week):
            found = g.name
    return found


def _window(history: Mapping[date, float], end: date, days: int) -> list[float]:
    """Daily medians of the `days` days before `end` (not including it), oldest first; missing days skipped."""
    return [history[d] for d in (end - timedelta(days=i) for i in range(days, 0, -1)) if d in history]


def baseline(history: Mapping[date, float], today: date, rules: PriceRules) -> tuple[float | None, str | None, int]:
    """(baseline, 'rolling' | 'seasonal', daily medians in the window) for `today`; (None, None, n) without one."""
    window = _window(history, today, rules.window_days)
    if len(window) < rules.min_history_days:
        return None, None, len(window)
    rolling = median(window)
    then = today - timedelta(days=rules.seasonal_lag_days)
    week = [history[then + timedelta(days=i)] for i in range(-3, 4) if then + timedelta(days=i) in history]
    before = _window(history, then, rules.window_days)
    if len(week) >= 3 and len(before) >= rules.min_history_days and median(before) > 0:
        return rolling * median(week) / median(before), "seasonal", len(window)
    return rolling, "rolling", len(window)


def _rise(price: float, before: float | None) -> float | None:
    return None if before is None or before <= 0 else price / before - 1


def grade(price: float | None, history: Mapping[date, float], today: date, rules: PriceRules) -> PriceGrade:
    """Grade the current `price` (None: no fresh price) against `history` (daily medians before `today`)."""
    base, kind, n = baseline(history, today, rules)
    if price is None:
        return PriceGrade(
            None, base, kind, n, None, None, Phase.UNKNOWN, None, None, UNKNOWN, True, ("no fresh prices",)
        )
    reasons: list[str] = []
    sd = deviation = None
    phase = Phase.UNKNOWN
    if base is None:
        reasons.append(f"{n} of {rules.min_history_days} days of history needed")
    else:
        window = _window(history, today, rules.window_days)
        spread = statistics.stdev(window) if len(window) > 1 else 0.0
        sd = max(spread, rules.sd_floor * base)
        if sd > 0 and math.isfinite(sd):
            deviation = (price - base) / sd
            phase = phase_of(deviation)
        else:
            reasons.append("zero baseline")
    yesterday = history.get(today - timedelta(days=1))
    week_ref = next(
        (history[d] for d in (today - timedelta(days=7 + i) for i in range(4)) if d in history),
        None,
    )
    rise_day, rise_week = _rise(price, yesterday), _rise(price, week_ref)
    plan = plan_grade_of(rise_day, rise_week, rules.plan)
    return PriceGrade(price, base, kind, n, sd, deviation, phase, rise_day, rise_week, plan, False, tuple(reasons))


def gouging(outlet_price: float, circle_price: float | None, spiking: bool, rules: PriceRules) -> bool:
    """An outlet's price is a gouging lead: a spike is on and it is above the circle's median by more than the ratio."""
    return (
        spiking
        and circle_price is not None
        and circle_price > 0
        and outlet_price > circle_price * (1 + rules.gouging_ratio)
    )


def parse_plan(text: str) -> tuple[PlanGrade, ...]:
    """'IV:30/40,III:50/60' (percent rises within a day / a week, lowest grade first) as PlanGrades.

    Raises ValueError naming what is wrong.
    """
    out: list[PlanGrade] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, rises = part.partition(":")
        day, sep2, week = rises.partition("/")
        if not (sep and sep2 and name.strip()):
            raise ValueError(f"price plan grade {part!r}: expected NAME:DAY%/WEEK%, e.g. IV:30/40")
        out.append(PlanGrade(name.strip(), float(day) / 100, float(week) / 100))
    if not out:
        raise ValueError("price plan: no grades")
    return tuple(out)
