"""Rule evaluation: stored rows in, alert changes and queued notifications out.

`evaluate_once` runs in one transaction under an advisory lock, so two
dispatchers never evaluate at once: for each rule it reads the subjects and
the rule's open alerts, steps each through `alerts.model.step`, writes the
changes, and queues one notification per receiver of the rule's audience for
every page (the outbox). Either all of that commits or none of it does, so a
page is never lost between "the alert fired" and "someone must be told".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from alerts.model import Alert, Event, Policy, step
from alerts.notify.webhook import alertmanager_payload
from alerts.rules import Audience, Rule
from schema.db import QUERIES, Row, transaction


@dataclass(frozen=True, slots=True)
class Page:
    alert: Alert
    event: Event


async def evaluate_once(
    pool: AsyncConnectionPool[Any],
    now: datetime,
    policy: Policy,
    rules: Sequence[Rule],
    receivers: Mapping[Audience, Sequence[str]],
) -> list[Page]:
    """Evaluate every rule once as of `now`; return the pages queued.

    `policy` holds for every rule that has none of its own (`Rule.policy`).
    """
    pages: list[Page] = []
    async with transaction(pool) as conn, conn.cursor() as cur:
        await cur.execute(QUERIES["evaluation_lock"])
        for rule in rules:
            await cur.execute(QUERIES[rule.query], rule.params or {})
            verdicts = rule.verdicts(await cur.fetchall(), now)
            await cur.execute(QUERIES["open_alerts"], {"rule": rule.name})
            open_alerts = {r["fingerprint"]: _alert(r) for r in await cur.fetchall()}
            for verdict in verdicts:
                before = open_alerts.get(verdict.fingerprint)
                after, event = step(before, verdict, rule.name, now, rule.policy or policy)
                if after is None or after == before:
                    continue
                if after.id is None:
                    await cur.execute(QUERIES["insert_alert"], _params(after))
                    created = await cur.fetchone()
                    assert created is not None
                    after = replace(after, id=int(created["id"]))
                else:
                    await cur.execute(QUERIES["update_alert"], _params(after))
                if event is None:
                    continue
                pages.append(Page(after, event))
                for receiver in receivers.get(rule.audience, ()):
                    await cur.execute(
                        QUERIES["insert_notification"],
                        {
                            "alert_id": after.id,
                            "receiver": receiver,
                            "status": event.value,
                            "payload": Jsonb(alertmanager_payload(after, event, receiver)),
                        },
                    )
    return pages


def _alert(r: Row) -> Alert:
    return Alert(
        id=int(r["id"]),
        fingerprint=r["fingerprint"],
        rule=r["rule"],
        severity=r["severity"],
        state=r["state"],
        labels=r["labels"],
        annotations=r["annotations"],
        pending_since=r["pending_since"],
        starts_at=r["starts_at"],
        clearing_since=r["clearing_since"],
        circle_id=r["circle_id"],
        necessity=r["necessity"],
    )


def _params(a: Alert) -> dict[str, object]:
    return {
        "id": a.id,
        "fingerprint": a.fingerprint,
        "rule": a.rule,
        "circle_id": a.circle_id,
        "necessity": a.necessity,
        "severity": a.severity,
        "state": a.state,
        "labels": Jsonb(a.labels),
        "annotations": Jsonb(a.annotations),
        "pending_since": a.pending_since,
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "clearing_since": a.clearing_since,
    }
