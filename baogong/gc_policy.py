"""How Baogong's long-running processes (the API, the stream worker) run Python's cyclic garbage collector.

Both allocate tens to hundreds of thousands of short-lived objects per
request or batch (records, lines, rows, tuples), none of them cyclic:
reference counting frees them. Left at CPython's thresholds (700, 10, 10)
the collector ran every few hundred of them, and its full collections walked
everything built at start (modules, Faust, the registry): ~13 % of the API's
CPU under load, and a fifth of the worker's in the scale benchmark (py-spy;
tests/bench/scale.py, (c)). Both processes therefore freeze what exists once
they are built out of every later collection (`gc.freeze`), and then:

* the API (`keep_off_hot_path`) turns automatic collection off and runs
  `collect_forever` beside its requests: the odd cycle (an exception's
  traceback) is collected every `COLLECT_EVERY_S`, off the request path, and
  memory stays bounded by that many seconds of cycles;
* the worker (`collect_rarely`) keeps automatic collection at
  `RARE_THRESHOLDS`. A full collection every 2 s walked the hundreds of
  thousands of objects of the batches in flight and cost it more than this:
  (c) of the scale benchmark stored 126–138k lines/s with it against
  148–164k with these thresholds (runs of (b) and (c) alone, same machine).
"""

from __future__ import annotations

import asyncio
import gc

#: How often `collect_forever` collects.
COLLECT_EVERY_S = 2.0
#: The worker's thresholds: the young generation every 100,000 allocations, the middle every 50 of those,
#: the oldest every 100 of those.
RARE_THRESHOLDS = (100_000, 50, 100)


def _freeze_start() -> None:
    gc.collect()
    gc.freeze()


def keep_off_hot_path() -> None:
    """Freeze what exists out of later collections and turn automatic collection off; pair with
    `collect_forever`, and `back_to_automatic` once the hot path has stopped."""
    _freeze_start()
    gc.disable()


async def collect_forever(every_s: float = COLLECT_EVERY_S) -> None:
    """Collect every `every_s` seconds, until cancelled."""
    while True:
        await asyncio.sleep(every_s)
        gc.collect()


def back_to_automatic() -> None:
    """Turn automatic collection on again (a process that goes on after its hot path stopped)."""
    gc.enable()


def collect_rarely() -> None:
    """Freeze what exists out of later collections and collect automatically at RARE_THRESHOLDS."""
    _freeze_start()
    gc.set_threshold(*RARE_THRESHOLDS)
