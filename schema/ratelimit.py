"""Per-key rate limiting: one token bucket per API key (pure, thread-safe, no I/O).

The ingest API calls `take(key, cost=len(records))` once per request, after
authentication, so the limit is *records per second per key*, not requests:
a key may send `rate_per_s` records a second on average, and up to `burst`
records at once after resting. Key the limiter by something authenticated
(the key prefix or the supplier id), never by raw client input.

Semantics of `take`:

- allowed (returns 0.0): the bucket held at least `cost` tokens; they are spent.
- refused (returns seconds > 0): nothing is spent; the returned time is when
  the same request would be allowed if nothing else is taken meanwhile. Send
  it as `Retry-After: math.ceil(wait)`.
- a request costing more than `burst` can never fit, so it is allowed when the
  bucket is *full* and leaves the bucket in debt (negative): the next requests
  wait until the debt is repaid, so the long-run average stays `rate_per_s`.
  From a bucket that is not full it is refused with the time until it is full.
  Splitting big batches is therefore never required, only slowed down.

Memory is bounded: a bucket that has refilled to `burst` is exactly the state
of a key never seen, so such buckets are dropped (oldest first, a little on
every call); and at most `max_keys` buckets are kept — past that the least
recently used is forgotten, which only ever forgives that key (fails open).

`take` never blocks beyond a short lock and does no I/O, so it is safe to call
from asyncio handlers and from many threads.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

_EPSILON = 1e-9  # float slack, so waiting exactly the returned time is enough
_PRUNE_PER_CALL = 2  # full buckets examined (and dropped) per call: O(1) amortised


class RateLimiter:
    """A token bucket per key: `rate_per_s` tokens a second, holding at most `burst`.

    `clock` returns seconds and must not go backwards by much (a step back is
    treated as no time passing); inject a fake one in tests.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = 100_000,
    ) -> None:
        if not (math.isfinite(rate_per_s) and rate_per_s > 0):
            raise ValueError(f"rate_per_s must be a positive number, got {rate_per_s}")
        if not (math.isfinite(burst) and burst > 0):
            raise ValueError(f"burst must be a positive number, got {burst}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [tokens at `updated`, updated]; least recently used first.
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend `cost` tokens of `key`'s bucket: 0.0 if allowed, else the seconds to wait (finite, > 0).

        Raises ValueError for a negative or non-finite cost.
        """
        if not (math.isfinite(cost) and cost >= 0):
            raise ValueError(f"cost must be a non-negative number, got {cost}")
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                tokens = self.burst
            else:
                tokens = self._level(bucket, now)
                self._buckets.move_to_end(key)
            need = min(cost, self.burst)  # more than burst: allowed from a full bucket, see module doc
            if tokens + _EPSILON < need:
                return (need - tokens) / self.rate_per_s
            tokens -= cost
            if bucket is None:
                self._buckets[key] = [tokens, now]
                if len(self._buckets) > self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                bucket[0], bucket[1] = tokens, max(bucket[1], now)
            self._prune(now)
            return 0.0

    def __len__(self) -> int:
        """Buckets currently held (keys not held behave as full buckets)."""
        with self._lock:
            return len(self._buckets)

    def _level(self, bucket: list[float], now: float) -> float:
        tokens, updated = bucket
        return min(self.burst, tokens + max(0.0, now - updated) * self.rate_per_s)

    def _prune(self, now: float) -> None:
        for _ in range(_PRUNE_PER_CALL):
            if not self._buckets:
                return
            key, bucket = next(iter(self._buckets.items()))
            if self._level(bucket, now) < self.burst:
                return
            del self._buckets[key]
