"""LISTEN on the feed's channel: every committed batch of changes wakes whoever waits for one.

One connection per process, of its own (not the pool's: a pool resets a connection's listeners when it takes it
back), made by ``handlers.store.pool.connect`` like every other, for the watch's life. A lost connection costs only
speed: the waiters look again at least every ``POLL`` seconds anyway (an aborted transaction that held the horizon
back sends no notification either).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from handlers.errors import StoreUnavailable
from handlers.feed import CHANNEL
from handlers.store import pool as db

log = logging.getLogger("corpsync.feed")

POLL = 1.0  # seconds a waiter sleeps at most between looks without a notification
LISTEN_ERRORS: tuple[type[BaseException], ...] = (StoreUnavailable, *db.DB_ERRORS)


class ChangeWatch:
    """Wakes waiters (``wait``) and listeners (``on_change``) when changes are committed."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: asyncpg.Connection | None = None  # its own connection: a pool's would be reset under it
        self._event = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []
        self.last_id: int | None = None  # the newest change id notified

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        try:
            self._conn = await db.connect(self._url)
            await self._conn.add_listener(CHANNEL, self._notified)
        except LISTEN_ERRORS as exc:
            log.warning("feed listen failed", extra={"action": "feed_listen_failed", "error": type(exc).__name__})
            await self.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close(timeout=5)
            except db.DB_ERRORS:
                conn.terminate()

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        if payload.isdigit():
            self.last_id = max(self.last_id or 0, int(payload))
        self.wake()

    def wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()
        for listener in self._listeners:
            listener()

    def ticket(self) -> asyncio.Event:
        """Take before looking: ``wait(ticket)`` then returns at once if a notification came in between."""
        return self._event

    async def wait(self, seconds: float, ticket: asyncio.Event | None = None) -> None:
        """Until the next notification (since ``ticket`` was taken), or ``min(seconds, POLL)`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for((ticket or self._event).wait(), timeout=max(0.0, min(seconds, POLL)))
