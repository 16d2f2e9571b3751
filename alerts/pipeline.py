"""The alert dispatcher: the one place its stages are composed.

    stored levels, feed health, the level heartbeat
        -> evaluate (rules + lifecycle, outbox) -> deliver (notifiers, retry)

Rules: SupplyShortage (responders), SupplierFeedQuality and PipelineStalled
(operators). Levels that are not current (`alerts.rules.pipeline.Currency`)
are unknown to the shortage rule, and are what PipelineStalled pages about.

`run` composes two loops until cancelled, each with its own connection pool
so neither ever waits on the other:
- evaluate every `eval_interval_s` (one transaction; queues pages in the
  outbox) and wake delivery when it queued any;
- delivery (`alerts.dispatch.Dispatcher`): every second, or at once when
  woken, start a lane for each receiver with due rows; lanes send outside
  any transaction, concurrently per receiver, in order per alert; every
  `EXPIRE_EVERY_S` expire what could not be delivered in `notify_expire_h`.
A failing stage logs and retries on the next tick; it never stops the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

import httpx

from alerts.dispatch import DeliveryPolicy, Dispatcher
from alerts.evaluate import Page, evaluate_once
from alerts.model import Policy
from alerts.notify import Notifier
from alerts.notify.webhook import WebhookNotifier
from alerts.rules import Audience, feed, pipeline, shortage
from baogong.settings import Settings
from schema.db import DatabaseError, make_pool

log = logging.getLogger(__name__)
EXPIRE_EVERY_S = 30.0


async def run(settings: Settings) -> None:
    policy = Policy(for_s=settings.alert_for_s, clear_for_s=settings.alert_clear_for_s)
    delivery = DeliveryPolicy(
        timeout_s=settings.notify_timeout_s,
        lease_s=settings.notify_lease_s,
        expire_after_s=settings.notify_expire_h * 3600,
    )
    db_url = settings.database_url.get_secret_value()
    eval_pool = make_pool(db_url, max_size=2)
    delivery_pool = make_pool(db_url, max_size=4)
    await eval_pool.open(wait=True, timeout=60)
    await delivery_pool.open(wait=True, timeout=60)
    async with httpx.AsyncClient(timeout=settings.notify_timeout_s) as client:
        notifiers: dict[str, Notifier] = {}
        audiences: dict[Audience, list[str]] = {"responders": [], "operators": []}
        operator_urls = settings.operator_webhook_urls or settings.webhook_urls
        for audience, urls in (("responders", settings.webhook_urls), ("operators", operator_urls)):
            for url in urls:
                n = WebhookNotifier(url, client)
                notifiers[n.name] = n
                audiences[audience].append(n.name)  # type: ignore[index]
        currency = pipeline.Currency(settings.stall_bound_s, settings.max_lag_s)
        rules = [
            shortage.rule(settings.hysteresis, currency),
            feed.rule(settings.feed_reject_ratio, settings.feed_min_rejects, settings.feed_window_min),
            pipeline.rule(currency),
        ]
        dispatcher = Dispatcher(delivery_pool, notifiers, delivery)
        log.info("alert dispatcher %s: receivers %s", dispatcher.owner, ", ".join(notifiers) or "(none configured)")
        queued = asyncio.Event()

        async def evaluating() -> None:
            while True:
                try:
                    pages = await evaluate_once(eval_pool, datetime.now(UTC), policy, rules, audiences)
                except DatabaseError as exc:
                    log.warning("evaluation skipped: %s", exc)
                else:
                    _log_pages(pages)
                    if pages:
                        queued.set()
                await asyncio.sleep(settings.eval_interval_s)

        async def delivering() -> None:
            next_expiry = 0.0
            while True:
                queued.clear()
                try:
                    if time.monotonic() >= next_expiry:
                        next_expiry = time.monotonic() + EXPIRE_EVERY_S
                        await dispatcher.expire()
                    await dispatcher.poke()
                except DatabaseError as exc:
                    log.warning("delivery skipped: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queued.wait(), 1.0)

        try:
            async with asyncio.TaskGroup() as stages:
                stages.create_task(evaluating(), name="evaluate")
                stages.create_task(delivering(), name="deliver")
        finally:
            await dispatcher.close()
            await delivery_pool.close()
            await eval_pool.close()


def _log_pages(pages: list[Page]) -> None:
    for page in pages:
        log.info(
            "%s %s %s", page.event.value.upper(), page.alert.fingerprint, page.alert.annotations.get("summary", "")
        )
