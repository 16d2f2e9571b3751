"""The demo's emergency: the bureau declares grade III over one circle part-way, and the table shows
what it did to that circle's days of supply (before → after) once the worker has computed levels under it.

It declares through `schema.emergency_store` as `baogong emergency declare` does, as the demo bureau.
Emergencies the demo declared are lifted when it starts (a run stopped by a crash left one behind) and
when it stops, so a later run, or the real work after it, starts in normal times.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from schema.db import Row, connect
from schema.emergency import Grade, Scope, rules
from schema.emergency_store import QUERIES, declare, lift, list_emergencies

BY = "demo:市商务局"
SHOWN = ("rice", "pork", "leafy_vegetables", "bottled_water", "fever_medicine")


class DemoEmergency:
    """Declares `grade` over `circle_id` at `at_s` seconds into the demo; `lines()` says what changed."""

    def __init__(self, url: str, circle_id: str = "C05", grade: Grade = Grade.III, at_s: float = 40.0) -> None:
        self.url = url
        self.circle_id = circle_id
        self.grade = grade
        self.at_s = at_s
        self.declared_at: datetime | None = None
        self.before: dict[str, tuple[float | None, str]] = {}
        lift_demo_emergencies(url, "the demo starts in normal times")

    def act(self, elapsed_s: float) -> None:
        """Declare once `at_s` has passed, remembering the circle's levels just before."""
        if self.declared_at is not None or elapsed_s < self.at_s:
            return
        with connect(self.url) as conn:
            self.before = self._levels(conn, graded=False)
            now = datetime.now(UTC)
            declare(conn, Scope("circle", self.circle_id), self.grade, "演示：圈内突发封控，居民集中采购", BY, now)
        self.declared_at = now

    def lines(self) -> list[str]:
        if self.declared_at is None:
            return [f"emergency: none yet (grade {self.grade.roman} over {self.circle_id} at t={self.at_s:.0f}s)"]
        r = rules(self.grade)
        assert r is not None
        head = (
            f"emergency: {self.circle_id} at grade {self.grade.roman} {self.grade.name_zh} by {BY} — demand "
            f"x{r.demand_multiplier:g}, thresholds x{r.threshold_factor:g}, reports every {r.report_every_h:g} h"
        )
        with connect(self.url) as conn:
            after = self._levels(conn, graded=True)
        if not after:
            return [head, "  (waiting for the worker's next levels under it)"]
        cells = []
        for n in SHOWN:
            (d0, s0), (d1, s1) = self.before.get(n, (None, "?")), after.get(n, (None, "?"))
            cells.append(f"{n} {_days(d0)} {s0} → {_days(d1)} {s1}")
        return [head, "  days of supply before → after: " + "; ".join(cells)]

    def _levels(self, conn: psycopg.Connection[Row], *, graded: bool) -> dict[str, tuple[float | None, str]]:
        rows = conn.execute(QUERIES["circle_latest_levels"], {"circle_id": self.circle_id}).fetchall()
        if graded and not any(r["grade"] == int(self.grade) for r in rows):
            return {}
        return {r["necessity"]: (r["days_of_supply"], r["status"]) for r in rows}


def lift_demo_emergencies(url: str, reason: str) -> None:
    """Lift every emergency the demo declared (never anyone else's)."""
    now = datetime.now(UTC)
    with connect(url) as conn:
        for e in list_emergencies(conn, now):
            if e.declared_by == BY:
                lift(conn, e.id, BY, reason, now)


def _days(days: float | None) -> str:
    return "?" if days is None else f"{days:.1f}"
