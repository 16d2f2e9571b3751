"""The alert dispatcher: the one place its stages are composed.

    stored levels, feed health, the level heartbeat
        -> evaluate (rules, lifecycle, escalation, routing, grouping, silences; outbox)
        -> deliver (notifiers, retry)

Rules: SupplyShortage, PriceSpike and PanicBuying (responders; alerts.rules.price),
SupplierFeedQuality, SupplierRequestsRefused and PipelineStalled (operators). Levels that are not current
(`alerts.rules.pipeline.Currency`) are unknown to the shortage rule, and are what PipelineStalled pages about.

Who is paged: the responder teams (`schema.teams_store.load_directory_async`,
reloaded every `teams_reload_s`), routed by `alerts.route`; with no team
configured, or none answering for an alert, the default receivers
(`webhook_urls` for responders, `operator_webhook_urls` for operators).
Every channel of every team is a notifier named by its receiver
(`team:<team>/<channel>`), built from the channel and who is on call now
(e-mail and SMS without fixed recipients reach the on-call members); they
are rebuilt when the teams or the people on call change.

`run` composes two loops until cancelled, each with its own connection pool
so neither ever waits on the other:
- evaluate every `eval_interval_s` (one transaction; queues pages in the
  outbox) and wake delivery when it queued any;
- delivery (`alerts.dispatch.Dispatcher`): every second, or at once when
  woken, start a lane for each receiver with due rows; lanes send outside
  any transaction, concurrently per receiver, in order per group; every
  `EXPIRE_EVERY_S` expire what could not be delivered in `notify_expire_h`.
A failing stage logs and retries on the next tick; it never stops the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from alerts import escalate
from alerts.dispatch import DeliveryPolicy, Dispatcher
from alerts.evaluate import Lifecycle, Wave, evaluate_once
from alerts.group import Routing
from alerts.model import Policy
from alerts.notify import ChannelError, Notifier, build, parse_channel
from alerts.notify.webhook import WebhookNotifier
from alerts.route import on_call
from alerts.rules import feed, pipeline, price, refusals, shortage
from baogong.settings import Settings
from schema.db import DatabaseError, make_pool, transaction
from schema.teams import Directory
from schema.teams_store import load_directory_async

log = logging.getLogger(__name__)
EXPIRE_EVERY_S = 30.0


class Named:
    """A notifier under its outbox receiver name (`team:C03-team/wecom`): the dispatcher claims rows by `name`."""

    def __init__(self, name: str, notifier: Notifier) -> None:
        self.name = name
        self.inner = notifier
        timeout = getattr(notifier, "timeout_s", None)
        if timeout:
            self.timeout_s = timeout

    async def notify(self, payload: dict[str, Any]) -> None:
        await self.inner.notify(payload)


def default_receivers(
    settings: Settings, client: httpx.AsyncClient
) -> tuple[dict[str, Notifier], dict[str, tuple[str, ...]]]:
    """The webhook notifiers of `webhook_urls` (responders) and `operator_webhook_urls` (operators; default: same)."""
    notifiers: dict[str, Notifier] = {}
    fallback: dict[str, tuple[str, ...]] = {}
    operator_urls = settings.operator_webhook_urls or settings.webhook_urls
    for audience, urls in (("responders", settings.webhook_urls), ("operators", operator_urls)):
        names = []
        for url in urls:
            n = WebhookNotifier(url, client)
            notifiers[n.name] = n
            names.append(n.name)
        fallback[audience] = tuple(names)
    return notifiers, fallback


def team_notifiers(directory: Directory, now: datetime, client: httpx.AsyncClient) -> dict[str, Notifier]:
    """A notifier for every channel of every team, with who is on call at `now`; bad channels are logged, skipped."""
    out: dict[str, Notifier] = {}
    for team in directory.teams.values():
        people = on_call(team, now)
        for channel in team.channels:
            receiver = channel.receiver(team.id)
            try:
                out[receiver] = Named(receiver, build(parse_channel(channel.settings(people)), client))
            except ChannelError as exc:
                log.warning("team %s channel %s not usable: %s", team.id, channel.label, exc)
    return out


def on_call_signature(directory: Directory, now: datetime) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Who is on call in every team at `now`: notifiers are rebuilt when this changes."""
    return tuple((t.id, tuple(m.id for m in on_call(t, now))) for t in directory.teams.values())


class Teams:
    """The directory the dispatcher routes with, reloaded every `reload_s`, and the notifiers of its channels.

    `notifiers` is the mapping the Dispatcher reads; it is updated in place (defaults + team channels).
    A directory that cannot be loaded keeps the last one (logged).
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        client: httpx.AsyncClient,
        defaults: Mapping[str, Notifier],
        fallback: Mapping[str, tuple[str, ...]],
        notifiers: MutableMapping[str, Notifier],
        reload_s: float,
    ) -> None:
        self._pool = pool
        self._client = client
        self._defaults = dict(defaults)
        self._fallback = dict(fallback)
        self.notifiers = notifiers
        self._reload_s = reload_s
        self._loaded_at = -1e18
        self.directory: Directory | None = None
        self._signature: object = None
        self.notifiers.update(self._defaults)

    async def routing(self, now: datetime) -> Routing:
        if time.monotonic() - self._loaded_at >= self._reload_s:
            try:
                async with transaction(self._pool) as conn:
                    directory = await load_directory_async(conn)
            except DatabaseError as exc:
                log.warning("teams not reloaded (keeping the last): %s", exc)
            else:
                self._loaded_at = time.monotonic()
                if directory != self.directory:
                    log.info("teams: %d loaded", len(directory.teams))
                    self.directory = directory
                    self._signature = None
        if self.directory is not None:
            signature = (id(self.directory), on_call_signature(self.directory, now))
            if signature != self._signature:
                self._signature = signature
                fresh = {**self._defaults, **team_notifiers(self.directory, now, self._client)}
                for gone in set(self.notifiers) - set(fresh):
                    del self.notifiers[gone]
                self.notifiers.update(fresh)
        return Routing(self.directory, self._fallback)


def lifecycle(settings: Settings) -> Lifecycle:
    return Lifecycle(
        policy=Policy(for_s=settings.alert_for_s, clear_for_s=settings.alert_clear_for_s),
        timers=escalate.Timers.from_settings(settings),
        reopen_window_s=settings.reopen_window_s,
        public_url=settings.public_url if settings.action_secret is not None else "",
        action_secret=settings.action_secret,
        link_ttl=timedelta(hours=settings.action_link_ttl_h),
    )


async def run(settings: Settings) -> None:
    life = lifecycle(settings)
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
        defaults, fallback = default_receivers(settings, client)
        teams = Teams(eval_pool, client, defaults, fallback, notifiers, settings.teams_reload_s)
        currency = pipeline.Currency(settings.stall_bound_s, settings.max_lag_s)
        rules = [
            shortage.rule(settings.hysteresis, currency),
            feed.rule(settings.feed_reject_ratio, settings.feed_min_rejects, settings.feed_window_min),
            refusals.rule(settings.refused_ratio, settings.refused_min_requests, settings.feed_window_min),
            pipeline.rule(currency),
            price.spike_rule(settings.price_max_age_s),
            price.panic_rule(settings.price_max_age_s, currency),
        ]
        dispatcher = Dispatcher(delivery_pool, notifiers, delivery)
        log.info("alert dispatcher %s: default receivers %s", dispatcher.owner, ", ".join(defaults) or "(none)")
        queued = asyncio.Event()

        async def evaluating() -> None:
            while True:
                now = datetime.now(UTC)
                try:
                    routing = await teams.routing(now)
                    wave = await evaluate_once(eval_pool, now, rules, routing, life)
                except DatabaseError as exc:
                    log.warning("evaluation skipped: %s", exc)
                else:
                    _log_wave(wave)
                    if wave.queued:
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


def _log_wave(wave: Wave) -> None:
    for n in wave.notices:
        log.info(
            "%s %s %s -> %s %s",
            n.reason.upper(),
            n.alert.fingerprint,
            n.alert.annotations.get("summary", ""),
            ", ".join(n.teams),
            n.note,
        )
    if wave.silenced:
        log.info("%d page(s) held back by silences", wave.silenced)
