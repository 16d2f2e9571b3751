"""Delivering queued notifications (the outbox) to their receivers.

`deliver_due` claims due notifications with `FOR UPDATE SKIP LOCKED` (several
dispatchers may run), sends each through its receiver's notifier, and marks
it delivered, or failed with exponential back-off (1 s doubling to 5 min).
A page is never dropped: an undelivered one stays in `notifications` with
its last error, visible to operators, and is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from psycopg_pool import AsyncConnectionPool

from alerts.notify import Notifier, NotifyError
from schema.db import QUERIES, transaction

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 300.0


async def deliver_due(pool: AsyncConnectionPool, notifiers: Mapping[str, Notifier], limit: int = 50) -> int:
    """Deliver what is due; return how many were delivered."""
    delivered = 0
    async with transaction(pool) as conn, conn.cursor() as cur:
        await cur.execute(QUERIES["claim_notifications"], {"limit": limit})
        for row in await cur.fetchall():
            notifier = notifiers.get(row["receiver"])
            try:
                if notifier is None:
                    raise NotifyError(f"receiver {row['receiver']} is not configured", recoverable=False)
                await notifier.notify(row["payload"])
            except NotifyError as exc:
                backoff = min(MAX_BACKOFF_S, 2.0 ** min(int(row["attempts"]), 12))
                log.warning(
                    "notification %s to %s failed (attempt %d), retry in %.0fs: %s",
                    row["id"],
                    row["receiver"],
                    row["attempts"] + 1,
                    backoff,
                    exc,
                )
                await cur.execute(QUERIES["mark_failed"], {"id": row["id"], "error": str(exc), "backoff_s": backoff})
                continue
            await cur.execute(QUERIES["mark_delivered"], {"id": row["id"]})
            delivered += 1
    return delivered
