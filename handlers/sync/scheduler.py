"""When full syncs run: on start-up (never synced / too old), on a schedule, on demand and on drift.

Several processes may run a scheduler against one database: the advisory lock in ``run_full_sync``
lets one run per corp through and coalesces the rest, and every decision reads the shared
``sync_runs`` / ``corps`` rows (times from the database clock). A failed run is retried with
exponential backoff, except that a sync requested by create_auth / reset_permanent_code (a suite tenant's
permanent code just arrived) runs at once; nothing a sync raises stops the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from handlers.clients.protocol import Progress
from handlers.config import CorpConfig, SyncSettings
from handlers.errors import UnknownCorp
from handlers.store import sync_runs
from handlers.store.corps import URGENT_REASONS, corp_id_by_name, ensure_corp
from handlers.sync.fullsync import RunKnown, RunStatus, SnapshotSource, SyncResult, run_full_sync
from handlers.sync.reconcile import empty_counts

log = logging.getLogger("corpsync.triggers")

ClientFactory = Callable[[CorpConfig], SnapshotSource]
SyncObserver = Callable[[SyncResult], None]  # told of every run this scheduler started, once it ended


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    poll_seconds: float = 5.0  # how often the loop looks for due corps and drift requests
    wake_seconds: float = 0.5  # wake() starts a look at most this often (a burst of authorizations wakes it once)
    debounce_seconds: float = 60.0  # a drift request starts a run at most this often per corp
    retry_seconds: float = 60.0  # first retry after a failed run; doubles per failure in a row
    max_retry_seconds: float = 3600.0
    max_parallel: int = 2  # corps this process syncs at the same time (serve: CORPSYNC_SYNC_PARALLEL)


@dataclass(frozen=True, slots=True)
class CorpSyncState:
    """One corp's sync history as the scheduler sees it (``now`` is the database clock)."""

    now: datetime
    running: bool  # some process holds the corp's sync lock
    last_started_at: datetime | None
    last_good_at: datetime | None  # finished_at of the newest succeeded or quarantined run
    failures: int  # failed runs since the newest good one
    requested_at: datetime | None  # open drift / on-demand request
    requested_reason: str | None = None  # its reason ('create_auth', 'unknown_department', ...)


def due(state: CorpSyncState, sync: SyncSettings, settings: SchedulerSettings, *, startup: bool) -> str | None:
    """The trigger of the run this corp needs now, or None."""
    if state.running:
        return None
    since_start = None if state.last_started_at is None else state.now - state.last_started_at
    if (
        state.requested_at is not None
        and state.requested_reason in URGENT_REASONS
        and (state.last_started_at is None or state.requested_at > state.last_started_at)
    ):
        return "first" if state.last_good_at is None else "drift"
    if state.failures and since_start is not None:
        backoff = min(settings.max_retry_seconds, settings.retry_seconds * 2 ** min(state.failures - 1, 30))
        return "retry" if since_start >= timedelta(seconds=backoff) else None
    if state.last_good_at is None:
        return "first"
    age = state.now - state.last_good_at
    if startup and age > timedelta(seconds=sync.max_age_seconds):
        return "startup"
    if sync.schedule_seconds is not None and age >= timedelta(seconds=sync.schedule_seconds):
        return "schedule"
    if state.requested_at is not None and (
        since_start is None or since_start >= timedelta(seconds=settings.debounce_seconds)
    ):
        return "drift"
    return None


class SyncScheduler:
    """Runs full syncs for the configured corps: ``run`` is the loop, ``request`` and ``start`` the on-demand
    entries. It owns every sync task of its process: one per corp at a time, cancelled by ``close``."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        corps: Mapping[str, CorpConfig],
        clients: ClientFactory,
        settings: SchedulerSettings | None = None,
        *,
        on_finished: SyncObserver | None = None,
        discover: Callable[[], Awaitable[Mapping[str, CorpConfig]]] | None = None,
    ) -> None:
        self._pool = pool
        self._corps = dict(corps)
        self._configured = dict(corps)
        self._discover = discover  # corps known only at run time (suite tenants), looked up every tick
        self._clients = clients
        self._on_finished = on_finished
        self.settings = settings or SchedulerSettings()
        self._slots = asyncio.Semaphore(self.settings.max_parallel)
        self._tasks: dict[str, asyncio.Task[SyncResult]] = {}
        self._rows: dict[str, int] = {}
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Look for due corps now rather than at the next poll (e.g. a suite tenant was just registered)."""
        self._woken.set()

    def update_corps(self, corps: Mapping[str, CorpConfig]) -> None:
        """Serve this set of corps from now on (e.g. after a suite tenant was authorized)."""
        self._corps = dict(corps)

    def running(self) -> frozenset[str]:
        """The corps this process is syncing (or about to)."""
        return frozenset(name for name, task in self._tasks.items() if not task.done())

    def request(
        self, corp_name: str, trigger: str = "manual", *, allow_deletes: bool = False, progress: Progress | None = None
    ) -> asyncio.Task[SyncResult]:
        """Start a full sync of a corp; while one runs in this process, that run's task is returned instead.

        Another process's run is coalesced by the lock: the task then ends ``ALREADY_RUNNING``.
        """
        corp = self._corps.get(corp_name)
        if corp is None:
            raise UnknownCorp(corp_name)
        task, _ = self.start(corp, trigger, allow_deletes=allow_deletes, progress=progress)
        return task

    def start(
        self,
        corp: CorpConfig,
        trigger: str,
        *,
        allow_deletes: bool = False,
        progress: Progress | None = None,
        on_run: RunKnown | None = None,
    ) -> tuple[asyncio.Task[SyncResult], bool]:
        """(task, started now): a full sync of ``corp``, or the one of it already running in this process.

        ``corp`` need not be one this scheduler serves yet (a suite tenant authorized since its last tick).
        """
        task = self._tasks.get(corp.name)
        if task is not None and not task.done():
            return task, False
        task = asyncio.create_task(
            self._sync(corp, trigger, allow_deletes, progress, on_run), name=f"full-sync:{corp.name}"
        )
        self._tasks[corp.name] = task
        if self._on_finished is not None:
            task.add_done_callback(self._finished)
        return task, True

    def _finished(self, task: asyncio.Task[SyncResult]) -> None:
        if self._on_finished is not None and not task.cancelled() and task.exception() is None:
            self._on_finished(task.result())

    async def run(self, stop: asyncio.Event) -> None:
        """Poll (or, woken, look sooner) until ``stop`` is set, then cancel the syncs still running (they record
        'cancelled')."""
        startup = True
        stopper = asyncio.create_task(self._wake_on(stop))
        try:
            while not stop.is_set():
                ticked = time.monotonic()
                self._woken.clear()
                try:
                    await self.tick(startup=startup)
                    startup = False
                except Exception as exc:  # the database may be away: try again next poll
                    log.warning("scheduler tick failed", extra={"action": "scheduler_tick_failed", "error": repr(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), timeout=self.settings.poll_seconds)
                gap = ticked + self.settings.wake_seconds - time.monotonic()
                if gap > 0 and not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=gap)
        finally:
            stopper.cancel()
            await self.close()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._woken.set()

    async def close(self) -> None:
        """Cancel the syncs still running (full sync records them as failed: 'cancelled')."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def tick(self, *, startup: bool = False) -> list[str]:
        """Start the runs that are due now; return the names of the corps started."""
        if self._discover is not None:
            self._corps = {**await self._discover(), **self._configured}
        started = []
        busy = self.running()  # once per tick: it walks every corp's task
        for name, state in (await self._states()).items():
            corp = self._corps.get(name)
            if corp is None or name in busy:
                continue
            trigger = due(state, corp.sync, self.settings, startup=startup)
            if trigger is not None:
                self.request(name, trigger)
                started.append(name)
        return started

    async def _states(self) -> dict[str, CorpSyncState]:
        rows = await sync_runs.sync_states(self._pool, list(self._corps))
        found = {}
        for r in rows:
            self._rows[r["name"]] = r["id"]
            found[r["name"]] = CorpSyncState(
                now=r["now"],
                running=r["running"],
                last_started_at=r["last_started_at"],
                last_good_at=r["last_good_at"],
                failures=r["failures"],
                requested_at=r["sync_requested_at"],
                requested_reason=r["sync_request_reason"],
            )
        return found

    async def _corp_row(self, corp: CorpConfig) -> int:
        row = self._rows.get(corp.name)
        if row is None:
            async with self._pool.acquire() as conn:
                row = await corp_id_by_name(conn, corp.name) or await ensure_corp(conn, corp)
            self._rows[corp.name] = row
        return row

    async def _sync(
        self,
        corp: CorpConfig,
        trigger: str,
        allow_deletes: bool,
        progress: Progress | None,
        on_run: RunKnown | None = None,
    ) -> SyncResult:
        """One run, never raising (except cancellation): a crash becomes a FAILED result and a log line."""
        async with self._slots:
            try:
                client = self._clients(corp)
                row = await self._corp_row(corp)
                return await run_full_sync(
                    self._pool, row, corp, client, trigger=trigger, allow_deletes=allow_deletes, progress=progress,
                    on_run=on_run,
                )  # fmt: skip
            except Exception as exc:
                log.warning(
                    "full sync crashed",
                    extra={"action": "full_sync_crashed", "corp": corp.name, "trigger": trigger, "error": repr(exc)},
                )
                return SyncResult(corp.name, trigger, RunStatus.FAILED, None, empty_counts(), error=repr(exc))
