"""The alert dispatcher: the one place its stages are composed.

    stored levels, feed health, the level heartbeat
        -> evaluate (rules + lifecycle, outbox) -> deliver (notifiers, retry)

Rules: SupplyShortage (responders), SupplierFeedQuality and PipelineStalled
(operators). Levels that are not current (`alerts.rules.pipeline.Currency`)
are unknown to the shortage rule, and are what PipelineStalled pages about.

`run` loops until cancelled: evaluate every `eval_interval_s`, deliver
whatever is due every second. A failing stage logs and retries on the next
tick; it never stops the other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import httpx

from alerts.dispatch import deliver_due
from alerts.evaluate import evaluate_once
from alerts.model import Policy
from alerts.notify import Notifier
from alerts.notify.webhook import WebhookNotifier
from alerts.rules import Audience, feed, pipeline, shortage
from baogong.settings import Settings
from schema.db import DatabaseError, make_pool

log = logging.getLogger(__name__)


async def run(settings: Settings) -> None:
    policy = Policy(for_s=settings.alert_for_s, clear_for_s=settings.alert_clear_for_s)
    pool = make_pool(settings.database_url.get_secret_value(), max_size=2)
    await pool.open(wait=True, timeout=60)
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
        log.info("alert dispatcher: receivers %s", ", ".join(notifiers) or "(none configured)")
        next_eval = 0.0
        try:
            while True:
                if time.monotonic() >= next_eval:
                    next_eval = time.monotonic() + settings.eval_interval_s
                    try:
                        for page in await evaluate_once(pool, datetime.now(UTC), policy, rules, audiences):
                            log.info(
                                "%s %s %s",
                                page.event.value.upper(),
                                page.alert.fingerprint,
                                page.alert.annotations.get("summary", ""),
                            )
                    except DatabaseError as exc:
                        log.warning("evaluation skipped: %s", exc)
                try:
                    await deliver_due(pool, notifiers)
                except DatabaseError as exc:
                    log.warning("delivery skipped: %s", exc)
                await asyncio.sleep(1.0)
        finally:
            await pool.close()
