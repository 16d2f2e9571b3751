"""The shortage rule: a circle's days of supply of a necessity below its shortage threshold.

ACTIVE below `shortage_days` (severity `critical` below `critical_days`, else
`high`); RECOVERED at or above `shortage_days * (1 + hysteresis)`; BAND in
between; UNKNOWN when the level is STALE (low coverage), has no days of supply,
or is not current (`alerts.rules.pipeline.Currency`: computed too long ago, or
too far behind the stream) — a stopped worker neither fires nor resolves a
shortage.

Annotations carry what the messages show (`alerts.notify.templates`), as
strings: circle and necessity names, unit, days of supply and the shortage
line, stock and daily demand, both coverages (share of expected outlets with
a fresh report; share of the last known stock that is fresh), and the trend:
the change in days of supply since the level about `trend_window_s` earlier
(`days_before`; the query looks no further back than twice the window, and
without such a level there is no trend).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.model import Condition, Verdict
from alerts.rules import Rule
from alerts.rules.pipeline import Currency

RULE = "shortage"
ALERTNAME = "SupplyShortage"
TREND_WINDOW_S = 3600.0


@dataclass(frozen=True, slots=True)
class LevelView:
    circle_id: str
    circle_name: str
    necessity: str
    necessity_name: str
    unit: str
    days_of_supply: float | None
    stock: float
    daily_demand: float
    coverage: float
    status: str
    shortage_days: float
    critical_days: float
    coverage_stock: float | None = None
    days_before: float | None = None  # days of supply about one trend window earlier


def evaluate(
    level: LevelView, hysteresis: float, not_current: str | None = None, trend_window_s: float = TREND_WINDOW_S
) -> Verdict:
    """The verdict on one level; `not_current` says why the level is not current (then UNKNOWN)."""
    days = level.days_of_supply
    if not_current is not None or level.status == "STALE" or days is None:
        condition = Condition.UNKNOWN
    elif days < level.shortage_days:
        condition = Condition.ACTIVE
    elif days >= level.shortage_days * (1 + hysteresis):
        condition = Condition.RECOVERED
    else:
        condition = Condition.BAND
    severity = "critical" if days is not None and days < level.critical_days else "high"
    labels = {
        "alertname": ALERTNAME,
        "circle": level.circle_id,
        "necessity": level.necessity,
        "severity": severity,
    }
    shown = "unknown" if days is None else f"{days:.1f}"
    annotations = {
        "summary": f"{level.circle_name}: {level.necessity_name} {shown} days of supply "
        f"(shortage below {level.shortage_days:g})",
        "description": (
            f"Circle {level.circle_id} has {level.stock:,.0f} {level.unit} of {level.necessity} against a daily "
            f"demand of {level.daily_demand:,.0f} {level.unit}; "
            f"{level.coverage:.0%} of the outlets reported fresh stock."
        ),
        "circle_name": level.circle_name,
        "necessity_name": level.necessity_name,
        "unit": level.unit,
        "days_of_supply": shown,
        "shortage_days": f"{level.shortage_days:g}",
        "stock": f"{level.stock:,.0f}",
        "daily_demand": f"{level.daily_demand:,.0f}",
        "coverage": f"{level.coverage:.2f}",
    }
    if level.coverage_stock is not None:
        annotations["coverage_stock"] = f"{level.coverage_stock:.2f}"
    if days is not None and level.days_before is not None:
        annotations["days_before"] = f"{level.days_before:.1f}"
        annotations["trend"] = f"{round(days, 1) - round(level.days_before, 1):+.1f}"
        annotations["trend_window_min"] = f"{trend_window_s / 60:g}"
    return Verdict(condition, severity, labels, annotations)


def rule(hysteresis: float, currency: Currency, trend_window_s: float = TREND_WINDOW_S) -> Rule:
    """The shortage rule over `circle_levels_latest`, for the circle's responders.

    A level is judged only when it is current at the evaluation time (`currency`).
    """

    def verdicts(rows: Sequence[dict[str, Any]], now: datetime) -> list[Verdict]:
        return [
            evaluate(
                LevelView(**{k: row[k] for k in LevelView.__slots__ if k in row}),
                hysteresis,
                currency.problem(row["computed_at"], row["lag_s"], now),
                trend_window_s,
            )
            for row in rows
        ]

    return Rule(RULE, "levels_for_rules", "responders", verdicts, {"trend_s": trend_window_s})
