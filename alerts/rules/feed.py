"""The feed-quality rule: a supplier whose feed is mostly rejected, for the operators.

ACTIVE when, over the last `window_min` minutes, at least `min_rejects`
records were rejected and they are at least `ratio` of all its records
(the dead-letter topic is capped per supplier, so this alert is how a
garbage feed gets noticed); RECOVERED when the rejected share falls below
half of `ratio`, or the supplier sent nothing in the window; BAND between.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from alerts.model import Condition, Verdict
from alerts.rules import Rule

RULE = "feed_quality"
ALERTNAME = "SupplierFeedQuality"


def evaluate(
    supplier_id: str,
    supplier_name: str,
    accepted: int,
    rejected: int,
    dead_lettered: int,
    ratio: float,
    min_rejects: int,
    window_min: int,
) -> Verdict:
    total = accepted + rejected
    share = rejected / total if total else 0.0
    if rejected >= min_rejects and share >= ratio:
        condition = Condition.ACTIVE
    elif total == 0 or share < ratio / 2:
        condition = Condition.RECOVERED
    else:
        condition = Condition.BAND
    labels = {"alertname": ALERTNAME, "supplier": supplier_id, "severity": "warning"}
    annotations = {
        "summary": f"{supplier_name}: {share:.0%} of {total:,} records rejected in the last {window_min} min",
        "description": (
            f"Supplier {supplier_id} sent {accepted:,} good and {rejected:,} rejected records; {dead_lettered:,} "
            "went to supply.deadletter.v1 (the rest were over the dead-letter cap). Check the feed's "
            "rejection reasons and contact the supplier."
        ),
    }
    return Verdict(condition, "warning", labels, annotations)


def rule(ratio: float, min_rejects: int, window_min: int) -> Rule:
    def verdicts(rows: Sequence[dict[str, Any]], now: datetime) -> list[Verdict]:
        return [
            evaluate(
                r["supplier_id"],
                r["supplier_name"],
                int(r["accepted"]),
                int(r["rejected"]),
                int(r["dead_lettered"]),
                ratio,
                min_rejects,
                window_min,
            )
            for r in rows
        ]

    return Rule(RULE, "feed_quality", "operators", verdicts, {"window": window_min})
