"""The price rules: PriceSpike for the market supervision bureau, PanicBuying (price spike + low stock) for the
commerce bureau and the circle's team. Both read what the price pass stored (`price_levels`, migration 0022).

PriceSpike, per circle and necessity, and city-wide (no circle label, `scope=city`):
- ACTIVE when the level is spiking: ALPS phase ALERT or CRISIS, or any grade of the city's plan;
- BAND when the phase is STRESS and no plan grade (a price hovering near the line pages once);
- RECOVERED when no signal fires and at least one is known (NORMAL, or plan NONE);
- UNKNOWN when the level is stale (no fresh prices), when neither standard can grade it, or when the
  level is older than `max_age_s` (the price pass stopped): it neither fires nor resolves.
Severity: `critical` for plan grade I or II, `high` for CRISIS or grade III, else `warning`.

PanicBuying, per circle and necessity — the early sign of panic buying: prices jump while stock runs down.
Its condition is the conjunction, in three-valued logic, of the price condition above and the stock one:
stock ACTIVE when the circle's level is below the necessity's watch threshold (status WATCH, SHORTAGE or
CRITICAL — emergency grades already scale those thresholds), RECOVERED when OK, UNKNOWN when STALE, missing
or not current (`alerts.rules.pipeline.Currency`). ACTIVE only when both are; RECOVERED when either is;
UNKNOWN when either is unknown and neither recovered; else BAND. Always `critical`: above the price alert.

Which teams hear about each is the routing tree's business (`alertname`): the demo's teams file sends
PriceSpike to the market supervision bureau (市场监管局) and PanicBuying to the circle's team and the district
commerce bureau.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from alerts.model import Condition, Verdict
from alerts.rules import Rule
from alerts.rules.pipeline import Currency
from schema.db import SCHEMA_DIR, load_queries

QUERIES = load_queries(SCHEMA_DIR / "prices.sql")
SPIKE_RULE = "price_spike"
SPIKE_ALERTNAME = "PriceSpike"
PANIC_RULE = "panic_buying"
PANIC_ALERTNAME = "PanicBuying"
CITY = "*"
PHASE_ZH = {"NORMAL": "正常", "STRESS": "关注", "ALERT": "预警", "CRISIS": "危机", "UNKNOWN": "未知"}
LOW_STOCK = frozenset({"WATCH", "SHORTAGE", "CRITICAL"})


def price_condition(row: Mapping[str, Any], now: datetime, max_age_s: float) -> Condition:
    """The price condition of one stored level (a price_levels row) at `now`."""
    if row["stale"] or (now - row["computed_at"]).total_seconds() > max_age_s:
        return Condition.UNKNOWN
    phase, plan = row["phase"], row["plan_grade"]
    if row["spiking"]:
        return Condition.ACTIVE
    if phase == "STRESS":
        return Condition.BAND
    if phase == "NORMAL" or plan == "NONE":
        return Condition.RECOVERED
    return Condition.UNKNOWN


def stock_condition(row: Mapping[str, Any], now: datetime, currency: Currency) -> Condition:
    status = row.get("stock_status")
    if status is None or status == "STALE" or currency.problem(row["level_computed_at"], row["lag_s"], now):
        return Condition.UNKNOWN
    return Condition.ACTIVE if status in LOW_STOCK else Condition.RECOVERED


def both(a: Condition, b: Condition) -> Condition:
    """Three-valued AND: active only when both are; recovered when either is; else unknown, else band."""
    if a is Condition.ACTIVE and b is Condition.ACTIVE:
        return Condition.ACTIVE
    if Condition.RECOVERED in (a, b):
        return Condition.RECOVERED
    if Condition.UNKNOWN in (a, b):
        return Condition.UNKNOWN
    return Condition.BAND


def spike_severity(row: Mapping[str, Any]) -> str:
    if row["plan_grade"] in ("I", "II"):
        return "critical"
    if row["phase"] == "CRISIS" or row["plan_grade"] == "III":
        return "high"
    return "warning"


def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def _price_annotations(row: Mapping[str, Any]) -> dict[str, str]:
    where = row["circle_name"] or row["circle_id"]
    plan = row["plan_grade"]
    plan_text = {"NONE": "未达预案分级", "UNKNOWN": "无法判断"}.get(plan, f"达到预案 {plan} 级")
    return {
        "circle_name": where,
        "necessity_name": row["necessity_name"],
        "unit": row["unit"],
        "price": _fmt(row["price"], ".2f"),
        "baseline": _fmt(row["baseline"], ".2f"),
        "deviation": _fmt(row["deviation"], ".1f"),
        "phase": row["phase"],
        "plan_grade": plan,
        "rise_day": _fmt(row["rise_day"], "+.0%"),
        "rise_week": _fmt(row["rise_week"], "+.0%"),
        "outlets": str(row["outlets"]),
        "price_summary": (
            f"{where} {row['necessity_name']} 均价 {_fmt(row['price'], '.2f')} 元/{row['unit']}"
            f"（基准 {_fmt(row['baseline'], '.2f')}；日涨 {_fmt(row['rise_day'], '+.0%')}，"
            f"周涨 {_fmt(row['rise_week'], '+.0%')}）：ALPS {PHASE_ZH.get(row['phase'], row['phase'])}，{plan_text}"
        ),
    }


def spike_verdict(row: Mapping[str, Any], now: datetime, max_age_s: float) -> Verdict:
    severity = spike_severity(row)
    labels = {"alertname": SPIKE_ALERTNAME, "necessity": row["necessity"], "severity": severity}
    if row["circle_id"] == CITY:
        labels["scope"] = "city"
    else:
        labels["circle"] = row["circle_id"]
    annotations = _price_annotations(row)
    annotations["summary"] = annotations["price_summary"]
    annotations["description"] = (
        f"Price of {row['necessity']} in {row['circle_id'] if row['circle_id'] != CITY else 'the city'}: "
        f"{annotations['price']} against a baseline of {annotations['baseline']} "
        f"({annotations['deviation']} sd, ALPS {row['phase']}; plan grade {row['plan_grade']}; "
        f"{row['outlets']} outlets). `baogong prices leads` lists outlets far above the median."
    )
    return Verdict(price_condition(row, now, max_age_s), severity, labels, annotations)


def panic_verdict(row: Mapping[str, Any], now: datetime, max_age_s: float, currency: Currency) -> Verdict:
    condition = both(price_condition(row, now, max_age_s), stock_condition(row, now, currency))
    labels = {
        "alertname": PANIC_ALERTNAME,
        "circle": row["circle_id"],
        "necessity": row["necessity"],
        "severity": "critical",
    }
    annotations = _price_annotations(row)
    days = row.get("days_of_supply")
    annotations["days_of_supply"] = _fmt(days, ".1f")
    annotations["watch_days"] = f"{row['watch_days']:g}"
    annotations["summary"] = (
        f"抢购苗头：{annotations['price_summary']}；库存仅够 {annotations['days_of_supply']} 天"
        f"（关注线 {row['watch_days']:g} 天）"
    )
    annotations["description"] = (
        f"Circle {row['circle_id']}: the price of {row['necessity']} spikes (ALPS {row['phase']}, plan grade "
        f"{row['plan_grade']}) while days of supply ({annotations['days_of_supply']}) are below the watch line "
        f"({row['watch_days']:g}): the early sign of panic buying. Release reserves and restock."
    )
    return Verdict(condition, "critical", labels, annotations)


def spike_rule(max_age_s: float) -> Rule:
    """PriceSpike over the newest price level of each circle and the city."""

    def verdicts(rows: Sequence[dict[str, Any]], now: datetime) -> list[Verdict]:
        return [spike_verdict(r, now, max_age_s) for r in rows]

    return Rule(SPIKE_RULE, "price_levels_latest", "responders", verdicts, sql=QUERIES["price_levels_latest"])


def panic_rule(max_age_s: float, currency: Currency) -> Rule:
    """PanicBuying over each circle's newest price level beside its newest stock level."""

    def verdicts(rows: Sequence[dict[str, Any]], now: datetime) -> list[Verdict]:
        return [panic_verdict(r, now, max_age_s, currency) for r in rows]

    return Rule(PANIC_RULE, "panic_subjects", "responders", verdicts, sql=QUERIES["panic_subjects"])
