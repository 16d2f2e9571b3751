"""Faust app wiring only: the app, its topics, its agents. No domain logic here.

`create_app(settings)` builds the worker. The report agents read the supply
topics with consumers of their own (`streams.supply_consumer`: workers form a
Kafka consumer group for the supply topics), run as tasks of the app; they
commit Kafka's offsets only after a batch's database write committed, and
every write is idempotent. The Faust app's own consumer group elects the
leader that runs the full level pass, rollups and price grades; the app also
serves /metrics and publishes circle levels and dead letters.

Before building the app, `create_app` blocks until the broker answers and the
worker's topics exist, creating the missing ones (`wait_for_topics`): a worker
started before the API, or while the broker is down, waits and retries with a
log line instead of crashing or idling on topics it cannot see.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import faust

from baogong import gc_policy
from baogong.settings import Settings
from schema import topics
from streams import metrics
from streams.agents import levels, maintain, prices, reports
from streams.state import WorkerState
from streams.supply_consumer import membership

log = logging.getLogger(__name__)

#: The topics a worker reads or writes.
WORKER_TOPICS = (topics.INVENTORY, topics.PRICES, topics.DEADLETTER, topics.CIRCLE_LEVELS, topics.PRICE_LEVELS)


def wait_for_topics(
    settings: Settings, *, sleep: Callable[[float], None] = time.sleep, max_backoff_s: float = 30.0
) -> None:
    """Block until the broker answers and every topic in WORKER_TOPICS exists; retries forever with back-off."""
    names = [settings.topic(t.name) for t in WORKER_TOPICS]
    backoff = 1.0
    while True:
        try:
            _reachable(settings.kafka_bootstrap)  # fails at once, where kafka-python's bootstrap takes ~30 s
            topics.ensure_topics(settings.kafka_bootstrap, names, settings.partitions)
            return
        except Exception as exc:  # kafka-python raises KafkaError subclasses, or OSError underneath
            log.warning(
                "Kafka at %s: cannot make sure the worker's topics exist (%s: %s); trying again in %.0fs",
                settings.kafka_bootstrap,
                type(exc).__name__,
                exc,
                backoff,
            )
            sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)


def _reachable(bootstrap: str, timeout_s: float = 5.0) -> None:
    """Return when a TCP connection to one of the bootstrap servers succeeds; else raise the last OSError."""
    error: OSError = OSError(f"no bootstrap server in {bootstrap!r}")
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s).close()
            return
        except OSError as exc:
            error = exc
    raise error


def group_membership(settings: Settings) -> dict[str, Any]:
    """How the worker sits in the Faust app's consumer group (which elects the leader), as faust.App settings:
    the same session, heartbeats and static membership as the supply group (`streams.supply_consumer.membership`).
    """
    member = membership(settings)
    return {
        "broker_session_timeout": member.session_timeout_s,
        "broker_heartbeat_interval": member.heartbeat_interval_s,
        "broker_rebalance_timeout": member.rebalance_timeout_s,
        "consumer_group_instance_id": member.instance_id,
    }


def create_app(settings: Settings) -> faust.App:
    wait_for_topics(settings)
    datadir = settings.state_dir / "faust" / settings.worker_id  # Faust's default is ./<id>-data, in the checkout
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.worker_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_enabled=True,
        web_host="127.0.0.1",
        web_port=settings.worker_port,
        processing_guarantee="at_least_once",
        **group_membership(settings),
    )
    state = WorkerState(settings, stopping=lambda: app.should_stop)  # asked to stop: no endless outage waits

    def topic(spec: topics.TopicSpec) -> faust.TopicT:
        return app.topic(settings.topic(spec.name), partitions=settings.partitions, key_type=bytes, value_type=bytes)

    deadletter = topic(topics.DEADLETTER)
    supply = [
        reports.register(app, "inventory", settings.topic(topics.INVENTORY.name), deadletter, state),
        reports.register(app, "price", settings.topic(topics.PRICES.name), deadletter, state),
    ]
    partitions = {consumer.topic: consumer.partitions for consumer in supply}
    levels.register(app, topic(topics.CIRCLE_LEVELS), state, lambda name: partitions[name]())
    maintain.register(app, state)  # rollups and retention, on the leader (schema/maintain.py)
    prices.register(app, topic(topics.PRICE_LEVELS), state)  # price grades, on the leader (schema/prices.py)
    metrics.serve(app)  # /metrics on the Faust web port

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode types the signal loosely
    async def _close(sender: faust.App, **_: Any) -> None:
        await asyncio.gather(*(consumer.stop() for consumer in supply))  # write what they fetched, then leave
        await state.close()

    gc_policy.collect_rarely()  # baogong/gc_policy.py
    return app
