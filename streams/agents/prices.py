"""The price timer: every `price_every_s`, the leader worker grades every price and publishes the levels.

One pass (`schema.price_store.refresh_async`, one transaction) reads the daily medians and current outlet
prices, grades each circle's and the city's necessities both ways (ALPS-style phase and the plan's percent
grades, `schema.prices`), stores today's row of each level and the gouging leads, then publishes one
`supply.price-levels.v1` message per circle (key: circle id; '*' for the city). The pass is database work
of a few queries, awaited on the worker's async pool: it never blocks the event loop. A pass the database
refuses is logged and skipped; the next tick tries again (the price rules see the levels age, and hold
their alerts as unknown past `price_max_age_s`). `price_every_s = 0` turns it off (`baogong prices refresh`
from a timer instead).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import faust
import orjson

from schema.db import DatabaseError
from schema.price_store import level_message, refresh_async, rules_from
from streams.state import WorkerState

log = logging.getLogger(__name__)


def register(app: faust.App, sink: faust.TopicT, state: WorkerState) -> None:
    settings = state.settings
    if settings.price_every_s <= 0:
        return
    rules = rules_from(settings)

    @app.timer(interval=settings.price_every_s, on_leader=True, name="price_levels")
    async def price_levels() -> None:
        await state.ready()
        started = time.monotonic()
        try:
            done = await refresh_async(state.pool, datetime.now(UTC), rules, settings.price_fresh_h)
        except DatabaseError as exc:
            log.warning("price levels not refreshed this tick: %s", exc)
            return
        for circle_id, levels in done.by_circle().items():
            await sink.send(key=circle_id.encode(), value=orjson.dumps(level_message(circle_id, levels)))
        spiking = [lv for lv in done.levels if lv.grade.spiking]
        log.info(
            "price levels: %d graded, %d spiking, %d gouging leads in %.2f s",
            len(done.levels),
            len(spiking),
            len(done.leads),
            time.monotonic() - started,
        )
