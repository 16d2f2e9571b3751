"""The maintenance timer: every `maintain_every_s`, the leader worker runs `baogong maintain` (schema/maintain.py).

Rollups are refreshed and old history deleted (plain PostgreSQL), or TimescaleDB's policy jobs run, without a
separate cron. The run is blocking database work, so it goes to a thread and never holds up the event loop
(stream agents, the level timer). A run that fails, or a TimescaleDB job that fails, is logged; the worker
carries on and the next tick tries again. `maintain_every_s = 0` turns it off (run it from a timer instead).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import faust

from schema.db import DatabaseError
from schema.maintain import maintain
from streams.state import WorkerState

log = logging.getLogger(__name__)


def register(app: faust.App, state: WorkerState) -> None:
    settings = state.settings
    if settings.maintain_every_s <= 0:
        return

    @app.timer(interval=settings.maintain_every_s, on_leader=True, name="maintain")
    async def run_maintain() -> None:
        await state.ready()
        started = time.monotonic()
        try:
            report = await asyncio.to_thread(
                maintain,
                settings.database_url.get_secret_value(),
                now=datetime.now(UTC),
                retention_days=settings.retention_days,
                hourly_days=settings.rollup_hourly_days,
                daily_days=settings.rollup_daily_days,
            )
        except (DatabaseError, OSError) as exc:
            log.warning("maintain failed (the next run tries again): %s", exc)
            return
        except Exception:  # never stop the worker over maintenance
            log.exception("maintain failed (the next run tries again)")
            return
        took = time.monotonic() - started
        if report.ok:
            log.info("maintain on %s done in %.1f s (%d steps)", report.engine, took, len(report.steps))
        else:
            log.warning("maintain on %s had failures:\n%s", report.engine, report.render())
