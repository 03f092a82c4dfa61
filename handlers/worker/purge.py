"""The retention purge: applied inbox rows lose their payloads, then old inbox, change_log and sync_runs rows go.

Runs beside the worker (one process at a time, under PURGE_LOCK) and from ``corpsync purge``. Each batch is one
short transaction of at most ``batch_size`` rows, with a pause between batches, so the intake's commits never
queue long behind it (bench/soak.py measures that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from handlers.store import locks, retention
from handlers.store.pool import DB_ERRORS
from handlers.worker.apply import describe_error

log = logging.getLogger("corpsync.purge")

# The kinds of purge, in the order a pass runs them, and what each does to its rows.
KINDS = ("inbox_payloads", "inbox", "change_log", "sync_runs")
DESCRIBE = {
    "inbox_payloads": "inbox payloads stripped",
    "inbox": "inbox rows deleted",
    "change_log": "change_log rows deleted",
    "sync_runs": "sync runs deleted",
}


@dataclass(frozen=True, slots=True)
class Retention:
    """How long rows are kept (None: forever), and how the purge paces itself."""

    payloads: timedelta | None = timedelta(days=7)  # an applied inbox row's raw body and plaintext
    inbox: timedelta | None = timedelta(days=30)  # a settled inbox row (done, ignored, dead)
    change_log: timedelta | None = timedelta(days=365)  # conservative: readers of the change feed may lag
    sync_runs: timedelta | None = timedelta(days=90)  # each corp's newest run and newest good run always stay
    interval: float = 60.0  # seconds between background passes; 0: no background purge
    batch_size: int = 1000
    pause: float = 0.02  # seconds between batches

    def period(self, kind: str) -> timedelta | None:
        periods = {
            "inbox_payloads": self.payloads,
            "inbox": self.inbox,
            "change_log": self.change_log,
            "sync_runs": self.sync_runs,
        }
        return periods[kind]


Pass = Callable[[asyncpg.Connection, datetime, int], Awaitable[retention.Batch]]
Count = Callable[[asyncpg.Connection, datetime], Awaitable[int]]

_PASSES: dict[str, Pass] = {
    "inbox_payloads": retention.strip_inbox_payloads,
    "inbox": retention.delete_inbox_rows,
    "change_log": retention.delete_change_log,
    "sync_runs": retention.delete_sync_runs,
}
_COUNTS: dict[str, Count] = {
    "inbox_payloads": retention.count_inbox_payloads,
    "inbox": retention.count_inbox_rows,
    "change_log": retention.count_change_log,
    "sync_runs": retention.count_sync_runs,
}


@dataclass
class PurgeReport:
    """Rows purged (or, in a dry run, due) per kind; ``skipped`` when another process held the purge."""

    counts: dict[str, int] = field(default_factory=dict)
    skipped: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Purger:
    """``purge()`` once (the CLI, tests), or ``run(stop)`` in the background every ``interval`` seconds."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Retention | None = None,
        *,
        on_purged: Callable[[str, int], None] | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings or Retention()
        self.on_purged = on_purged

    async def purge(self, *, dry_run: bool = False, stop: asyncio.Event | None = None) -> PurgeReport:
        """One pass over every kind with a retention: batches until nothing more is due (or ``stop`` is set).
        ``dry_run`` counts what is due and changes nothing."""
        report = PurgeReport()
        async with self.pool.acquire() as conn:
            if not await locks.try_lock_purge(conn):
                report.skipped = True
                return report
            try:
                now = await retention.database_clock(conn)
                for kind in KINDS:
                    period = self.settings.period(kind)
                    if period is None:
                        continue
                    cutoff = now - period
                    if dry_run:
                        report.counts[kind] = await _COUNTS[kind](conn, cutoff)
                    else:
                        report.counts[kind] = await self._purge_kind(conn, kind, cutoff, stop)
            finally:
                await locks.unlock_purge(conn)
        return report

    async def _purge_kind(
        self, conn: asyncpg.Connection, kind: str, cutoff: datetime, stop: asyncio.Event | None
    ) -> int:
        total = 0
        while stop is None or not stop.is_set():
            batch = await _PASSES[kind](conn, cutoff, self.settings.batch_size)
            total += batch.purged
            if batch.purged and self.on_purged is not None:
                self.on_purged(kind, batch.purged)
            if not batch.more:
                break
            await asyncio.sleep(self.settings.pause)
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Purge every ``interval`` seconds until ``stop`` is set; a database error waits for the next pass."""
        while not stop.is_set():
            try:
                report = await self.purge(stop=stop)
            except DB_ERRORS as exc:
                log.warning("purge failed", extra={"action": "purge_failed", "error": describe_error(exc)})
            else:
                if report.total:
                    log.info("old rows purged", extra={"action": "purge_done", **report.counts})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.interval)


@contextlib.asynccontextmanager
async def purging(purger: Purger) -> AsyncIterator[Purger]:
    """Run the background purge for the duration of the block (for ``app.cleanup_ctx``)."""
    stop = asyncio.Event()
    task = asyncio.create_task(purger.run(stop), name="corpsync-purge")
    try:
        yield purger
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
