"""One stream's turn: own it, apply its due rows in order (a run of them in one transaction when they can
be), and count every failure as an attempt, dead-lettering the row after the last one."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from handlers.errors import MalformedMessage
from handlers.events import Services, Shared
from handlers.store import inbox
from handlers.store.inbox import InboxRow
from handlers.sync import drift
from handlers.worker.apply import SUITE_ROUTE, apply_row, corp_of, describe_error, prefetch
from handlers.worker.batch import apply_rows

log = logging.getLogger("corpsync.worker")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    concurrency: int = 8  # streams this process applies at once
    batch_size: int = 100  # pending rows read per query
    turn: int = 1000  # rows one drain applies before it lets other streams have the connection
    linger: float = 0.02  # seconds a drain that has caught up with its stream waits before it reads the next batch
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


class StreamApplier:
    """Drains streams for a worker: ``drain(stream)`` applies what is due on one of them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        services: Services,
        settings: WorkerSettings,
        events: EventObserver | None,
        stopping: Callable[[], bool],
        on_instruction: Callable[[str], None] | None = None,
    ) -> None:
        self.pool = pool
        self.services = services
        self.settings = settings
        self.events = events
        self.stopping = stopping
        self.on_instruction = on_instruction  # told the type of each suite instruction applied, once committed

    async def drain(self, stream: str, *, linger: float = 0.0) -> int | None:
        """Own the stream, apply its due rows in id order; return how many were settled (done/ignored/dead),
        or None when another connection owns the stream.

        ``linger``: after a batch shorter than ``batch_size`` (the drain has caught up with the intake) wait this
        long before reading the next one, so that it gathers several intake commits' rows instead of one's: a
        batch's statements cost about the same for 5 rows as for 100."""
        settled = 0
        shared = Shared()
        async with self.pool.acquire() as conn:  # released as soon as the drain ends: the pool's reset frees the stream
            if not await inbox.own_stream(conn, stream, self.settings.async_commit):
                return None
            after = 0  # rows up to here were settled by this drain
            while settled < self.settings.turn and not self.stopping():
                records = await inbox.pending_rows(conn, stream, self.settings.batch_size, after)
                due = list(itertools.takewhile(lambda r: r.due, records))
                if not due:
                    break
                await self._prefetch(conn, due, shared)
                applied, blocked = await self._apply_rows(conn, due, shared)
                settled += applied
                if blocked or len(due) < len(records):
                    break
                after = due[-1].id
                if linger and len(records) < self.settings.batch_size:
                    await asyncio.sleep(linger)
        return settled

    async def _prefetch(self, conn: asyncpg.Connection, rows: list[InboxRow], shared: Shared) -> None:
        """Read ahead what the rows will read; a failure here is nobody's attempt yet, so it is only logged:
        each row then reads for itself, and its failure counts against it (and dead-letters it in the end)."""
        try:
            await prefetch(conn, rows, self.services, shared)
        except Exception as exc:
            log.info(
                "prefetch failed",
                extra={"action": "worker_prefetch_failed", "stream": rows[0].stream, "error": describe_error(exc)},
            )

    async def _apply_rows(self, conn: asyncpg.Connection, rows: list[InboxRow], shared: Shared) -> tuple[int, bool]:
        """Apply rows in order: together in one transaction when they can be, else one by one.
        Returns (settled, blocked): blocked when a row failed and must be retried before the rest."""
        together = [r for r in itertools.takewhile(lambda r: r.route != SUITE_ROUTE, rows)]
        if len(together) > 1 and await self._apply_together(conn, together, shared):
            return len(together), False
        settled = 0
        for row in rows:
            if self.stopping():
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
                outcomes = await apply_rows(conn, rows, self.services, shared)
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
        if self.on_instruction is not None and row.route == SUITE_ROUTE and applied.event_type is not None:
            self.on_instruction(applied.event_type)
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
