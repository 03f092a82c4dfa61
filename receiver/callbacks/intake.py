"""Durable intake: verified callbacks are committed to the inbox, in shared transactions, before they are answered.

Callbacks that arrive while a commit is in flight wait and go together in the next one (group commit),
so durability costs one round trip per group rather than per callback. A callback is answered only
after the transaction that holds it has committed; if the database cannot commit, ``submit`` raises
``StoreUnavailable`` and the route answers 503 so the platform retries.

A group is one INSERT statement, which PostgreSQL runs as its own transaction: it has committed (and,
with ``synchronous_commit`` on, reached the WAL on disk) before its result comes back, so no BEGIN or
COMMIT round trip is needed. The connections stay with the intake between groups: handing one back to
the pool costs another round trip (asyncpg's reset query).

A group is one ``insert_inbox_rows`` statement (groups are no larger than its ROWS_PER_STATEMENT). A row that
PostgreSQL cannot hold (a body or message that is not UTF-8, or holds a NUL) fails its group's statement with
``DataError``; the group is then committed one row at a time, so that only the request that brought the bad
row is refused (400), and the others are stored as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import NamedTuple

import asyncpg

from handlers.errors import MalformedMessage, StoreUnavailable
from handlers.store.inbox import (
    ROWS_PER_STATEMENT,
    InboxRecord,
    InboxValues,
    ensure_streams,
    inbox_values,
    insert_inbox_rows,
)
from handlers.store.pool import DB_ERRORS
from receiver.errors import EnvelopeError, rejection
from receiver.ops.metrics import Metrics

log = logging.getLogger("corpsync.intake")

__all__ = ["InboxRecord", "Intake"]


class _Pending(NamedTuple):
    stream: str
    dedupe_key: str
    row: InboxValues
    future: asyncio.Future[bool]


def _unavailable(exc: BaseException, requests: int) -> list[StoreUnavailable]:
    """Log a failed commit once; one exception for each request it refuses (503)."""
    log.warning("inbox commit failed", extra={"action": "inbox_commit_failed", "error": type(exc).__name__})
    return [StoreUnavailable("the inbox could not commit") for _ in range(requests)]


class Intake:
    """Group-committing writer of inbox rows. ``submit`` returns True for a new event, False for a duplicate."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        metrics: Metrics | None = None,
        max_batch: int = ROWS_PER_STATEMENT,
        max_in_flight: int = 2,
        timeout: float = 3.0,
        linger: float = 0.005,
        full_group: int = ROWS_PER_STATEMENT,
        on_commit: Callable[[frozenset[str]], None] | None = None,
    ) -> None:
        if max_batch > ROWS_PER_STATEMENT:  # a group must stay one statement: one implicit transaction
            raise ValueError(f"max_batch must be at most {ROWS_PER_STATEMENT}")
        self._pool = pool
        # A group waits up to ``linger`` for more callbacks, or until ``full_group`` are waiting: fewer
        # synchronous commits at steady rates, no wait under heavy load. Groups stay small (``max_batch``) so
        # some commit while the server parses the others, instead of server and database idling in turn.
        # At most ``max_in_flight`` groups are at the database at once: each busy backend takes a core from
        # the server, and one stream's groups commit one after the other anyway (inbox_insert_rows' lock).
        self._linger = linger
        self._full_group = full_group
        self._full = asyncio.Event()
        self._metrics = metrics
        self._max_batch = max_batch
        self._slots = asyncio.Semaphore(max_in_flight)
        self._timeout = timeout
        self._on_commit = on_commit
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._known_streams: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._idle: list[asyncpg.Connection] = []  # held between groups; at most max_in_flight

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="corpsync-intake")

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        while self._pending or self._tasks:
            self._wakeup.set()
            await asyncio.sleep(0.005)
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):  # the pool may be closed already
                await self._pool.release(conn)

    def submit(self, record: InboxRecord) -> asyncio.Future[bool]:
        """Queue ``record``; the future is True once it is committed, False for a duplicate.

        Raises EnvelopeError at once for a record whose query cannot be written (see ``inbox_values``); the future
        raises EnvelopeError for one whose text PostgreSQL refuses, StoreUnavailable if the database cannot commit.
        """
        if self._runner is None:
            raise StoreUnavailable("intake is not running")
        try:
            row = inbox_values(record)
        except MalformedMessage as exc:
            raise rejection(exc) from exc
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(record.stream, record.dedupe_key, row, future))
        self._wakeup.set()
        if len(self._pending) >= self._full_group:
            self._full.set()
        return future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            if self._linger and len(self._pending) < self._full_group:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._linger)
            self._full.clear()
            self._wakeup.clear()
            while self._pending:
                await self._slots.acquire()
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                task = asyncio.create_task(self._flush(batch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[_Pending]) -> None:
        try:
            try:
                outcome: list[bool | BaseException] = list(await self._commit(batch))
            except asyncpg.DataError:  # some row's text cannot be stored: find it, store the others
                outcome = [await self._commit_alone(p) for p in batch]
        except DB_ERRORS as exc:
            outcome = list(_unavailable(exc, len(batch)))
        finally:
            self._slots.release()
        if self._metrics is not None:
            self._metrics.inbox_batch.observe(len(batch))
        for pending, result in zip(batch, outcome, strict=True):
            if pending.future.done():
                continue
            if isinstance(result, BaseException):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)
        if self._on_commit is not None and any(result is True for result in outcome):
            self._on_commit(frozenset(p.stream for p, result in zip(batch, outcome, strict=True) if result is True))

    async def _commit_alone(self, pending: _Pending) -> bool | BaseException:
        """Commit one row of a group that failed as a whole; the exception its request raises, if it fails."""
        try:
            (inserted,) = await self._commit([pending])
        except asyncpg.DataError as exc:
            log.info("callback not storable", extra={"action": "inbox_row_refused", "error": type(exc).__name__})
            return EnvelopeError("the callback holds text the inbox cannot store")
        except DB_ERRORS as exc:
            (refused,) = _unavailable(exc, 1)
            return refused
        return inserted

    async def _commit(self, batch: list[_Pending]) -> list[bool]:
        """Insert one group; for each record, whether it was new (a repeat within the group is a duplicate).

        Every wait is bounded by ``timeout`` (asyncpg's own timers: no task per group, as ``wait_for`` makes).
        """
        first: dict[tuple[str, str], int] = {}
        for i, p in enumerate(batch):
            first.setdefault((p.stream, p.dedupe_key), i)
        unique = [batch[i] for i in first.values()]
        new_streams = sorted({p.stream for p in unique} - self._known_streams)
        rows = [p.row for p in unique]
        timeout = self._timeout
        conn = self._idle.pop() if self._idle else await self._pool.acquire(timeout=timeout)
        try:
            if new_streams:
                async with conn.transaction():
                    await ensure_streams(conn, new_streams, timeout=timeout)
                    inserted = await insert_inbox_rows(conn, rows, timeout=timeout)
            else:  # one statement, one implicit transaction, committed when it returns
                inserted = await insert_inbox_rows(conn, rows, timeout=timeout)
        except BaseException:
            with contextlib.suppress(Exception):  # a broken connection fails its reset and is closed
                await self._pool.release(conn)
            raise
        self._idle.append(conn)
        self._known_streams.update(new_streams)
        stored = {(row["stream"], row["dedupe_key"]) for row in inserted}
        return [first[key] == i and key in stored for i, key in enumerate((p.stream, p.dedupe_key) for p in batch)]
