"""The circle-level timer: every `level_interval_s`, recompute all circles, say how current they are, publish them.

Runs on the leader worker only. Levels are recomputed from the database even
when no report arrived, so data going stale shows as STALE on time. One pass:

1. measures how far behind the supply topics the workers are: the broker's
   end offsets (`BrokerOffsets`) against what the workers have written
   (`stream_offsets`), in reports and seconds (`streams.lag`). A broker or
   table that does not answer within `OFFSETS_TIMEOUT_S` makes the lag
   unknown (None); it never skips the pass;
2. computes and stores every level with that lag (`streams.circles.refresh_levels`);
3. writes the heartbeat (`pipeline_status`, id 'levels'), which the
   PipelineStalled rule and `baogong status` read even when no level changed;
4. sets the lag and level metrics and publishes one message per circle.

A pass the database refuses is logged and skipped; the next tick tries
again. Until one succeeds the heartbeat ages, which is what PipelineStalled
watches.

Live levels (also on the leader only): the leader keeps a `LevelState` (every outlet's stock in memory) and
listens on `baogong_levels`, which PostgreSQL notifies when a batch of reports commits new stock or reference
data changes (migration 0021). Woken, it waits `LIVE_GATHER_S` for commits landing together, brings the state up
to date with just what was committed and recomputes, stores and publishes only the circles touched, with the
lag the last full pass measured. Passes are at least `live_interval_s` apart (and five times their own duration,
up to 0.6 s: `live_spacing`), so a flood of reports costs a few
passes a second, not one per batch. A lost connection is logged and reopened; meanwhile the full pass (which
uses the same state) still runs, so levels are never older than one level interval.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition

from schema import topics
from schema.db import QUERIES, DatabaseError, transaction
from streams.circles import demand_rule, level_message, refresh_levels
from streams.lag import LagTracker, PartitionLag, Written, total
from streams.level_state import LevelState
from streams.levels import CircleLevel, Lag
from streams.metrics import METRICS
from streams.state import WorkerState

log = logging.getLogger(__name__)

#: The supply topics whose lag is measured.
SUPPLY = (topics.INVENTORY, topics.PRICES)
#: Longest a pass waits for the broker's offsets before it calls the lag unknown.
OFFSETS_TIMEOUT_S = 5.0
#: The heartbeat row this timer writes.
STAGE = "levels"
#: The channel PostgreSQL notifies when stock or what levels are computed from changes (migration 0021).
CHANNEL = "baogong_levels"
#: How long a woken live pass waits for more commits before it reads them.
LIVE_GATHER_S = 0.02
#: A live pass is followed by at least this many times its own duration before the next (`live_spacing`).
LIVE_SHARE = 5.0
#: ... but never by more than this: a level follows its report within a second.
LIVE_MAX_SPACING_S = 0.6


def register(app: faust.App, sink: faust.TopicT, state: WorkerState, partitions: Callable[[str], int | None]) -> None:
    """The level timer and live levels on `app`; `partitions(topic)` tells how many a supply topic has (None:
    not known yet)."""
    settings = state.settings
    supply = [settings.topic(spec.name) for spec in SUPPLY]
    tracker = LagTracker()
    offsets = BrokerOffsets(settings.kafka_bootstrap)
    worker = f"{settings.worker_id} on {socket.gethostname()} pid {os.getpid()}"
    demand = demand_rule(settings)
    measured = True  # whether the last pass could measure the lag (log changes only, not every tick)
    levels_state = LevelState()
    computing = asyncio.Lock()  # one pass at a time over the shared state
    last_lag: list[Lag | None] = [None]  # the lag the last full pass measured, for live passes

    async def publish(levels: list[CircleLevel]) -> None:
        by_circle: dict[str, list[CircleLevel]] = defaultdict(list)
        for level in levels:
            by_circle[level.circle_id].append(level)
        for circle_id, circle_levels in by_circle.items():
            await sink.send(key=circle_id.encode(), value=orjson.dumps(level_message(circle_id, circle_levels)))

    @app.timer(interval=settings.level_interval_s, on_leader=True, name="circle_levels")
    async def circle_levels() -> None:
        nonlocal measured
        await state.ready()
        started = time.monotonic()
        try:
            parts = await _measure_lag(partitions, state, offsets, supply, tracker, datetime.now(UTC))
        except Exception as exc:  # the lag is best effort: never a reason to skip levels
            parts = None
            if measured:
                log.warning("stream lag not measured (levels are computed without it): %r", exc)
        else:
            if not measured:
                log.info("stream lag measured again")
        measured = parts is not None
        lag = None if parts is None else total(parts)
        last_lag[0] = lag
        try:
            async with computing:
                # The pass's time is taken here, inside the lock, as a live pass takes its own: a live pass that
                # stored while this one measured the lag stored a later time, and the latest table keeps the
                # later of two levels, so a pass timed before the lag would read the new stock (which then no
                # live pass reads again) and have its levels discarded: they waited for the next full pass.
                now = datetime.now(UTC)
                levels = await refresh_levels(state.pool, now, lag=lag, demand=demand, state=levels_state)
            await _heartbeat(state, now, lag, worker)
        except DatabaseError as exc:
            log.warning("circle levels not refreshed this tick: %s", exc)
            return
        _record(supply, parts, now, time.monotonic() - started)
        await publish(levels)

    @app.task
    async def live_levels() -> None:
        if not settings.live_levels:
            return
        await state.ready()
        url = settings.database_url.get_secret_value()
        backoff = 1.0
        while True:
            if not app.is_leader():
                await asyncio.sleep(1.0)
                continue
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as listener:
                    await listener.execute(f"LISTEN {CHANNEL}")
                    backoff = 1.0
                    await live_pass()  # what was committed while this worker was not listening (not yet leader)
                    while app.is_leader():
                        woken = False
                        async for _ in listener.notifies(timeout=1.0, stop_after=1):
                            woken = True
                        if not woken:
                            continue
                        started = time.monotonic()
                        await asyncio.sleep(LIVE_GATHER_S)
                        await live_pass()
                        took = time.monotonic() - started
                        await asyncio.sleep(max(0.0, live_spacing(settings.live_interval_s, took) - took))
            except (psycopg.Error, DatabaseError, OSError) as exc:
                log.warning("live levels paused (%s); the full pass goes on, retrying in %.0fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def live_pass() -> None:
        async with computing:
            now = datetime.now(UTC)
            levels = await refresh_levels(
                state.pool, now, lag=last_lag[0], demand=demand, state=levels_state, live=True
            )
        METRICS.live_passes.inc()
        await publish(levels)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode types the signal loosely
    async def _close_offsets(sender: faust.App, **_: Any) -> None:
        await offsets.close()


def live_spacing(interval_s: float, took_s: float) -> float:
    """Seconds from the start of one live pass to the start of the next: at least `interval_s`, and
    `LIVE_SHARE` times what the pass took (capped at `LIVE_MAX_SPACING_S`), so live passes never take more
    than about a fifth of the leader's time however big the city, and a level still follows its report
    within a second."""
    return max(interval_s, min(LIVE_MAX_SPACING_S, took_s * LIVE_SHARE))


class BrokerOffsets:
    """Log start and end offsets of partitions, read with a small Kafka client of the level timer's own.

    The worker's consumers could answer too, but their calls queue behind
    their fetches (about a second each with Faust's, which made a 1 s level
    pass take 2 s); this client has no consumer group and no subscriptions and answers in
    milliseconds. Connects on first use (again after a failure); `close` at shutdown.
    """

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._client: AIOKafkaConsumer | None = None

    async def read(self, tps: list[TopicPartition]) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """(start offsets, end offsets) of `tps`. Raises KafkaError or TimeoutError; never waits much longer
        than `OFFSETS_TIMEOUT_S` per call."""
        client = await self._connected()
        try:
            starts = await asyncio.wait_for(client.beginning_offsets(tps), OFFSETS_TIMEOUT_S)
            ends = await asyncio.wait_for(client.end_offsets(tps), OFFSETS_TIMEOUT_S)
        except Exception:
            await self.close()  # a fresh connection next time
            raise
        return dict(starts), dict(ends)

    async def _connected(self) -> AIOKafkaConsumer:
        if self._client is None:
            client = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=int(OFFSETS_TIMEOUT_S * 1000),
            )
            try:
                await asyncio.wait_for(client.start(), OFFSETS_TIMEOUT_S)
            except BaseException:
                await client.stop()
                raise
            self._client = client
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.stop()


async def _measure_lag(
    partitions: Callable[[str], int | None],
    state: WorkerState,
    offsets: BrokerOffsets,
    supply: list[str],
    tracker: LagTracker,
    now: datetime,
) -> list[PartitionLag] | None:
    """Each supply partition's lag at `now`; None when the worker's consumers do not know the partitions yet.

    Raises whatever the broker or the database raised, or TimeoutError.
    """
    tps: list[TopicPartition] = []
    for topic in supply:
        count = partitions(topic)  # the supply consumer's metadata: no request
        if not count:
            return None
        tps.extend(TopicPartition(topic, p) for p in range(count))
    starts, ends = await offsets.read(tps)
    async with transaction(state.pool) as conn, conn.cursor() as cur:
        await cur.execute(QUERIES["written_offsets"], {"topics": supply})
        rows = await cur.fetchall()
    written = {(r["topic"], int(r["partition"])): Written(int(r["next_offset"]), r["message_at"]) for r in rows}
    return tracker.measure(
        now,
        {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()},
        {(tp.topic, tp.partition): int(offset) for tp, offset in starts.items()},
        written,
    )


async def _heartbeat(state: WorkerState, now: datetime, lag: Lag | None, worker: str) -> None:
    async with transaction(state.pool) as conn, conn.cursor() as cur:
        await cur.execute(
            QUERIES["upsert_pipeline_status"],
            {
                "stage": STAGE,
                "levels_at": now,
                "lag_reports": None if lag is None else lag.reports,
                "lag_s": None if lag is None else lag.seconds,
                "worker": worker,
            },
        )


def _record(supply: list[str], parts: list[PartitionLag] | None, now: datetime, took_s: float) -> None:
    """The pass's metrics; an unknown lag is NaN, never a reassuring zero."""
    for topic in supply:
        mine = [p for p in parts if p.topic == topic] if parts is not None else None
        METRICS.lag_reports.labels(topic).set(math.nan if mine is None else sum(p.reports for p in mine))
        METRICS.lag_seconds.labels(topic).set(math.nan if mine is None else max((p.seconds for p in mine), default=0))
    METRICS.levels_computed_at.set(now.timestamp())
    METRICS.level_pass_seconds.observe(took_s)
