"""The demo's emergency supply team of the short circle: what a responder does, on the demo's clock.

Nobody answers the first page, so it escalates to the circle owner; then the
team's on-call member acknowledges (which opens a supply task with suggested
sources), dispatches the goods, and marks them delivered just before the
scenario's deliveries arrive; the level recovers and the task closes by itself.
It acts through the same functions the responder API and `baogong alerts ack`
/ `baogong tasks dispatch|deliver` use, so the demo shows the real lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from alerts import actions, tasks_store
from baogong.demo.simulator import Scenario
from schema.db import connect

#: Who answers in the demo (the demo teams are synthetic: schema/demo_teams.yaml).
ACTOR = "长安社区保供队 值班员（示例）"


@dataclass
class DemoResponder:
    """Steps the team through one shortage episode; `act` is called every demo tick, it never blocks long."""

    url: str
    scenario: Scenario
    dispatch_after_s: float = 15.0
    acknowledged_at: float | None = None
    task_id: int | None = None
    state: str = "waiting for the page"

    def act(self, elapsed: float) -> None:
        with connect(self.url) as conn:
            alert = conn.execute(
                "SELECT id, state, escalation_level FROM alerts WHERE rule = 'shortage' AND circle_id = %s "
                "AND necessity = %s AND state <> 'resolved' ORDER BY id DESC LIMIT 1",
                (self.scenario.circle_id, self.scenario.necessity),
            ).fetchone()
            now = datetime.now(UTC)
            if self.acknowledged_at is None:
                if alert is None or alert["state"] != "firing":
                    return
                if int(alert["escalation_level"] or 0) < 1:
                    self.state = "paged; nobody has acknowledged yet (it escalates after 30 s)"
                    return
                note = "收到，已联系周边门店调货"
                outcome = actions.acknowledge(conn, int(alert["id"]), ACTOR, now, note, via="demo")
                self.acknowledged_at, self.task_id = elapsed, outcome.task_id
                self.state = f"acknowledged by {ACTOR} after the escalation"
                return
            if self.task_id is None:
                return
            task = tasks_store.get_task(conn, self.task_id)
            if task.state == "open" and elapsed >= self.acknowledged_at + self.dispatch_after_s:
                tasks_store.advance(conn, self.task_id, "dispatched", ACTOR, now)
            elif task.state == "dispatched" and elapsed >= self.scenario.short_until_s - 5:
                tasks_store.advance(conn, self.task_id, "delivered", ACTOR, now)

    def lines(self) -> list[str]:
        """What the terminal shows of the team's work: the task, its target and suggested sources."""
        if self.task_id is None:
            return [f"emergency supply team of {self.scenario.circle_id}: {self.state}"]
        with connect(self.url) as conn:
            task = tasks_store.get_task(conn, self.task_id)
        target = "unknown" if task.target_quantity is None else f"{task.target_quantity:,.0f}"
        out = [
            f"supply task {task.id} ({task.circle_id}/{task.necessity}): {task.state.upper()}, "
            f"target {target} {task.unit} to reach {task.target_days or 0:g} days; suggested sources:"
        ]
        for s in task.suggestions[:4]:
            out.append(
                f"    {s.get('outlet_name') or s.get('outlet_id')} ({s.get('circle_id')}, "
                f"{float(s.get('distance_km') or 0):.1f} km): {float(s.get('quantity') or 0):,.0f}"
            )
        return out
