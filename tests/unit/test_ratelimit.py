"""The per-key token bucket, on an injected clock (the limiter is pure; time is its only input)."""

from __future__ import annotations

import math
import threading

import pytest

from schema.ratelimit import RateLimiter


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def limiter(clock: FakeClock, rate: float = 10.0, burst: float = 20.0, **kw: int) -> RateLimiter:
    return RateLimiter(rate_per_s=rate, burst=burst, clock=clock, **kw)


def test_burst_is_allowed_then_refused_with_the_wait_for_one_token(clock: FakeClock) -> None:
    rl = limiter(clock)
    assert [rl.take("k") for _ in range(20)] == [0.0] * 20
    assert rl.take("k") == pytest.approx(0.1)  # one token at 10/s
    assert rl.take("k", cost=5) == pytest.approx(0.5)


def test_a_refused_request_spends_nothing(clock: FakeClock) -> None:
    rl = limiter(clock)
    assert rl.take("k", cost=15) == 0.0
    assert rl.take("k", cost=10) == pytest.approx(0.5)  # 5 left, 5 missing at 10/s
    assert rl.take("k", cost=10) == pytest.approx(0.5)  # asking again does not make it worse
    assert rl.take("k", cost=5) == 0.0


def test_waiting_the_returned_time_is_enough(clock: FakeClock) -> None:
    rl = limiter(clock, rate=3.0, burst=7.0)
    rl.take("k", cost=7)
    wait = rl.take("k", cost=4)
    assert wait == pytest.approx(4 / 3)
    clock.advance(wait)
    assert rl.take("k", cost=4) == 0.0
    assert math.ceil(rl.take("k", cost=1)) == 1  # Retry-After a caller would send


def test_refills_at_rate_up_to_burst(clock: FakeClock) -> None:
    rl = limiter(clock)
    rl.take("k", cost=20)
    clock.advance(1.0)  # 10 tokens back
    assert rl.take("k", cost=10) == 0.0
    assert rl.take("k", cost=1) == pytest.approx(0.1)
    clock.advance(3600)  # never more than burst
    assert rl.take("k", cost=20) == 0.0
    assert rl.take("k", cost=1) > 0


def test_keys_are_independent(clock: FakeClock) -> None:
    rl = limiter(clock)
    rl.take("a", cost=20)
    assert rl.take("a") > 0
    assert rl.take("b", cost=20) == 0.0


def test_more_than_burst_is_allowed_from_a_full_bucket_and_repaid_as_debt(clock: FakeClock) -> None:
    rl = limiter(clock)
    assert rl.take("k", cost=50) == 0.0  # full bucket: the big batch goes through
    # 20 - 50 = -30 tokens: a single record waits for 31 tokens
    assert rl.take("k", cost=1) == pytest.approx(3.1)
    clock.advance(3.1)
    assert rl.take("k", cost=1) == 0.0


def test_more_than_burst_from_a_partial_bucket_waits_until_full(clock: FakeClock) -> None:
    rl = limiter(clock)
    rl.take("k", cost=5)
    wait = rl.take("k", cost=50)
    assert wait == pytest.approx(0.5)  # finite: until the bucket is full again, not until 50 tokens
    clock.advance(wait)
    assert rl.take("k", cost=50) == 0.0


def test_average_rate_holds_over_time(clock: FakeClock) -> None:
    rl = limiter(clock, rate=100.0, burst=200.0)
    accepted = 0.0
    for _ in range(10_000):  # a client hammering every 10 ms with 7 records
        if rl.take("k", cost=7) == 0.0:
            accepted += 7
        clock.advance(0.01)
    assert accepted <= 200 + 100 * 100.0  # burst + rate * 100 s
    assert accepted >= 100 * 100.0 * 0.9


def test_zero_cost_is_allowed_unless_in_debt(clock: FakeClock) -> None:
    rl = limiter(clock)
    assert rl.take("k", cost=0) == 0.0
    rl.take("k", cost=30)
    assert rl.take("k", cost=0) == pytest.approx(1.0)


@pytest.mark.parametrize("cost", [-1.0, math.nan, math.inf])
def test_bad_cost_is_refused_loudly(clock: FakeClock, cost: float) -> None:
    with pytest.raises(ValueError, match="cost"):
        limiter(clock).take("k", cost=cost)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.0), (math.inf, 1.0)])
def test_bad_configuration_is_refused(clock: FakeClock, rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst, clock=clock)


def test_full_buckets_are_dropped_losslessly(clock: FakeClock) -> None:
    rl = limiter(clock)
    for i in range(1000):
        rl.take(f"k{i}", cost=20)
    assert len(rl) == 1000
    clock.advance(2.0)  # every bucket is full again
    for _ in range(600):
        rl.take("busy", cost=0.001)
    assert len(rl) <= 1  # each call dropped up to two full buckets
    assert rl.take("k0", cost=20) == 0.0  # a dropped key starts full, as it would have been


def test_memory_is_capped_by_evicting_the_least_recently_used(clock: FakeClock) -> None:
    rl = limiter(clock, max_keys=3)
    for key in ("a", "b", "c"):
        rl.take(key, cost=20)
    rl.take("a", cost=0.0)  # refused (empty) but touched: "b" is now the least recently used
    rl.take("d", cost=20)
    assert len(rl) == 3
    assert rl.take("a", cost=1) > 0  # remembered
    assert rl.take("c", cost=1) > 0  # remembered
    assert rl.take("b", cost=20) == 0.0  # forgotten, so forgiven: fails open
    assert len(rl) == 3


def test_a_clock_step_backwards_adds_no_tokens(clock: FakeClock) -> None:
    rl = limiter(clock)
    rl.take("k", cost=20)
    clock.advance(-5.0)
    assert rl.take("k", cost=1) == pytest.approx(0.1)
    clock.advance(5.0)
    assert rl.take("k", cost=1) == pytest.approx(0.1)


def test_concurrent_takes_never_overspend(clock: FakeClock) -> None:
    rl = limiter(clock, rate=1.0, burst=1000.0)
    allowed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = sum(1 for _ in range(500) if rl.take("k") == 0.0)
        with lock:
            allowed.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 1000  # the clock stands still: exactly the burst, no more, no less
