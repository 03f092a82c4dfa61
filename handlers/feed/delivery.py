"""Webhook delivery from a durable outbox: at least once, in order per (subscriber, corp), shared by processes.

Each round of ``Delivery``: the fan-out queues committed changes for the subscribers that want them, by the filters
their feed_subscribers rows hold (the serve started last wrote them: ``declare``), so every process fans out alike
(one process at a time, in one transaction with its position); subscribers failing longer than ``disable_after``
are disabled; delivered rows older than ``retention`` go; then every due stream this process can lock is drained by
a task.

A stream is one (subscriber, corp): its events go out one at a time, in outbox order. A process sends a stream
only while it holds the stream's session advisory lock, and reads the stream's head after taking it, so two
processes never send one event at the same time; the lock connection lost, the tasks stop. A failed send (no
2xx answer in time) ends the stream's turn: the event is tried again after the backoff of its attempt (the
schedule, each delay spread by ± ``jitter``), the events behind it wait. Delivered rows are marked after each
batch and before a failure is recorded; a process that dies in between sends those again (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import asyncpg
import orjson

from handlers.config import Subscriber
from handlers.feed import signing
from handlers.feed.events import event
from handlers.store import feed as store
from handlers.store import locks

log = logging.getLogger("corpsync.feed")

# Svix's schedule after the first try: 5 seconds, 5 minutes, 30 minutes, 2 hours, 5 hours, 10 hours, 10 hours.
SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


@dataclass(frozen=True, slots=True)
class FeedSettings:
    retry_schedule: tuple[float, ...] = SCHEDULE  # seconds before attempt 2, 3, ...; the last one repeats
    jitter: float = 0.2  # each delay times a random factor in [1 - jitter, 1 + jitter]
    disable_after: float = 5 * 24 * 3600.0  # a subscriber failing this long is disabled
    retention: float = 7 * 24 * 3600.0  # delivered outbox rows are kept this long
    timeout: float = 15.0  # seconds one POST may take
    concurrency: int = 8  # streams one process sends at once
    batch: int = 100  # events read at a time from a stream
    fanout_batch: int = 5000  # changes the fan-out queues per transaction
    poll_interval: float = 1.0  # seconds between rounds when nothing wakes the loop
    min_round_interval: float = 0.25  # wakes sooner after a round's start share the next round
    prune_every: float = 300.0  # seconds between retention passes
    prune_batch: int = 10_000  # delivered rows one statement of a retention pass deletes; a pass takes every one due


class FeedObserver(Protocol):
    def on_delivered(self, subscriber: str, seconds: float) -> None: ...

    def on_failed(self, subscriber: str, reason: str) -> None: ...


def retry_delay(attempt: int, settings: FeedSettings, uniform: Callable[[float, float], float]) -> float:
    """Seconds before the next try after attempt number ``attempt`` (from 1) failed."""
    schedule = settings.retry_schedule
    base = schedule[min(attempt, len(schedule)) - 1]
    return max(0.0, base * uniform(1.0 - settings.jitter, 1.0 + settings.jitter))


def filters(subscribers: Mapping[str, Subscriber]) -> list[store.SubscriberFilter]:
    """What each subscriber wants, as its feed_subscribers row keeps it."""
    return [
        store.SubscriberFilter(s.name, s.events, s.corps, tuple(sorted(s.personal_fields)))
        for s in subscribers.values()
    ]


async def declare(db: store.Executor, subscribers: Mapping[str, Subscriber]) -> list[str]:
    """Store an app dir's subscribers (their filters) as the ones there are; those it lacks are removed: no fan-out
    to them, no delivery, their pending events dropped. One declared again gets the changes from then on (replay
    fills the gap). The names removed now."""
    removed = await store.declare_subscribers(db, filters(subscribers), complete=True)
    for name in removed:
        log.warning("subscriber removed", extra={"action": "feed_subscriber_removed", "subscriber": name})
    return removed


class Delivery:
    """The outbox's sender in one process; ``run`` until ``stop`` is set."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        subscribers: Mapping[str, Subscriber],
        session: aiohttp.ClientSession,
        settings: FeedSettings | None = None,
        *,
        observer: FeedObserver | None = None,
        uniform: Callable[[float, float], float] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pool = pool
        self.subscribers = dict(subscribers)
        self.session = session
        self.settings = settings or FeedSettings()
        self._observer = observer
        self._uniform = uniform or secrets.SystemRandom().uniform
        self._clock = clock
        self._keys = {name: signing.secret_key(s.secret.reveal()) for name, s in self.subscribers.items()}
        self._wake = asyncio.Event()
        self._tasks: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._lock_conn: asyncpg.pool.PoolConnectionProxy | None = None
        self._lock_guard = asyncio.Lock()
        self._last_prune = 0.0
        self._stopping = False
        self.running = False

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop``. Without subscribers too: the fan-out then only moves its position, so that a
        subscriber added later starts from the changes committed since, not from the whole history."""
        self.running = True
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    await self._open()
                    await self.round()
                except ERRORS as exc:
                    log.warning("feed round failed", extra={"action": "feed_round_failed", "error": type(exc).__name__})
                    await self._stop_streams()
                    await self._close_lock_conn()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(self._wake, stop), self.settings.poll_interval)
                # Every commit that logs changes wakes the loop (NOTIFY): under load the worker commits a batch every
                # few milliseconds, and a round is a transaction of its own. Wakes this soon share the next round.
                rest = self.settings.min_round_interval - (time.monotonic() - started)
                if rest > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), rest)
        finally:
            self._stopping = True
            await self._stop_streams(graceful=True)
            await self._close_lock_conn()
            self.running = False

    async def _open(self) -> None:
        if self._lock_conn is not None and not self._lock_conn.is_closed():
            return
        await declare(self.pool, self.subscribers)
        self._lock_conn = await self.pool.acquire()
        self._lock_conn.add_termination_listener(self._lock_conn_lost)

    def _lock_conn_lost(self, conn: object) -> None:
        """The stream locks went with the connection: stop sending what another process may take now."""
        for task in self._tasks.values():
            task.cancel()

    async def _close_lock_conn(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            with contextlib.suppress(*ERRORS):
                await self.pool.release(conn)  # the pool's reset releases every advisory lock it holds

    async def _stop_streams(self, *, graceful: bool = False) -> None:
        tasks = list(self._tasks.values())
        if graceful and tasks:
            await asyncio.wait(tasks, timeout=self.settings.timeout)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def round(self) -> None:
        """Fan out, disable, prune, and start a task for every due stream this process can lock."""
        while True:
            moved = await store.fan_out(self.pool, self.settings.fanout_batch)
            if moved is None or moved[0] < self.settings.fanout_batch:
                break
        for name in await store.disable_failing(self.pool, self.settings.disable_after):
            log.warning("subscriber disabled", extra={"action": "feed_subscriber_disabled", "subscriber": name})
        now = time.monotonic()
        if now - self._last_prune >= self.settings.prune_every:
            self._last_prune = now
            batch = self.settings.prune_batch
            while (gone := await store.prune(self.pool, self.settings.retention, batch)) and gone == batch:
                pass  # every row due, not one batch a pass (that fell behind past ~33 deliveries/s)
            for name, count in (await store.prune_orphans(self.pool)).items():
                extra = {"action": "feed_events_expired", "subscriber": name, "count": count}
                log.warning("undelivered events outlived the change log's retention", extra=extra)
        free = self.settings.concurrency - len(self._tasks)
        if free <= 0 or self._lock_conn is None or not self.subscribers:
            return
        for subscriber, corp in await store.due_streams(self.pool, list(self.subscribers), free + len(self._tasks)):
            if (subscriber, corp) in self._tasks or len(self._tasks) >= self.settings.concurrency:
                continue
            async with self._lock_guard:
                if not await locks.try_lock_feed_stream(self._lock_conn, subscriber, corp):
                    continue
            task = asyncio.create_task(self._drain(subscriber, corp), name=f"corpsync-feed-{subscriber}")
            self._tasks[(subscriber, corp)] = task

    async def _drain(self, name: str, corp: int) -> None:
        """Send the stream's events in order until it is empty, one fails, or the process stops."""
        try:
            await self._send_stream(self.subscribers[name], corp)
        except ERRORS as exc:
            log.warning("feed stream failed", extra={"action": "feed_stream_failed", "subscriber": name,
                                                     "error": type(exc).__name__})  # fmt: skip
        finally:
            self._tasks.pop((name, corp), None)
            conn = self._lock_conn
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(*ERRORS):
                    async with self._lock_guard:
                        await locks.unlock_feed_stream(conn, name, corp)
            self.wake()

    async def _send_stream(self, subscriber: Subscriber, corp: int) -> None:
        key = self._keys[subscriber.name]
        while not self._stopping:
            rows = await store.stream_head(self.pool, subscriber.name, corp, self.settings.batch)
            if not rows:
                return
            done: list[int] = []
            try:
                for row in rows:
                    if self._stopping:
                        return
                    body = orjson.dumps(event(row, row["personal_fields"]))  # as the row allows: alike everywhere
                    started = time.monotonic()
                    error = await self._post(subscriber, key, str(row["id"]), body)
                    if error is None:
                        done.append(row["outbox_id"])
                        if self._observer is not None:
                            self._observer.on_delivered(subscriber.name, time.monotonic() - started)
                        continue
                    if done:
                        await store.delivered(self.pool, subscriber.name, done)
                        done = []
                    await self._failed(subscriber, corp, row["outbox_id"], row["attempts"] + 1, error)
                    return
            finally:
                if done:
                    await store.delivered(self.pool, subscriber.name, done)

    async def _failed(self, subscriber: Subscriber, corp: int, outbox_id: int, attempt: int, error: str) -> None:
        delay = retry_delay(attempt, self.settings, self._uniform)
        await store.failed(self.pool, subscriber.name, corp, outbox_id, delay, error)
        if self._observer is not None:
            self._observer.on_failed(subscriber.name, error.split(" ", 1)[0])
        extra = {"subscriber": subscriber.name, "attempt": attempt, "error": error, "retry_in": round(delay, 1)}
        log.info("feed delivery failed", extra={"action": "feed_delivery_failed", **extra})

    async def _post(self, subscriber: Subscriber, key: bytes, message_id: str, body: bytes) -> str | None:
        """None when the subscriber answered 2xx in time; else what went wrong, without any payload."""
        headers = signing.headers(key, message_id, int(self._clock()), body)
        headers["User-Agent"] = "corpsync-feed"
        try:
            async with self.session.post(
                subscriber.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            ) as response:
                if 200 <= response.status < 300:
                    return None
                return f"http {response.status}"
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError as exc:
            return f"connection {type(exc).__name__}"


async def _first(*events: asyncio.Event) -> None:
    """Until any of ``events`` is set."""
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
