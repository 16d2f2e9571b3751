"""The shortage rule: a circle's days of supply of a necessity below its shortage threshold.

ACTIVE below `shortage_days` (severity `critical` below `critical_days`, else
`high`); RECOVERED at or above `shortage_days * (1 + hysteresis)`; BAND in
between; UNKNOWN when the level is STALE (low coverage), has no days of supply,
or is not current (`alerts.rules.pipeline.Currency`: computed too long ago, or
too far behind the stream) — a stopped worker neither fires nor resolves a
shortage.
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


def evaluate(level: LevelView, hysteresis: float, not_current: str | None = None) -> Verdict:
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
        "days_of_supply": shown,
    }
    return Verdict(condition, severity, labels, annotations)


def rule(hysteresis: float, currency: Currency) -> Rule:
    """The shortage rule over `circle_levels_latest`, for the circle's responders.

    A level is judged only when it is current at the evaluation time (`currency`).
    """

    def verdicts(rows: Sequence[dict[str, Any]], now: datetime) -> list[Verdict]:
        return [
            evaluate(
                LevelView(**{k: row[k] for k in LevelView.__slots__}),
                hysteresis,
                currency.problem(row["computed_at"], row["lag_s"], now),
            )
            for row in rows
        ]

    return Rule(RULE, "levels_for_rules", "responders", verdicts)
