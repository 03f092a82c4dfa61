"""Client-side pacing per corp and API: sliding windows or token buckets, plus bounded concurrency.

A call first takes a concurrency slot of its API, then reserves the earliest instant every limit of
that API allows, sleeps until then and goes. Reservations are handed out in order, so the limiter
stays saturated under load without ever bursting past a documented limit.

Defaults come from the documented limits (protocol/wecom.md §6, doc 90454; protocol/dingtalk.md §5.3):
WeCom 10,000 calls/min and 150,000/h per corp per API; DingTalk 20 calls/s per app per API. A sliding
window is the most permissive pacing that can never break a fixed window, a sliding window or a
token bucket of the same size upstream; a small guard on the window absorbs network jitter.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from handlers.config import RateLimits
from handlers.model import Platform

Clock = Callable[[], float]


class Limit(Protocol):
    def earliest(self, t: float) -> float:
        """The first instant at or after ``t`` when one more call conforms."""

    def commit(self, t: float) -> None:
        """Record a call at ``t`` (``t`` never decreases between commits)."""


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at: float | None = None

    def _level(self, t: float) -> float:
        if self._at is None:
            return self.burst
        return min(self.burst, self._tokens + (t - self._at) * self.rate)

    def earliest(self, t: float) -> float:
        if self._at is not None:
            t = max(t, self._at)
        level = self._level(t)
        return t if level >= 1.0 else t + (1.0 - level) / self.rate

    def commit(self, t: float) -> None:
        self._tokens = self._level(t) - 1.0
        self._at = t


class SlidingWindow:
    """At most ``limit`` calls in any ``seconds``-long window.

    Calls close together are kept as one group stamped with its latest time (so a group expires no
    earlier than its last call): memory stays at about ``slots`` groups, at a cost of < 1/slots of
    the rate.
    """

    def __init__(self, limit: int, seconds: float, *, guard: float = 0.0, slots: int = 200) -> None:
        if limit < 1 or seconds <= 0:
            raise ValueError("a sliding window needs limit >= 1 and seconds > 0")
        self.limit = limit
        self.seconds = seconds + guard
        self._quantum = self.seconds / slots
        self._groups: deque[list[float]] = deque()  # [first time, last time, count], oldest first
        self._count = 0

    def earliest(self, t: float) -> float:
        if self._groups:
            t = max(t, self._groups[-1][1])
        excess = self._count - self.limit + 1
        for _first, last, count in self._groups:
            if excess <= 0:
                break
            excess -= int(count)
            if last > t - self.seconds and excess <= 0:
                return last + self.seconds
        return t

    def commit(self, t: float) -> None:
        groups = self._groups
        while groups and groups[0][1] <= t - self.seconds:
            self._count -= int(groups.popleft()[2])
        if groups and t - groups[-1][0] < self._quantum:
            groups[-1][1] = t
            groups[-1][2] += 1
        else:
            groups.append([t, t, 1])
        self._count += 1


class ApiLimiter:
    """The limits of one API of one corp, and its concurrency slots."""

    def __init__(self, limits: Sequence[Limit], concurrency: int, clock: Clock = time.monotonic) -> None:
        self._limits = tuple(limits)
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._clock = clock
        self._paused_until = 0.0

    @property
    def slots(self) -> asyncio.Semaphore:
        """Held for the whole call; take it before ``wait_turn`` so reservations stay few and in order."""
        return self._slots

    def reserve(self) -> float:
        """Reserve the next conforming instant; return how long to wait for it."""
        now = self._clock()
        t = max(now, self._paused_until)
        for _ in range(8):  # each limit's earliest is monotone: a few rounds reach the common instant
            later = max(limit.earliest(t) for limit in self._limits) if self._limits else t
            if later <= t:
                break
            t = later
        for limit in self._limits:
            limit.commit(t)
        return t - now

    async def wait_turn(self) -> float:
        """Sleep until this call may go; return the seconds waited."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
        return delay

    def pause(self, seconds: float) -> None:
        """Upstream said "too fast": hold every call of this API for a while."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)


@dataclass(frozen=True, slots=True)
class WindowSpec:
    calls: int
    seconds: float


# protocol/wecom.md §6 (doc 90454): per corp, each API: 10,000/min and 150,000/h.
WECOM_WINDOWS = (WindowSpec(150_000, 3600.0), WindowSpec(10_000, 60.0))
# protocol/dingtalk.md §5.3: > 20 calls/s per app per API answers 90018.
DINGTALK_WINDOWS = (WindowSpec(20, 1.0),)
DEFAULT_CONCURRENCY = {Platform.WECOM: 24, Platform.DINGTALK: 12}
WINDOW_GUARD = 0.05  # seconds added to every window: arrival jitter must not let one call too many through


class RateLimiter:
    """Every API's limiter for one corp (or suite); APIs are created on first use."""

    def __init__(
        self,
        platform: Platform,
        limits: RateLimits | None = None,
        *,
        clock: Clock = time.monotonic,
        windows: Sequence[WindowSpec] | None = None,
    ) -> None:
        self._platform = platform
        self._config = limits
        self._clock = clock
        self._windows = tuple(windows) if windows is not None else _default_windows(platform)
        self._apis: dict[str, ApiLimiter] = {}

    @property
    def concurrency(self) -> int:
        return self._config.concurrency if self._config else DEFAULT_CONCURRENCY[self._platform]

    def api(self, name: str) -> ApiLimiter:
        limiter = self._apis.get(name)
        if limiter is None:
            limiter = self._apis[name] = ApiLimiter(self._limits_for(name), self.concurrency, self._clock)
        return limiter

    def _limits_for(self, api: str) -> list[Limit]:
        if self._config is not None:
            rate = self._config.per_api.get(api, self._config.calls_per_second)
            return [TokenBucket(rate, max(1, self._config.burst))]
        return [SlidingWindow(w.calls, w.seconds, guard=WINDOW_GUARD) for w in self._windows]


def _default_windows(platform: Platform) -> tuple[WindowSpec, ...]:
    return WECOM_WINDOWS if platform is Platform.WECOM else DINGTALK_WINDOWS


class LimiterRegistry:
    """One ``RateLimiter`` per key (corp or suite) for the process, so every client of a corp shares it.

    Keep one in the application (an ``AppKey``) and pass it to ``make_client``; without one, each
    client paces itself alone.
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._limiters: dict[str, RateLimiter] = {}

    def get(self, key: str, platform: Platform, limits: RateLimits | None) -> RateLimiter:
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = RateLimiter(platform, limits, clock=self._clock)
        return limiter
