"""How far behind the supply topics the stream worker is (pure: no Kafka, no database).

For each supply partition: `end` is the broker's end offset (the offset the
next message will get), `start` its log start offset, and `written` the next
offset the worker will write (`stream_offsets.next_offset`: every message
below it is in the database). Reports behind = end - max(written, start);
messages deleted by retention before anyone wrote them are not counted.

Seconds behind = about how old the oldest unwritten message is. Two upper
bounds are known, and the tighter one is used:
- an earlier observation whose end offset was at or below `written`: the
  oldest unwritten message arrived after it (exact to one level pass while
  the same tracker keeps observing; this is what keeps a quiet stream that
  just received one message from looking minutes behind);
- the broker timestamp of the last written message (`message_at`): the
  oldest unwritten one came after it (tight on a busy stream, and right
  after a worker restart).
With neither (a partition never written, seen behind since this tracker's
first look) it is how long this tracker has seen it behind: a lower bound
that grows every pass.

A `LagTracker` lives in the leader's level timer; it is not thread-safe.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from streams.levels import Lag

#: A supply partition: (topic, partition).
TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Written:
    """What the worker has written of one partition (a `stream_offsets` row)."""

    next_offset: int
    message_at: datetime | None


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    end: int
    written: int
    reports: int
    seconds: float


class LagTracker:
    """Estimates each partition's lag from successive observations of end offsets."""

    def __init__(self, keep: int = 256) -> None:
        self._keep = max(2, keep)
        self._seen: dict[TopicPartition, deque[tuple[datetime, int]]] = {}

    def measure(
        self,
        now: datetime,
        ends: Mapping[TopicPartition, int],
        starts: Mapping[TopicPartition, int],
        written: Mapping[TopicPartition, Written],
    ) -> list[PartitionLag]:
        """The lag of every partition in `ends` at `now`, and remember this observation."""
        out = []
        for tp in sorted(ends):
            end = ends[tp]
            row = written.get(tp)
            done = max(row.next_offset if row else 0, starts.get(tp, 0))
            seen = self._seen.setdefault(tp, deque())
            # keep the newest observation at or below `done` (the marker) and everything after it
            while len(seen) > 1 and seen[1][1] <= done:
                seen.popleft()
            reports = max(0, end - done)
            seconds = 0.0
            if reports:
                bounds = []
                if seen and seen[0][1] <= done:
                    bounds.append((now - seen[0][0]).total_seconds())
                if row is not None and row.message_at is not None:
                    bounds.append((now - row.message_at).total_seconds())
                if bounds:
                    seconds = min(bounds)
                elif seen:
                    seconds = (now - seen[0][0]).total_seconds()
            out.append(PartitionLag(tp[0], tp[1], end, done, reports, max(0.0, seconds)))
            seen.append((now, end))
            while len(seen) > self._keep:
                del seen[1]  # the marker stays; the estimate only gets more cautious
        return out


def total(parts: Sequence[PartitionLag]) -> Lag:
    """All partitions together: reports behind summed, seconds of the furthest behind."""
    return Lag(reports=sum(p.reports for p in parts), seconds=max((p.seconds for p in parts), default=0.0))
