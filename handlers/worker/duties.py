"""The worker's periodic duties: heartbeats (and gap detection), DingTalk failed-events lists, member-count
checks, and early housekeeping of the tables a fresh database grows from empty."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from handlers.clients.dingtalk_records import FailedEvent
from handlers.events import CorpRef, Services
from handlers.store import housekeeping, locks
from handlers.store.corps import active_corps
from handlers.store.pool import DB_ERRORS
from handlers.sync import drift
from handlers.sync.drift import FailedEventSource
from handlers.worker.apply import describe_error

log = logging.getLogger("corpsync.worker")


@dataclass(frozen=True, slots=True)
class DutySettings:
    heartbeat_interval: float = 5.0
    max_gap: float = 300.0  # no receiver beat for this long → full sync of every corp
    failed_events_interval: float = 300.0  # DingTalk failed-events list (also drained on start-up)
    count_check_interval: float = 3600.0  # platform member count vs local active count; 0 disables
    housekeeping_interval: float = 2.0  # ANALYZE young tables, VACUUM a dead-row-heavy inbox; 0 disables


class Duties:
    """``run(stop)`` beside the apply loop; ``wake`` is called when new inbox rows were written."""

    def __init__(
        self, pool: asyncpg.Pool, services: Services, settings: DutySettings, process: str, wake: Callable[[], None]
    ) -> None:
        self.pool = pool
        self.services = services
        self.settings = settings
        self.process = process
        self.wake = wake

    async def run(self, stop: asyncio.Event) -> None:
        """Heartbeats on their own clock; the slower checks in a task beside them, one at a time."""
        checks: asyncio.Task[None] | None = None
        housework: asyncio.Task[None] | None = None
        next_housework = 0.0
        next_failed = 0.0
        next_count = time.monotonic() + self.settings.count_check_interval
        try:
            next_beat = 0.0
            while not stop.is_set():
                try:
                    if time.monotonic() >= next_beat:
                        next_beat = time.monotonic() + self.settings.heartbeat_interval
                        async with self.pool.acquire() as conn:
                            await drift.beat(conn, self.process, timedelta(seconds=self.settings.max_gap))
                except DB_ERRORS as exc:
                    log.warning("heartbeat failed", extra={"action": "heartbeat_failed", "error": describe_error(exc)})
                now = time.monotonic()
                if checks is None or checks.done():
                    failed_due, count_due = (
                        now >= next_failed,
                        bool(self.settings.count_check_interval) and now >= next_count,
                    )
                    if failed_due:
                        next_failed = now + self.settings.failed_events_interval
                    if count_due:
                        next_count = now + self.settings.count_check_interval
                    if failed_due or count_due:
                        checks = asyncio.create_task(self.check_corps(failed_lists=failed_due, counts=count_due))
                if (
                    self.settings.housekeeping_interval
                    and now >= next_housework
                    and (housework is None or housework.done())
                ):
                    next_housework = now + self.settings.housekeeping_interval
                    housework = asyncio.create_task(self.housekeeping())
                wait = self.settings.heartbeat_interval
                if self.settings.housekeeping_interval:
                    wait = min(wait, self.settings.housekeeping_interval)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        finally:
            for task in (checks, housework):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            with contextlib.suppress(Exception):
                async with self.pool.acquire() as conn:
                    await drift.forget_process(conn, self.process)

    async def housekeeping(self) -> None:
        """What autovacuum would do, sooner (see ``handlers.store.housekeeping``); a locked table is skipped."""
        try:
            async with self.pool.acquire() as conn:
                async for done in housekeeping.maintain_tables(conn):
                    log.debug("table maintained", extra={"action": "worker_housekeeping", "table": done.table,
                                                          "vacuum": done.vacuum, "analyze": done.analyze})  # fmt: skip
        except DB_ERRORS as exc:
            log.warning("housekeeping failed", extra={"action": "housekeeping_failed", "error": describe_error(exc)})

    async def check_corps(self, *, failed_lists: bool = True, counts: bool = True) -> None:
        """Drain DingTalk failed-events lists and compare member counts, for every active corp."""
        if self.services.clients is None:
            return
        rows = await active_corps(self.pool)
        for corp in (CorpRef.from_row(r) for r in rows):
            try:
                client = await self.services.clients.client(corp)
                if client is None:
                    continue
                if failed_lists and isinstance(client, FailedEventSource):
                    await self.drain_failed_list(corp, client)
                if counts:
                    async with self.pool.acquire() as conn:
                        await drift.compare_member_count(conn, corp.id, corp.name, client)
            except Exception as exc:  # one corp's trouble must not stop the others' checks
                log.warning(
                    "corp check failed",
                    extra={"action": "corp_check_failed", "corp": corp.name, "error": describe_error(exc)},
                )

    async def drain_failed_list(self, corp: CorpRef, client: FailedEventSource) -> int:
        """Move the corp's DingTalk failed-events list into the inbox (one process at a time)."""
        written = 0

        async def persist(batch: list[FailedEvent]) -> None:
            nonlocal written
            written += await drift.persist_failed_entries(self.pool, corp.id, corp.name, batch)
            self.wake()

        async with self.pool.acquire() as conn:
            if not await locks.try_lock_failed_list(conn, corp.name):
                return 0
            try:
                await client.drain_failed_events(persist)
            finally:
                await locks.unlock_failed_list(conn, corp.name)
        return written
