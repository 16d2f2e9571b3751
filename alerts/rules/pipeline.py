"""Are circle levels current? The one definition, and the operators' `PipelineStalled` rule.

Levels are *current* at time `now` when the last level pass is at most
`stall_after_s` old and the stream worker was at most `max_lag_s` behind the
supply topics when it computed them (`Currency.problem`). Every rule that
reads levels treats a level that is not current as UNKNOWN (no fire, no
resolve), and `baogong status` uses the same test.

`PipelineStalled` reads the heartbeat the worker's leader writes after every
level pass (`pipeline_status`, id 'levels'):
- ACTIVE when the last pass is older than `stall_after_s`, or the lag is
  above `max_lag_s`;
- RECOVERED when the last pass is fresh and the lag is at most half of
  `max_lag_s` (or could not be measured);
- BAND in between (a lag hovering around the bound pages once);
- no heartbeat at all (no worker ever computed levels on this database):
  no verdict; `baogong status` says so.

It fires and resolves without a hold (`POLICY`): `stall_after_s` already is
the hold. With rules evaluated every `eval_interval_s`, it fires at most
`stall_after_s + eval_interval_s` after the last level pass — with the
defaults (level interval 5 s, stall after 3 intervals, evaluation every 5 s)
at most 20 s after the last pass, i.e. within three level intervals of the
first pass that did not happen.

Ages compare the worker's clock (when it computed) with the dispatcher's
(when it evaluates): on separate hosts keep them synchronised (NTP) well
within `stall_after_s`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.model import Condition, Policy, Verdict
from alerts.rules import Rule

RULE = "pipeline"
ALERTNAME = "PipelineStalled"
STAGE = "levels"
POLICY = Policy(for_s=0.0, clear_for_s=0.0)
WHAT_TO_DO = (
    "Is `baogong worker` running? Check its log, and that it reaches Kafka and PostgreSQL; "
    "`baogong status` shows the last level pass, the lag and each partition's backlog."
)


@dataclass(frozen=True, slots=True)
class Currency:
    """How old and how far behind levels may be and still count as current."""

    stall_after_s: float
    max_lag_s: float

    def problem(self, computed_at: datetime | None, lag_s: float | None, now: datetime) -> str | None:
        """Why levels computed at `computed_at`, `lag_s` behind the stream, are not current at `now`.

        None when they are current. A lag that could not be measured (None) does
        not count against them: their age still does.
        """
        if computed_at is None:
            return "circle levels were never computed"
        age = (now - computed_at).total_seconds()
        if age > self.stall_after_s:
            return (
                f"circle levels were last computed {duration(age)} ago (current means within {self.stall_after_s:g} s)"
            )
        if lag_s is not None and lag_s > self.max_lag_s:
            return (
                f"the stream worker is {duration(lag_s)} behind the supply topics "
                f"(current means within {self.max_lag_s:g} s)"
            )
        return None


def evaluate(
    levels_at: datetime,
    lag_reports: int | None,
    lag_s: float | None,
    worker: str,
    currency: Currency,
    now: datetime,
) -> Verdict:
    """The verdict on the level heartbeat at `now` (pure)."""
    problem = currency.problem(levels_at, lag_s, now)
    if problem is not None:
        condition = Condition.ACTIVE
    elif lag_s is None or lag_s <= currency.max_lag_s / 2:
        condition = Condition.RECOVERED
    else:
        condition = Condition.BAND
    behind = "unknown" if lag_reports is None else f"{lag_reports:,} reports"
    if lag_s is not None:
        behind += f", about {duration(lag_s)}"
    labels = {"alertname": ALERTNAME, "stage": STAGE, "severity": "critical"}
    if problem is not None:
        summary = f"Circle levels are not current: {problem}"
        description = (
            f"Last level pass {levels_at.isoformat(timespec='seconds')} by {worker}; lag then: {behind}. "
            "Until levels are current again, shortage alerts neither fire nor resolve and every circle "
            f"shows its last numbers. {WHAT_TO_DO}"
        )
    else:
        summary = "Circle levels are current"
        description = f"Last level pass {levels_at.isoformat(timespec='seconds')} by {worker}; lag: {behind}."
    annotations = {"summary": summary, "description": description, "levels_at": levels_at.isoformat()}
    return Verdict(condition, "critical", labels, annotations)


def rule(currency: Currency) -> Rule:
    """`PipelineStalled` over `pipeline_status`, for the operators, with its own no-hold policy."""

    def verdicts(rows: Sequence[dict[str, Any]], now: datetime) -> list[Verdict]:
        return [
            evaluate(
                r["levels_at"],
                None if r["lag_reports"] is None else int(r["lag_reports"]),
                r["lag_s"],
                r["worker"],
                currency,
                now,
            )
            for r in rows
        ]

    return Rule(RULE, "pipeline_status_for_rules", "operators", verdicts, {"stage": STAGE}, POLICY)


def duration(seconds: float) -> str:
    """`42 s`, `3 min 5 s`, `2 h 10 min`: for people."""
    s = max(0, round(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"
