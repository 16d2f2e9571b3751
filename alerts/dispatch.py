"""Delivering the outbox: concurrent per receiver, in order per alert, never stalled by a receiver.

Evaluation writes notifications (`notifications`, the outbox) in its own
transaction; delivery only reads and updates them, in short transactions of
its own, and never holds one while a receiver is called:

1. claim: lease up to `DeliveryPolicy.batch` of one receiver's due rows
   (`lease_owner`, `leased_until` = now + `lease_s`), at most one per alert —
   the oldest undelivered one — so a resolution never overtakes its firing;
2. send: each claimed row through the receiver's notifier, concurrently,
   each bounded by its timeout (a hanging receiver costs at most that);
3. record: delivered, or failed with exponential back-off
   (`backoff_s`: 1 s doubling to 5 min), with an attempt row each time
   (`notification_attempts`, the notification log).

Each receiver has its own lane (an asyncio task) that loops claim -> send ->
record while it has due rows, so one receiver that hangs or fails delays
nobody else's pages. Several dispatchers may run: claims skip rows another
holds. A dispatcher killed between "decided" and "sent" loses nothing: its
lease lapses and the row is claimed again (and its lost attempt recorded).
Delivery is therefore at-least-once; a receiver de-duplicates by the
payload's `fingerprint` + `status` (or `groupKey` + `status`), as
Alertmanager's receivers do. A row still queued `expire_after_s` after it was
written (a dead or unconfigured receiver) is expired, visibly: state
'expired', its last error kept, shown by `baogong alerts log --undelivered`.

Times come from the caller (`now`, `clock`), never from the database's
`now()`, so tests drive them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from alerts.notify import Notifier, NotifyError
from schema.db import QUERIES, DatabaseError, Row, transaction

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def dispatcher_id() -> str:
    """This process's lease-owner name: host, pid and a random tag (a restarted pid is someone else)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How delivery behaves; see the module docstring.

    `timeout_s` bounds one notifier call in total (connect, send, answer); a
    notifier may carry its own `timeout_s` attribute, which wins (capped below
    the lease). `lease_s` must exceed every timeout: a lease that lapses while
    its row is still being sent lets another dispatcher send it too.
    """

    timeout_s: float = 10.0
    lease_s: float = 60.0
    expire_after_s: float = 24 * 3600.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    batch: int = 10

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.backoff_initial_s <= 0 or self.batch < 1:
            raise ValueError("timeout_s and backoff_initial_s must be positive, batch at least 1")
        if self.lease_s <= self.timeout_s:
            raise ValueError(
                f"notify lease ({self.lease_s:g} s) must be longer than the notify timeout ({self.timeout_s:g} s): "
                "a lease that runs out mid-send lets a second dispatcher send the same page"
            )

    def backoff_s(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1, 2, …): doubling, capped."""
        return min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** min(max(attempt - 1, 0), 30))

    def timeout_for(self, notifier: Notifier) -> float:
        """The notifier's own `timeout_s` if it has one, else `timeout_s`; never more than 90 % of the lease."""
        own = getattr(notifier, "timeout_s", None)
        return min(float(own) if own else self.timeout_s, 0.9 * self.lease_s)


async def deliver_once(
    pool: AsyncConnectionPool[Any],
    notifier: Notifier,
    owner: str,
    policy: DeliveryPolicy,
    clock: Clock = utc_now,
) -> int:
    """Claim one batch of `notifier`'s due rows, send them, record each outcome; return how many were claimed.

    0 means nothing of this receiver is due at `clock()`. Never raises for a
    receiver's failure (that is recorded and retried); raises DatabaseError
    when the outbox cannot be read or written (a row already sent but not
    recorded is then sent again after its lease: at-least-once).
    """
    now = clock()
    async with transaction(pool) as conn, conn.cursor() as cur:
        await cur.execute(
            QUERIES["claim_notifications"],
            {"receiver": notifier.name, "now": now, "owner": owner, "lease_s": policy.lease_s, "limit": policy.batch},
        )
        rows = await cur.fetchall()
    results = await asyncio.gather(
        *(_send(pool, notifier, row, owner, now, policy, clock) for row in rows), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return len(rows)


async def _send(
    pool: AsyncConnectionPool[Any],
    notifier: Notifier,
    row: Row,
    owner: str,
    started_at: datetime,
    policy: DeliveryPolicy,
    clock: Clock,
) -> None:
    timeout = policy.timeout_for(notifier)
    try:
        try:
            await asyncio.wait_for(notifier.notify(row["payload"]), timeout)
        except TimeoutError as exc:
            raise NotifyError(f"{notifier.name}: no answer within {timeout:g} s", recoverable=True) from exc
        except NotifyError:
            raise
        except Exception as exc:  # a notifier's bug must not stall the lane: record it, retry, keep it visible
            log.exception("notifier %s raised", notifier.name)
            raise NotifyError(f"{notifier.name}: {type(exc).__name__}: {exc}", recoverable=False) from exc
    except NotifyError as exc:
        backoff = policy.backoff_s(int(row["attempts"]))
        log.warning(
            "notification %s (%s) to %s failed (attempt %d), retry in %.0fs: %s",
            row["id"],
            row["status"],
            row["receiver"],
            row["attempts"],
            backoff,
            exc,
        )
        params = {"error": str(exc), "backoff_s": backoff}
        query = "mark_failed"
    else:
        params = {}
        query = "mark_delivered"
    async with transaction(pool) as conn:
        await conn.execute(
            QUERIES[query],
            {"id": row["id"], "attempt": row["attempts"], "owner": owner, "started_at": started_at, "now": clock()}
            | params,
        )


async def expire(
    pool: AsyncConnectionPool[Any], now: datetime, policy: DeliveryPolicy, owner: str = "dispatcher"
) -> list[Row]:
    """Expire rows queued since before `now - expire_after_s`; return them (logged as warnings).

    Never expires a row while a live lease is on it. The rows stay in the
    outbox with state 'expired', `expired_at`, their last error, and an
    'expired' attempt saying why.
    """
    reason = f"not delivered within {policy.expire_after_s / 3600:g} h"
    before = now.timestamp() - policy.expire_after_s
    async with transaction(pool) as conn, conn.cursor() as cur:
        await cur.execute(
            QUERIES["expire_notifications"],
            {"now": now, "before": datetime.fromtimestamp(before, UTC), "owner": owner, "reason": reason},
        )
        rows = await cur.fetchall()
    for r in rows:
        log.warning(
            "notification %s (%s, alert %s) to %s EXPIRED after %d attempt(s); last error: %s",
            r["id"],
            r["status"],
            r["alert_id"],
            r["receiver"],
            r["attempts"],
            r["last_error"] or "never attempted",
        )
    return rows


class Dispatcher:
    """One lane (asyncio task) per receiver with due rows; `poke` starts missing lanes, `close` stops them.

    `notifiers` maps receiver names (the outbox's `receiver`) to notifiers;
    rows for a name it does not hold are left for a dispatcher that does,
    and expire if none does. Lanes end when their receiver has nothing due;
    the caller pokes again (after each evaluation that queued pages, and on
    a timer for rows whose back-off ran out).
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        notifiers: Mapping[str, Notifier],
        policy: DeliveryPolicy,
        owner: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._pool = pool
        self._notifiers = notifiers
        self.policy = policy
        self.owner = owner or dispatcher_id()
        self._clock = clock
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._unknown: set[str] = set()

    async def poke(self) -> int:
        """Start a lane for every receiver with due rows and none running; return how many started.

        One short query; never waits on a receiver. Raises DatabaseError.
        """
        async with transaction(self._pool) as conn, conn.cursor() as cur:
            await cur.execute(QUERIES["due_receivers"], {"now": self._clock()})
            due = [r["receiver"] for r in await cur.fetchall()]
        started = 0
        for receiver in due:
            lane = self._lanes.get(receiver)
            if lane is not None and not lane.done():
                continue
            notifier = self._notifiers.get(receiver)
            if notifier is None:
                if receiver not in self._unknown:
                    self._unknown.add(receiver)
                    log.warning("notifications queued for receiver %s, which this dispatcher does not have", receiver)
                continue
            self._lanes[receiver] = asyncio.create_task(self._lane(notifier), name=f"deliver:{receiver}")
            started += 1
        return started

    async def expire(self) -> list[Row]:
        return await expire(self._pool, self._clock(), self.policy, self.owner)

    async def _lane(self, notifier: Notifier) -> None:
        while True:
            try:
                if not await deliver_once(self._pool, notifier, self.owner, self.policy, self._clock):
                    return
            except DatabaseError as exc:
                log.warning("delivery to %s paused: %s", notifier.name, exc)
                return

    async def close(self) -> None:
        """Stop every lane. Rows they were sending keep their lease and are sent again once it lapses."""
        lanes = list(self._lanes.values())
        for lane in lanes:
            lane.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        self._lanes.clear()
