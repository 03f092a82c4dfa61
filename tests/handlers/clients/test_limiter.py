"""The client-side rate limiter: windows, buckets, concurrency slots, pauses."""

from __future__ import annotations

import asyncio
import bisect
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.clients.limiter import (
    ApiLimiter,
    LimiterRegistry,
    RateLimiter,
    SlidingWindow,
    TokenBucket,
    WindowSpec,
)
from handlers.config import RateLimits
from handlers.model import Platform
from tests.support.clock import FakeClock


def schedule(limiter: ApiLimiter, clock: FakeClock, calls: int) -> list[float]:
    """Reserve ``calls`` calls back to back; return the instants they were given."""
    times = []
    for _ in range(calls):
        delay = limiter.reserve()
        times.append(clock.now + delay)
    return times


def max_in_window(times: list[float], seconds: float) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + seconds) - i for i, t in enumerate(times))


def test_sliding_window_never_exceeds_limit_in_any_window() -> None:
    clock = FakeClock()
    limiter = ApiLimiter([SlidingWindow(20, 1.0)], concurrency=1, clock=clock)
    times = schedule(limiter, clock, 200)
    assert max_in_window(times, 1.0) == 20
    # saturated: 200 calls at 20/s take about 9 s after the first burst of 20
    assert 8.9 <= times[-1] - times[0] <= 9.2


def test_sliding_window_lets_the_first_burst_through_at_once() -> None:
    clock = FakeClock()
    limiter = ApiLimiter([SlidingWindow(10_000, 60.0)], concurrency=1, clock=clock)
    times = schedule(limiter, clock, 10_000)
    assert times[-1] == clock.now
    nxt = limiter.reserve()
    assert 59.0 < nxt <= 60.0


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 30),
    seconds=st.floats(0.1, 5.0),
    gaps=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=150),
)
def test_sliding_window_holds_for_any_arrival_pattern(limit: int, seconds: float, gaps: list[float]) -> None:
    clock = FakeClock()
    limiter = ApiLimiter([SlidingWindow(limit, seconds, slots=50)], concurrency=1, clock=clock)
    times = []
    for gap in gaps:
        clock.now += gap
        times.append(clock.now + limiter.reserve())
    assert times == sorted(times)
    assert max_in_window(times, seconds) <= limit


def test_token_bucket_paces_at_its_rate_after_the_burst() -> None:
    clock = FakeClock()
    limiter = ApiLimiter([TokenBucket(rate=10.0, burst=5)], concurrency=1, clock=clock)
    times = schedule(limiter, clock, 25)
    assert times[:5] == [clock.now] * 5
    assert times[-1] - times[0] == pytest.approx(2.0)


def test_combined_limits_respect_both() -> None:
    clock = FakeClock()
    limiter = ApiLimiter([SlidingWindow(100, 10.0), SlidingWindow(20, 1.0)], concurrency=1, clock=clock)
    times = schedule(limiter, clock, 300)
    assert max_in_window(times, 1.0) <= 20
    assert max_in_window(times, 10.0) <= 100


def test_pause_holds_the_next_reservation() -> None:
    clock = FakeClock()
    limiter = ApiLimiter([SlidingWindow(20, 1.0)], concurrency=1, clock=clock)
    limiter.pause(3.0)
    assert limiter.reserve() == pytest.approx(3.0)


def test_configured_limits_override_defaults_per_api() -> None:
    clock = FakeClock()
    config = RateLimits(calls_per_second=5.0, burst=1, per_api={"user/list": 50.0}, concurrency=3)
    limiter = RateLimiter(Platform.WECOM, config, clock=clock)
    slow = schedule(limiter.api("user/get"), clock, 6)
    fast = schedule(limiter.api("user/list"), clock, 6)
    assert slow[-1] - slow[0] == pytest.approx(1.0)
    assert fast[-1] - fast[0] == pytest.approx(0.1)
    assert limiter.concurrency == 3


def test_default_limits_come_from_the_documented_rates() -> None:
    clock = FakeClock()
    dingtalk = RateLimiter(Platform.DINGTALK, clock=clock)
    times = schedule(dingtalk.api("topapi/v2/user/list"), clock, 61)
    assert max_in_window(times, 1.0) <= 20
    assert 2.9 < times[-1] - times[0] < 3.3  # 20/s with a small guard for jitter
    wecom = RateLimiter(Platform.WECOM, clock=clock)
    times = schedule(wecom.api("user/list"), clock, 10_001)
    assert max_in_window(times, 60.0) <= 10_000


def test_each_api_has_its_own_limits() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Platform.DINGTALK, clock=clock, windows=[WindowSpec(2, 1.0)])
    assert limiter.api("a").reserve() == 0
    assert limiter.api("a").reserve() == 0
    assert limiter.api("b").reserve() == 0
    assert limiter.api("a").reserve() > 0


def test_registry_shares_one_limiter_per_key() -> None:
    registry = LimiterRegistry()
    first = registry.get("HQ", Platform.WECOM, None)
    assert registry.get("HQ", Platform.WECOM, None) is first
    assert registry.get("Sales", Platform.DINGTALK, None) is not first


async def test_concurrency_slots_bound_calls_in_flight() -> None:
    limiter = ApiLimiter([], concurrency=3)
    in_flight = peak = 0

    async def call() -> None:
        nonlocal in_flight, peak
        async with limiter.slots:
            await limiter.wait_turn()
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

    await asyncio.gather(*(call() for _ in range(20)))
    assert peak == 3


async def test_wait_turn_sleeps_until_the_reserved_instant() -> None:
    limiter = ApiLimiter([SlidingWindow(5, 0.2)], concurrency=10)
    started = time.monotonic()
    for _ in range(10):
        await limiter.wait_turn()
    assert 0.18 <= time.monotonic() - started < 0.5
