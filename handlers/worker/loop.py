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
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable

import asyncpg

from handlers.events import Services
from handlers.store import inbox
from handlers.store.pool import DB_ERRORS
from handlers.worker.apply import describe_error
from handlers.worker.duties import Duties, DutySettings
from handlers.worker.settle import EventObserver, StreamApplier, WorkerSettings

__all__ = ["EventObserver", "Worker", "WorkerSettings", "running"]

log = logging.getLogger("corpsync.worker")


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
        on_instruction: Callable[[str], None] | None = None,
    ) -> None:
        """``on_instruction`` is told the type of each suite instruction (create_auth, cancel_auth, ...) this
        worker applied, once it is committed."""
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
        self.applier = StreamApplier(pool, services, self.settings, events, lambda: self._stopping, on_instruction)
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
                progress += await self.applier.drain(stream) or 0
            if not progress:
                return settled
            settled += progress

    async def _drain(self, stream: str) -> None:
        try:
            if await self.applier.drain(stream, linger=self.settings.linger) is None:  # another process has it
                self._elsewhere[stream] = time.monotonic() + self.settings.poll_interval
        except Exception as exc:  # the loop must survive a broken connection or database
            log.warning(
                "stream drain failed",
                extra={"action": "worker_drain_failed", "stream": stream, "error": describe_error(exc)},
            )
            self._elsewhere[stream] = time.monotonic() + self.settings.poll_interval


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
