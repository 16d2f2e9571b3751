"""Faust app wiring only: the app, its topics, its agents. No domain logic here.

`create_app(settings)` builds an at-least-once app (exactly_once is known to
crash and duplicate in faust-streaming): agents acknowledge a batch only after
its database write commits, and every write is idempotent.
"""

from __future__ import annotations

from typing import Any

import faust

from baogong.settings import Settings
from schema import topics
from streams import metrics
from streams.agents import levels, reports
from streams.state import WorkerState


def create_app(settings: Settings) -> faust.App:
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
    )
    state = WorkerState(settings)

    def topic(spec: topics.TopicSpec) -> faust.TopicT:
        return app.topic(settings.topic(spec.name), partitions=settings.partitions, key_type=bytes, value_type=bytes)

    deadletter = topic(topics.DEADLETTER)
    reports.register(app, "inventory", topic(topics.INVENTORY), deadletter, state)
    reports.register(app, "price", topic(topics.PRICES), deadletter, state)
    levels.register(app, topic(topics.CIRCLE_LEVELS), state)
    metrics.serve(app)  # /metrics on the Faust web port

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode types the signal loosely
    async def _close(sender: faust.App, **_: Any) -> None:
        await state.close()

    return app
