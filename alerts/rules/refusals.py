"""The refused-requests rule: an API key that keeps sending what the API refuses, for the operators.

Beside SupplierFeedQuality (which counts records), this counts requests
(`feed_requests`, written by the API: ingest/refusals.py): bodies too large
(413), too slow (408), unusable (400), over the rate (429) or with no valid
record (422/403). ACTIVE when, over the last `window_min` minutes, a key had
at least `min_refused` requests refused and they are at least `ratio` of its
requests; RECOVERED when the refused share falls below half of `ratio`, or
the key sent nothing in the window; BAND between. One alert per key, so a
supplier's misconfigured ERP is told apart from its healthy one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from alerts.model import Condition, Verdict
from alerts.rules import Rule
from schema.db import SCHEMA_DIR, load_queries

RULE = "requests_refused"
ALERTNAME = "SupplierRequestsRefused"
QUERIES = load_queries(SCHEMA_DIR / "refusals.sql")
OUTCOMES = ("oversize", "throttled", "timeout", "bad_request", "rejected")


def evaluate(row: dict[str, Any], ratio: float, min_refused: int, window_min: int) -> Verdict:
    """The verdict for one key's row of `refused_requests` (pure)."""
    requests, refused = int(row["requests"]), int(row["refused"])
    share = refused / requests if requests else 0.0
    if refused >= min_refused and share >= ratio:
        condition = Condition.ACTIVE
    elif requests == 0 or share < ratio / 2:
        condition = Condition.RECOVERED
    else:
        condition = Condition.BAND
    supplier, key = row["supplier_id"], row["key_prefix"]
    labels = {"alertname": ALERTNAME, "supplier": supplier, "key": key, "severity": "warning"}
    by_outcome = ", ".join(f"{int(row[o]):,} {o}" for o in OUTCOMES if int(row[o]))
    annotations = {
        "summary": f"{row['supplier_name']}: key {key}… had {refused:,} of {requests:,} requests refused "
        f"in the last {window_min} min",
        "description": (
            f"Supplier {supplier}, key {key}: {by_outcome or 'none refused'}. The API's /metrics has "
            "baogong_api_requests_total by outcome; contact the supplier about its sender (batch size, "
            "format, rate), or revoke the key if it is abused (`baogong keys revoke`)."
        ),
    }
    return Verdict(condition, "warning", labels, annotations)


def rule(ratio: float, min_refused: int, window_min: int) -> Rule:
    def verdicts(rows: Sequence[dict[str, Any]], now: datetime) -> list[Verdict]:
        return [evaluate(dict(r), ratio, min_refused, window_min) for r in rows]

    return Rule(
        RULE, "refused_requests", "operators", verdicts, {"window": window_min}, sql=QUERIES["refused_requests"]
    )
