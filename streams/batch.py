"""What the worker does with a batch it cannot write whole: isolate, dead-letter alone, or stop hard.

The supply consumers (`streams.supply_consumer`) commit a batch's Kafka
offsets only after its write; nothing that fails half-way may reach that
commit, nor any `finally` that could commit. So the report agents hold to
this contract:

* A message or line the database or our own per-message code refuses is
  ISOLATED: `isolate` splits the batch in halves (order kept) and tries each,
  recursively, until the refused item is alone; every other item is written,
  the refused one is handed back with its exception, to be dead-lettered
  alone with the reason. Refusals are whatever `is_refusal` says (for the
  sink: any error but an outage); anything else (an outage, a cancellation)
  propagates at once, so the caller can retry the whole batch.
* Anything that cannot be isolated (the dead-letter topic refusing a message,
  a bug outside per-message code, a cancellation in the middle of a write)
  reaches `settle`, which logs it and ends the process with `os._exit` at
  once, before anything can commit the batch's offsets: the batch is redelivered after the restart, and the writes are
  idempotent (stream_offsets, primary keys), so nothing is lost or counted
  twice.
* `PoisonLimit` stops the worker the same way when more than `limit` items
  in a row are refused with nothing written in between (arroyo's DlqLimit):
  a bad deploy (a sink bug that refuses every row) stops loudly, before the
  batch commits, instead of dead-lettering the whole stream.

Pure apart from `settle`'s exit: no Kafka, no database; unit-tested with fake
`attempt` functions.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NoReturn, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Exit status of a worker stopped because something it could not isolate went wrong (EX_SOFTWARE).
EXIT_UNEXPECTED = 70
#: Exit status of a worker cancelled in the middle of a write (EX_TEMPFAIL): the batch comes again.
EXIT_CANCELLED = 75


@dataclass
class Isolation(Generic[T, R]):
    """The outcome of `isolate`: what was written (each part with its attempt's result) and what was refused."""

    written: list[tuple[Sequence[T], R]] = field(default_factory=list)
    refused: list[tuple[T, Exception]] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        """How many attempts succeeded (1 when the whole batch went through at once)."""
        return len(self.written)


async def isolate(
    items: Sequence[T],
    attempt: Callable[[Sequence[T]], Awaitable[R]],
    *,
    is_refusal: Callable[[Exception], bool] = lambda exc: True,
    limit: PoisonLimit | None = None,
) -> Isolation[T, R]:
    """Write `items` with `attempt`, splitting around every item it refuses.

    `attempt(part)` either writes all of `part` and returns a result, or
    raises and writes none of it (the caller makes it atomic, e.g. with a
    savepoint). A raised exception for which `is_refusal` is true counts as a
    refusal: `part` is split in two halves, first half first, and each is
    attempted again, until a refused item is alone. Parts are always attempted
    in the order of `items`, so an item is written after every item before it
    that was written. Costs one attempt when nothing is refused, about
    2·log2(n) more per refused item.

    An exception that is not a refusal (or a BaseException such as a
    cancellation) propagates unchanged; what was written before it stays
    written, as far as `attempt` made it so. With a `limit`, every written
    part calls `limit.written()` and every refused item `limit.refused(1)`,
    which raises `PoisonFlood` (propagated the same way) past the limit.
    """
    out: Isolation[T, R] = Isolation()
    if items:
        await _isolate(items, attempt, is_refusal, limit, out)
    return out


async def _isolate(
    items: Sequence[T],
    attempt: Callable[[Sequence[T]], Awaitable[R]],
    is_refusal: Callable[[Exception], bool],
    limit: PoisonLimit | None,
    out: Isolation[T, R],
) -> None:
    try:
        result = await attempt(items)
    except Exception as exc:
        if not is_refusal(exc):
            raise
        if len(items) == 1:
            if limit is not None:
                limit.refused(1)
            out.refused.append((items[0], exc))
            return
        half = len(items) // 2
        await _isolate(items[:half], attempt, is_refusal, limit, out)
        await _isolate(items[half:], attempt, is_refusal, limit, out)
        return
    if limit is not None:
        limit.written()
    out.written.append((items, result))


def describe(exc: BaseException) -> str:
    """The reason a dead letter gives for an item refused with `exc`: its type and first line, at most 500 chars."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return reason[:500]


class PoisonLimit:
    """Stop the worker when more than `limit` items in a row were refused and nothing was written in between.

    Call `refused(n)` before dead-lettering refused items and `written()`
    when something went through; `refused` raises `PoisonFlood` past the
    limit (the caller lets it escape, so the batch is not acknowledged). The
    count lives in memory and starts at 0 in a new process. A limit of 0
    never stops. Not thread-safe (one per agent).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = 0

    def written(self) -> None:
        self.in_a_row = 0

    def refused(self, count: int) -> None:
        self.in_a_row += count
        if self.limit and self.in_a_row > self.limit:
            raise PoisonFlood(
                f"{self.in_a_row} items in a row could not be written and nothing was written in between: "
                "stopping instead of dead-lettering the stream (a bug, or the database refusing everything)"
            )


class PoisonFlood(Exception):
    """Too many items in a row were refused: stop the worker; do not acknowledge."""


class Interrupted(Exception):
    """The worker is stopping while a batch waits for the database: stop now; do not acknowledge."""


async def settle(
    handle: Callable[[], Awaitable[None]],
    *,
    what: str,
    exit: Callable[[int], NoReturn] = os._exit,
) -> None:
    """Run one batch's `handle()`; if anything escapes it, end the process before the batch can be acknowledged.

    Call it around each stage of a batch (preparing, writing). `handle` must deal with
    everything it can (isolate refusals, retry outages); whatever still
    escapes — an exception, or a cancellation in the middle of the batch —
    is logged with `what` and ends the process with `exit` (default
    `os._exit`: no `finally`, no acknowledgement, no offset commit), status
    EXIT_CANCELLED for a cancellation or an `Interrupted` wait (the worker
    was asked to stop) and EXIT_UNEXPECTED otherwise. The batch is
    redelivered to whichever worker runs next.
    """
    try:
        await handle()
    except BaseException as exc:  # a cancellation mid-batch must not ack either
        stopping = isinstance(exc, Interrupted) or not isinstance(exc, Exception)
        code = EXIT_CANCELLED if stopping else EXIT_UNEXPECTED
        log.critical(
            "%s: %s; stopping the worker now (exit %d) WITHOUT acknowledging the batch, "
            "which is redelivered after the restart",
            what,
            str(exc) or "cancelled before the batch was written" if stopping else describe(exc),
            code,
            exc_info=not stopping,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        exit(code)
