"""The supply consumers: a worker reads each supply topic with an aiokafka consumer of its own, in its event loop.

Why not a Faust agent: faust-streaming's aiokafka driver fetches in a thread
of its own and hands every message to the event loop one at a time, awaiting
each; while the loop validates or writes a batch, delivery stalls, so the
worker stored a sixth of what a plain consumer + COPY does with the same
messages (tests/bench/scale.py, (b) and (c)). Here `getmany` returns whatever
the consumer's background fetcher holds, as many messages as a batch takes,
in one call.

The groups: every worker runs one consumer per supply topic (inventory,
prices), each in the Kafka consumer group of its topic,
`supply_group(settings, topic)` = "<worker_id>-<topic>". The range assignor
splits the topic's partitions evenly between the workers (a partition is read
by one worker at a time, so per-outlet order holds); a worker joining or
leaving moves partitions with a rebalance. One group per topic, so that a
worker's second consumer joining does not rebalance (and so pause) its first,
as it did when both shared one group: right after a start, that cost a batch's
wait and a level pass's latency. Static membership, session timeout, heartbeats and the rebalance
timeout follow the same settings as the Faust app's own group
(`membership`), which now only elects the leader that runs the full level
pass. Offsets are committed to Kafka by hand, never automatically.

The pipeline of one consumer, assembled in `SupplyConsumer.run`:

1. fetch: `getmany(max_records=sink_batch_size x sink_writers)`, waiting at
   most `sink_max_wait_s` when nothing is there (a message that arrives
   alone goes on at once; under load a batch is what accumulated meanwhile),
   split into one batch per writer: partition p goes to writer p mod
   `sink_writers`, always the same one, so a partition's batches are written
   and committed in order;
2. prepare each batch (`prepare`: skip what is written, validate) while
3. the writers write the batches before it (`write`: one database
   transaction with its rows, feed health and offsets); a queue of one
   batch sits before each writer, so preparing runs at most one batch ahead;
4. each writer commits its batch's offsets to Kafka, strictly after the
   write. Writers work on disjoint partitions, hence disjoint outlets (the
   key of a report): their transactions do not wait on each other's rows.

Failure rules:

* `prepare` and `write` run under `streams.batch.settle`: whatever escapes
  them (what the agent could not isolate or retry) ends the process at once,
  exit 70 (75 when it was asked to stop mid-outage), with nothing committed
  to Kafka after it.
* A Kafka commit that fails (a rebalance gave the partition away, the broker
  is away) is logged and ignored: the database holds the offsets, written in
  the same transaction as the rows, and is the source of truth; Kafka's
  commit only saves re-reading.
* Rebalance: `on_partitions_revoked` waits until every batch fetched has been
  written and committed, so a partition's next owner starts where this
  worker stopped and no batch is ever dropped ahead of a later one of the
  same partition. `on_partitions_assigned` seeks each partition to the
  database's `next_offset` when Kafka's committed offset is behind it
  (`seek_target`), so a worker never re-reads what is written.
* `stop()`: the fetch stage ends after its current poll or batch, the batches
  fetched are written and committed, then the consumer leaves.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from baogong.settings import Settings
from streams.batch import settle
from streams.sink import RECREATED_AFTER, Written
from streams.sink import TopicPartition as TP

log = logging.getLogger(__name__)

B = TypeVar("B")

#: The most one partition contributes to one fetch (aiokafka's default is 1 MiB, ~300 reports of 30 lines):
#: 4 MiB lets a fetch bring a whole batch from one partition. The whole fetch is capped at 64 MiB.
PARTITION_FETCH_BYTES = 4 << 20
FETCH_MAX_BYTES = 64 << 20
#: How long a broker holds a fetch that has nothing to return.
FETCH_MAX_WAIT_MS = 100
#: A worker whose write stage is stuck (the database away) stops polling; after this long without a poll
#: aiokafka leaves the group and its partitions move on (Faust's default: 1000 s).
MAX_POLL_INTERVAL_MS = 1_000_000
#: The longest the seek on assignment waits for the database before it leaves the position as Kafka has it.
SEEK_TIMEOUT_S = 5.0


def supply_group(settings: Settings, topic: str) -> str:
    """The Kafka consumer group of the workers' consumers of supply topic `topic` (its full name)."""
    return f"{settings.worker_id}-{topic}"


@dataclass(frozen=True)
class Membership:
    """How a worker sits in its consumer groups (the Faust app's and the supply group)."""

    session_timeout_s: float
    heartbeat_interval_s: float
    rebalance_timeout_s: float
    instance_id: str | None


def membership(settings: Settings) -> Membership:
    """A worker killed with -9 never says goodbye: the broker keeps its
    membership until `worker_session_timeout_s` passes without a heartbeat,
    and a new member's join waits for that. Heartbeats come 5 times per
    session timeout. With static membership (`worker_instance_id`, by default
    host name and worker_port, so two workers on one host differ) a restarted
    worker replaces its old membership at once and gets its partitions back
    without waiting; a worker that stops for good gives its partitions up
    after the session timeout.
    """
    session = settings.worker_session_timeout_s
    instance = settings.worker_instance_id or f"{socket.gethostname()}-{settings.worker_port}"
    return Membership(session, session / 5, max(30.0, session), None if instance == "none" else instance)


Prepare = Callable[[Sequence[Any], Mapping[TP, int]], Awaitable[B]]
Write = Callable[[B], Awaitable[None]]
ReadWritten = Callable[[Sequence[TP]], Awaitable[Mapping[TP, Written]]]
#: A writer's queue: prepared batches with the offsets to commit after them; None ends the writer.
Queue = asyncio.Queue[tuple[B, dict[TP, int]] | None]


def seek_target(committed: int | None, written: Written, log_end: int, recent: int | None) -> int | None:
    """Where a newly assigned partition should start reading, or None to keep the position Kafka gives it.

    `committed`: Kafka's committed offset (None: none); `written`: what the
    database holds as written; `log_end`: the partition's end offset;
    `recent`: the first offset whose broker timestamp is more than
    RECREATED_AFTER later than the last written message's (None: none, or
    no timestamp known). The database's `next_offset` wins when it is ahead of
    the committed offset, unless the log does not look like the one written:
    shorter than `next_offset`, or holding messages below it that are newer
    than what was written (a recreated topic: those are new and must be read).
    """
    target = written.next_offset
    if target <= 0 or (committed is not None and committed >= target):
        return None
    if target > log_end or (recent is not None and recent < target):
        return None
    return target


class SupplyConsumer(Generic[B]):
    """One supply topic's consumer and its fetch → prepare → write → commit pipeline (see the module)."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        what: str,
        *,
        prepare: Prepare[B],
        write: Write[B],
        read_written: ReadWritten,
        ready: Callable[[], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.what = what
        self._prepare = prepare
        self._write = write
        self._read_written = read_written
        self._ready = ready
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = False
        self._running = False
        self._in_flight = 0  # batches fetched and not yet written and committed
        self._idle = asyncio.Condition()
        self._positioned = asyncio.Event()  # the assigned partitions are where they should start
        self._floor: dict[TP, int] = {}  # where the last seek put each partition
        self._done = asyncio.Event()

    def partitions(self) -> int | None:
        """How many partitions the topic has, from the consumer's metadata (None before it knows)."""
        if self._consumer is None:
            return None
        found = self._consumer.partitions_for_topic(self.topic)
        return len(found) if found else None

    def _create(self) -> AIOKafkaConsumer:
        member = membership(self.settings)
        instance = None if member.instance_id is None else f"{member.instance_id}-{self.what}"
        return AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            client_id=f"{self.settings.worker_id}-{self.what}",
            group_id=supply_group(self.settings, self.topic),
            group_instance_id=instance,
            partition_assignment_strategy=(RangePartitionAssignor,),  # even per topic
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_uncommitted",  # the API publishes without transactions
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            fetch_max_bytes=FETCH_MAX_BYTES,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
            session_timeout_ms=int(member.session_timeout_s * 1000),
            heartbeat_interval_ms=int(member.heartbeat_interval_s * 1000),
            rebalance_timeout_ms=int(member.rebalance_timeout_s * 1000),
            request_timeout_ms=int(max(40.0, member.rebalance_timeout_s + 10.0) * 1000),
        )

    async def run(self) -> None:
        """Wait for the database, join the group, and run the pipeline until `stop()`; see the module.

        Anything escaping the pipeline (an error of the Kafka client, a bug) ends the process like a batch
        would (`streams.batch.settle`), with nothing more committed.
        """
        self._running = True
        try:
            await settle(self._ready, what=f"{self.what}: waiting for the database")
            if not self._stopping:
                await settle(self._pipeline, what=self.what)
        finally:
            self._done.set()

    async def _pipeline(self) -> None:
        if self._stopping:
            return
        consumer = self._consumer = self._create()
        await self._start(consumer)
        if self._stopping:
            await consumer.stop()
            return
        consumer.subscribe([self.topic], listener=_Listener(self))
        queues: list[Queue[B]] = [asyncio.Queue(maxsize=1) for _ in range(max(1, self.settings.sink_writers))]
        writers = [asyncio.ensure_future(self._write_stage(queue)) for queue in queues]
        try:
            await self._fetch_stage(consumer, queues)
            for queue in queues:
                await queue.put(None)
            await asyncio.gather(*writers)
        finally:
            for writer in writers:
                writer.cancel()
            await consumer.stop()

    async def _start(self, consumer: AIOKafkaConsumer) -> None:
        backoff = 1.0
        while not self._stopping:
            try:
                await consumer.start()
                return
            except KafkaError as exc:
                log.warning("%s: cannot reach Kafka (%s); trying again in %.0fs", self.what, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def stop(self) -> None:
        """Stop fetching, write and commit what was fetched, leave the group; returns when done."""
        self._stopping = True
        if self._running:
            await self._done.wait()

    async def _fetch_stage(self, consumer: AIOKafkaConsumer, lanes: Sequence[Queue[B]]) -> None:
        timeout_ms = int(self.settings.sink_max_wait_s * 1000)
        size = self.settings.sink_batch_size
        while not self._stopping:
            if not self._positioned.is_set():  # a rebalance: wait until the new partitions are positioned
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._positioned.wait(), timeout_ms / 1000)
                continue
            fetched = await consumer.getmany(timeout_ms=timeout_ms, max_records=size * len(lanes))
            parts: dict[int, list[Any]] = {}
            for tp in sorted(fetched):
                floor = self._floor.pop((tp.topic, tp.partition), 0) if fetched[tp] else 0  # fetched before a seek
                if floor and fetched[tp] and fetched[tp][0].offset < floor:
                    fetched[tp] = [r for r in fetched[tp] if r.offset >= floor]
                if fetched[tp]:
                    parts.setdefault(tp.partition % len(lanes), []).append(tp)
            self._in_flight += len(parts)  # no await since getmany returned: a revocation sees these batches
            for lane, tps in sorted(parts.items()):
                records = [r for tp in tps for r in fetched[tp]]
                offsets = {(tp.topic, tp.partition): fetched[tp][-1].offset + 1 for tp in tps}
                ends = {}
                for tp in tps:
                    end = consumer.highwater(tp)
                    if isinstance(end, int) and end >= 0:
                        ends[(tp.topic, tp.partition)] = end
                prepared: list[B] = []

                async def prepare() -> None:
                    prepared.append(await self._prepare(records, ends))  # noqa: B023  (awaited at once)

                await settle(prepare, what=f"{self.what} (preparing a batch)")
                await lanes[lane].put((prepared[0], offsets))

    async def _write_stage(self, queue: Queue[B]) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            batch, offsets = item

            async def write() -> None:
                await self._write(batch)  # noqa: B023  (awaited at once)

            await settle(write, what=f"{self.what} (writing a batch)")
            await self._commit(offsets)
            async with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    async def _commit(self, offsets: Mapping[TP, int]) -> None:
        """Commit `offsets` of the partitions still assigned; a failure is logged (the database has them)."""
        consumer = self._consumer
        if consumer is None:
            return
        assigned = consumer.assignment()
        mine = {TopicPartition(t, p): o for (t, p), o in offsets.items() if TopicPartition(t, p) in assigned}
        if not mine:
            return
        try:
            await consumer.commit(mine)
        except KafkaError as exc:
            log.warning(
                "%s: Kafka did not take the offsets of a written batch (%s); the database holds them, "
                "so at worst the batch is read again and skipped",
                self.what,
                exc,
            )

    async def drain(self) -> None:
        """Return when every batch fetched so far has been written and committed; fetch nothing more until
        `seek_written` positioned the next assignment."""
        async with self._idle:
            await self._idle.wait_for(lambda: self._in_flight == 0)
        self._positioned.clear()

    async def seek_written(self, assigned: Sequence[TopicPartition]) -> None:
        """Move each of `assigned` to the database's next_offset where Kafka's committed offset lags it.

        Best effort: the sink skips what is written anyway, so a broker or database that does not answer
        within SEEK_TIMEOUT_S leaves the positions as Kafka has them.
        """
        try:
            await self._seek_written(assigned)
        finally:
            self._positioned.set()

    async def _seek_written(self, assigned: Sequence[TopicPartition]) -> None:
        self._floor.clear()
        consumer = self._consumer
        if consumer is None or not assigned:
            return
        try:
            written = await asyncio.wait_for(
                self._read_written([(tp.topic, tp.partition) for tp in assigned]), SEEK_TIMEOUT_S
            )
            mine = [tp for tp in assigned if written.get((tp.topic, tp.partition), _NONE).next_offset > 0]
            if not mine:
                return
            ends = await asyncio.wait_for(consumer.end_offsets(mine), SEEK_TIMEOUT_S)
            times = {
                tp: _ms(w.message_at + RECREATED_AFTER)
                for tp in mine
                if (w := written[(tp.topic, tp.partition)]).message_at is not None
            }
            recent = await asyncio.wait_for(consumer.offsets_for_times(times), SEEK_TIMEOUT_S) if times else {}
            for tp in mine:
                committed = await asyncio.wait_for(consumer.committed(tp), SEEK_TIMEOUT_S)
                found = recent.get(tp)
                target = seek_target(
                    committed,
                    written[(tp.topic, tp.partition)],
                    int(ends[tp]),
                    None if found is None else int(found.offset),
                )
                if target is not None:
                    log.info(
                        "%s partition %d: starting at offset %d, written in the database (Kafka had %s)",
                        tp.topic,
                        tp.partition,
                        target,
                        "no committed offset" if committed is None else f"{committed}",
                    )
                    consumer.seek(tp, target)
                    self._floor[(tp.topic, tp.partition)] = target
        except Exception as exc:  # best effort, see above: the sink skips what is written anyway
            log.warning("%s: positions left as Kafka has them (could not read the written offsets: %r)", self.what, exc)


_NONE = Written()


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, owner: SupplyConsumer[Any]) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._owner.drain()

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        await self._owner.seek_written(list(assigned))
