"""The circle-level timer: every `level_interval_s`, recompute all circles and publish them.

Runs on the leader worker only. Levels are recomputed from the database even
when no report arrived, so data going stale shows as STALE on time.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime

import faust
import orjson

from schema.db import DatabaseError
from streams.circles import level_message, refresh_levels
from streams.levels import CircleLevel
from streams.state import WorkerState

log = logging.getLogger(__name__)


def register(app: faust.App, sink: faust.TopicT, state: WorkerState) -> None:
    @app.timer(interval=state.settings.level_interval_s, on_leader=True, name="circle_levels")
    async def circle_levels() -> None:
        await state.ready()
        try:
            levels = await refresh_levels(state.pool, datetime.now(UTC))
        except DatabaseError as exc:
            log.warning("circle levels not refreshed this tick: %s", exc)
            return
        by_circle: dict[str, list[CircleLevel]] = defaultdict(list)
        for level in levels:
            by_circle[level.circle_id].append(level)
        for circle_id, circle_levels in by_circle.items():
            await sink.send(key=circle_id.encode(), value=orjson.dumps(level_message(circle_id, circle_levels)))
