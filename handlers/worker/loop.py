"""The inbox worker: applies each stream's events in arrival order, one stream at a time across processes.

A stream (a corp, or a suite's instruction URL) is owned by one connection through a session advisory
lock while it is drained; several streams are drained at once. An event is applied and marked done in
the same transaction (a run of a stream's events shares one; on any failure the run is rolled back and
redone one event per transaction), so a crash leaves every event applied once or still pending. A failing
event is retried with backoff and blocks the events behind it (order matters: an update must not overtake
its create) until it is dead-lettered; then the corp gets a full-sync request and its stream moves on.
Periodic duties (``handlers.worker.duties``) run beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from handlers.errors import MalformedMessage
from handlers.events import Services, Shared
from handlers.store import inbox, locks
from handlers.store.inbox import InboxRow
from handlers.store.pool import DB_ERRORS
from handlers.sync import drift
from handlers.worker.apply import SUITE_ROUTE, apply_row, corp_of, describe_error, prefetch
from handlers.worker.duties import Duties, DutySettings

log = logging.getLogger("corpsync.worker")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    concurrency: int = 8  # streams this process applies at once
    batch_size: int = 100  # pending rows read per query
    turn: int = 1000  # rows one drain applies before it lets other streams have the connection
    poll_interval: float = 1.0  # seconds between looks at the inbox when nobody calls wake()
    max_attempts: int = 8
    backoff_base: float = 2.0  # seconds before the 2nd try; doubles each time
    backoff_cap: float = 600.0
    apply_timeout: float = 60.0
    async_commit: bool = True  # apply + mark are one transaction: a lost commit means "still pending"
    heartbeat_interval: float = 5.0
    max_gap: float = 300.0  # no receiver beat for this long → full sync of every corp
    failed_events_interval: float = 300.0  # DingTalk failed-events list (also drained on start-up)
    count_check_interval: float = 3600.0  # platform member count vs local active count; 0 disables
    housekeeping_interval: float = 2.0  # ANALYZE young tables, VACUUM a dead-row-heavy inbox; 0 disables

    def backoff(self, attempts: int) -> float:
        return float(min(self.backoff_base * 2 ** max(attempts - 1, 0), self.backoff_cap))


class EventObserver(Protocol):
    """What the worker reports as it settles rows (receiver.ops.metrics implements it)."""

    def on_applied(self, platform: str, outcome: str, seconds: float) -> None:
        """A row was applied (``outcome``: done | ignored), ``seconds`` after it was received (database clock)."""

    def on_dead(self, stream: str) -> None:
        """A row was dead-lettered; ``stream`` is its corp's name (``suite:<auth>`` for a suite's instructions)."""


class _RowSettledError(Exception):
    """The row was settled by someone else meanwhile: roll back."""


class Worker:
    """``run(stop)`` until ``stop`` is set; ``wake()`` after an intake commit; ``run_until_idle()`` in tests."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        services: Services,
        settings: WorkerSettings | None = None,
        *,
        process: str | None = None,
        events: EventObserver | None = None,
    ) -> None:
        self.pool = pool
        self.services = services
        self.settings = settings or WorkerSettings()
        self.events = events
        self.last_turn = time.monotonic()  # when the apply loop last looked at the inbox (readiness)
        self._task: asyncio.Task[None] | None = None
        self.process = process or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wakeup = asyncio.Event()
        self._active: dict[str, asyncio.Task[None]] = {}
        self._elsewhere: dict[str, float] = {}  # stream → monotonic time until which another process owns it
        self._stopping = False
        config = self.settings
        self.duties = Duties(
            pool,
            services,
            DutySettings(
                config.heartbeat_interval,
                config.max_gap,
                config.failed_events_interval,
                config.count_check_interval,
                config.housekeeping_interval,
            ),
            self.process,
            self.wake,
        )

    def wake(self, streams: Iterable[str] = ()) -> None:
        """New rows were committed: look at the inbox now rather than at the next poll.

        When every stream named is already being drained here, nothing needs doing: a drain goes on while
        its stream has due rows, and a finished drain wakes the loop itself (``_drained``).
        """
        named = tuple(streams)
        if named and all(stream in self._active for stream in named):
            return
        self._wakeup.set()

    @property
    def running(self) -> bool:
        """``run`` was started and has not ended (stopped, crashed or cancelled)."""
        return self._task is not None and not self._task.done()

    # -- the apply loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._task, self.last_turn = asyncio.current_task(), time.monotonic()
        async with self.pool.acquire() as conn:
            await inbox.adopt_streams(conn)
        duties = asyncio.create_task(self.duties.run(stop), name="corpsync-worker-duties")
        stopper = asyncio.create_task(self._wake_on(stop))
        log.info("worker started", extra={"action": "worker_started", "worker": self.process})
        try:
            while not stop.is_set():
                self._wakeup.clear()
                self.last_turn = time.monotonic()
                wait = await self._dispatch()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait)
        except asyncio.CancelledError:
            for drain in self._active.values():  # cancelled, not stopped: do not wait for events in flight
                drain.cancel()
            raise
        finally:
            self._stopping = True
            stopper.cancel()
            if not stop.is_set():
                duties.cancel()  # stopped cleanly, the duties end on their own and remove this heartbeat
            await asyncio.gather(stopper, duties, *self._active.values(), return_exceptions=True)
            log.info("worker stopped", extra={"action": "worker_stopped", "worker": self.process})

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wakeup.set()

    async def _dispatch(self) -> float:
        """Start a drain for each due stream not already being drained; return how long to sleep at most."""
        wait = self.settings.poll_interval
        now = time.monotonic()
        self._elsewhere = {s: until for s, until in self._elsewhere.items() if until > now}
        try:
            rows = await inbox.due_streams(self.pool, self.settings.concurrency * 4)
        except DB_ERRORS as exc:
            log.warning("inbox unavailable", extra={"action": "worker_poll_failed", "error": describe_error(exc)})
            return wait
        for row in rows:
            stream = row["stream"]
            if stream in self._active or stream in self._elsewhere:
                continue
            if not row["due"]:
                wait = min(wait, max(row["wait_seconds"], 0.01))
                continue
            if len(self._active) >= self.settings.concurrency:
                break
            task = asyncio.create_task(self._drain(stream), name=f"corpsync-drain-{stream}")
            self._active[stream] = task
            task.add_done_callback(functools.partial(self._drained, stream))
        return wait

    def _drained(self, stream: str, _task: asyncio.Task[None]) -> None:
        self._active.pop(stream, None)
        self._wakeup.set()

    async def run_until_idle(self) -> int:
        """Apply everything that is due now, stream by stream, and return how many rows were settled."""
        settled = 0
        async with self.pool.acquire() as conn:
            await inbox.adopt_streams(conn)
        while True:
            rows = await inbox.due_streams(self.pool, 1000)
            due = [r["stream"] for r in rows if r["due"]]
            if not due:
                return settled
            progress = 0
            for stream in due:
                progress += await self._drain_stream(stream)
            if not progress:
                return settled
            settled += progress

    async def _drain(self, stream: str) -> None:
        try:
            await self._drain_stream(stream)
        except Exception as exc:  # the loop must survive a broken connection or database
            log.warning(
                "stream drain failed",
                extra={"action": "worker_drain_failed", "stream": stream, "error": describe_error(exc)},
            )
            self._elsewhere[stream] = time.monotonic() + self.settings.poll_interval

    async def _drain_stream(self, stream: str) -> int:
        """Own the stream, apply its due rows in id order; return how many were settled (done/ignored/dead)."""
        settled = 0
        shared = Shared()
        async with self.pool.acquire() as conn:
            if not await locks.try_lock_stream(conn, stream):
                self._elsewhere[stream] = time.monotonic() + self.settings.poll_interval
                return 0
            try:
                if self.settings.async_commit:
                    await inbox.commit_asynchronously(conn, True)
                after = 0  # rows up to here were settled by this drain
                while settled < self.settings.turn and not self._stopping:
                    records = await inbox.pending_rows(conn, stream, self.settings.batch_size, after)
                    due = list(itertools.takewhile(lambda r: r.due, records))
                    if not due:
                        break
                    await prefetch(conn, due, self.services, shared)
                    applied, blocked = await self._apply_rows(conn, due, shared)
                    settled += applied
                    if blocked or len(due) < len(records):
                        break
                    after = due[-1].id
            finally:
                await locks.unlock_stream(conn, stream)
                if self.settings.async_commit:
                    await inbox.commit_asynchronously(conn, False)
        return settled

    async def _apply_rows(self, conn: asyncpg.Connection, rows: list[InboxRow], shared: Shared) -> tuple[int, bool]:
        """Apply rows in order: together in one transaction when they can be, else one by one.
        Returns (settled, blocked): blocked when a row failed and must be retried before the rest."""
        together = [r for r in itertools.takewhile(lambda r: r.route != SUITE_ROUTE, rows)]
        if len(together) > 1 and await self._apply_together(conn, together, shared):
            return len(together), False
        settled = 0
        for row in rows:
            if self._stopping:
                return settled, True
            ok, dead = await self._apply_one(conn, row, shared)
            if not ok and not dead:
                return settled, True  # the head failed: later rows of the stream wait for it
            settled += 1
        return settled, False

    async def _apply_together(self, conn: asyncpg.Connection, rows: list[InboxRow], shared: Shared) -> bool:
        """One transaction for several rows (one commit instead of many). Any failure rolls it all back and
        returns False: the caller then applies the rows one by one and records the failure where it is."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.apply_timeout), conn.transaction():
                outcomes = [await apply_row(conn, row, self.services, shared) for row in rows]
                waited = await inbox.mark_done_many(
                    conn,
                    [row.id for row in rows],
                    [a.outcome.value for a in outcomes],
                    [a.event_type for a in outcomes],
                )
                if len(waited) != len(rows):
                    raise _RowSettledError
        except Exception:  # includes _RowSettledError: every row is retried on its own
            shared.requested.clear()
            return False
        if self.events is not None:
            for row, done in zip(rows, outcomes, strict=True):
                self.events.on_applied(row.platform, done.outcome.value, waited[row.id])
        log.debug("events applied", extra={"action": "events_applied", "stream": rows[0].stream, "rows": len(rows),
                                           "ms": round((time.perf_counter() - started) * 1000, 2)})  # fmt: skip
        return True

    async def _apply_one(self, conn: asyncpg.Connection, row: InboxRow, shared: Shared) -> tuple[bool, bool]:
        """(applied, dead): apply one row and mark it, in one transaction; record a failure otherwise."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.apply_timeout), conn.transaction():
                if self.settings.async_commit and row.route == SUITE_ROUTE:
                    await inbox.commit_synchronously(conn)  # a used auth code must not be lost
                applied = await apply_row(conn, row, self.services, shared)
                waited = await inbox.mark_done(conn, row.id, applied.outcome.value, applied.event_type)
                if waited is None:
                    raise _RowSettledError
        except _RowSettledError:
            shared.requested.clear()
            return True, False
        except Exception as exc:
            shared.requested.clear()
            dead = await self._record_failure(conn, row, exc)
            return False, dead
        if self.events is not None:
            self.events.on_applied(row.platform, applied.outcome.value, waited)
        log.debug(
            "event applied",
            extra={
                "action": "event_applied",
                "inbox_id": row.id,
                "stream": row.stream,
                "event_type": applied.event_type,
                "outcome": applied.outcome.value,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return True, False

    async def _record_failure(self, conn: asyncpg.Connection, row: InboxRow, exc: Exception) -> bool:
        """Count the attempt; dead-letter after the last one (or at once when retrying cannot help)."""
        permanent = isinstance(exc, MalformedMessage)
        async with conn.transaction():
            status = await inbox.mark_failed(
                conn,
                row.id,
                describe_error(exc),
                self.settings.max_attempts,
                self.settings.backoff(row.attempts + 1),
                permanent,
            )
            dead = status == "dead"
            if dead:
                corp = row.corp
                if corp is None:
                    found = await corp_of(conn, row)
                    corp = None if found is None else found.id
                if corp is not None:
                    await drift.request(conn, corp, "dead_letter", inbox_id=row.id)
        extra = {
            "action": "event_dead" if dead else "event_failed",
            "inbox_id": row.id,
            "stream": row.stream,
            "attempts": row.attempts + 1,
            "error": describe_error(exc),
        }
        log.warning("event dead-lettered" if dead else "event failed", extra=extra)
        if dead and self.events is not None:
            self.events.on_dead(row.stream)
        return dead


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    """Run the worker for the duration of the block (for ``app.cleanup_ctx``); stops it cleanly on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name="corpsync-worker")
    task.add_done_callback(_report_end)
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("worker crashed", exc_info=task.exception(), extra={"action": "worker_crashed"})
