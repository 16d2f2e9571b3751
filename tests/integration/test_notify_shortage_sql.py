"""The shortage rule's query gives the messages their facts: both coverages and the trend over the last hour.

Real PostgreSQL: levels written as the stream worker writes them, read by `levels_for_rules`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.rules import pipeline, shortage
from schema.db import QUERIES, connect
from tests.support import seed_tiny_city

NOW = datetime(2026, 11, 25, 8, tzinfo=UTC)


def _level(at: datetime, days: float) -> dict[str, Any]:
    return {
        "computed_at": at,
        "circle_id": "T1",
        "necessity": "rice",
        "stock": days * 250,
        "stock_unconfirmed": 0.0,
        "unconfirmed_age_s": None,
        "daily_demand": 250.0,
        "demand_source": "population",
        "demand_observed": None,
        "observed_raw": None,
        "days_of_supply": days,
        "coverage": 0.67,
        "coverage_stock": 0.9,
        "outlets_expected": 3,
        "outlets_fresh": 2,
        "status": "SHORTAGE",
        "lag_reports": 0,
        "lag_s": 0.0,
        "grade": None,
        "recorded_at": at,
    }


def test_levels_for_rules_gives_coverage_stock_and_the_trend(database_url: str) -> None:
    seed_tiny_city(database_url)
    rule = shortage.rule(0.2, pipeline.Currency(15.0, 60.0))
    with connect(database_url) as conn:
        # history: 3.2 days 70 minutes ago (the newest level at least an hour old), 5 days 3 hours ago (too old)
        for minutes, days in ((180, 5.0), (70, 3.2), (30, 2.8), (0, 2.4)):
            conn.execute(QUERIES["insert_circle_level"], _level(NOW - timedelta(minutes=minutes), days))
        conn.execute(QUERIES["upsert_circle_level_latest"], _level(NOW, 2.4))
        rows = conn.execute(QUERIES["levels_for_rules"], rule.params).fetchall()
        (verdict,) = rule.verdicts(rows, NOW + timedelta(seconds=5))
        notes = verdict.annotations
        assert notes["coverage"] == "0.67" and notes["coverage_stock"] == "0.90"
        assert notes["days_before"] == "3.2" and notes["trend"] == "-0.8" and notes["trend_window_min"] == "60"

        # no level between one and two hours old: no trend, rather than a misleading one
        conn.execute("DELETE FROM circle_levels WHERE computed_at = %s", (NOW - timedelta(minutes=70),))
        rows = conn.execute(QUERIES["levels_for_rules"], rule.params).fetchall()
        (verdict,) = rule.verdicts(rows, NOW + timedelta(seconds=5))
        assert "trend" not in verdict.annotations and verdict.annotations["days_of_supply"] == "2.4"
