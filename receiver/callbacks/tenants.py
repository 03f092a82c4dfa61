"""The suite tenants authorized at run time, kept in memory for the data URL's receive-id check.

``Callbacks.suite_data`` accepts a 代开发 callback only from a corp that authorized the suite and did not cancel it
(``suite_tenants``). Asking the store on every callback made each answer wait for a pool connection and a round
trip; ``ActiveTenants`` answers from memory:

- the set of every active tenant, read in one query: at the first callback, whenever this process applied an
  instruction that changes it (``changed``), and once it is older than ``max_age`` (changes other processes
  applied), each time in the background, never while a callback waits;
- a corp not in that set (authorized since, through another process) is looked up in the store, as before; a
  yes is kept for ``ttl`` seconds, a no is not kept.

A cancel_auth applied here makes the set stale at once (the store answers until it is read again); one applied
by another process is seen within ``max_age`` (and ``ttl``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from handlers.store.credentials import Db, active_tenant_ids, is_active_tenant

log = logging.getLogger("corpsync.callbacks")

Key = tuple[str, str]  # (suite auth name, tenant corpid)


class ActiveTenants:
    """``is_active(auth, corp_id)``: the answer of ``handlers.store.credentials.is_active_tenant``, from memory when
    it can be. ``changed(removed=...)`` after this process applied a suite instruction; ``close`` at shutdown."""

    def __init__(
        self,
        db: Db,
        auth_names: Iterable[str],
        *,
        ttl: float = 30.0,
        max_age: float = 30.0,
        gap: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._auths = sorted(auth_names)
        self._ttl = ttl
        self._max_age = max_age
        self._gap = gap  # the least time between two reads of the set
        self._clock = clock
        self._known: frozenset[Key] = frozenset()
        self._read_at: float | None = None  # when ``_known`` was read; None: never, or stale
        self._yes: dict[Key, float] = {}  # the store's yes → until when it holds
        self._generation = 0  # bumped when a tenant may have gone: reads begun before then are not kept
        self._reading: asyncio.Task[None] | None = None
        self._again = False
        self._next_read = 0.0

    async def is_active(self, auth_name: str, corp_id: str) -> bool:
        key = (auth_name, corp_id)
        now = self._clock()
        if self._read_at is None or now - self._read_at > self._max_age:
            self._read_soon(now)
        if self._read_at is not None and key in self._known:
            return True
        until = self._yes.get(key)
        if until is not None and until > now:
            return True
        generation = self._generation
        active = await is_active_tenant(self._db, auth_name, corp_id)
        if active and generation == self._generation:
            self._yes[key] = now + self._ttl
        return active

    def changed(self, *, removed: bool) -> None:
        """This process applied an instruction that adds tenants, or (``removed``) may have taken one away: read
        the set again; a removal also stops every answer from memory until then."""
        if removed:
            self._generation += 1
            self._read_at = None
            self._yes.clear()
        self._again = True
        self._read_soon(self._clock())

    async def close(self) -> None:
        reading, self._reading = self._reading, None
        if reading is not None:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading

    def _read_soon(self, now: float) -> None:
        """Read the set in the background, at once or as soon as ``gap`` allows (unless a read is under way)."""
        if self._reading is None:
            delay = max(0.0, self._next_read - now)
            self._reading = asyncio.create_task(self._read(delay), name="corpsync-active-tenants")

    async def _read(self, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            while True:
                self._again = False
                generation, started = self._generation, self._clock()
                self._next_read = started + self._gap
                try:
                    known = await active_tenant_ids(self._db, self._auths)
                except Exception as exc:  # the store is away: answers keep asking it, and a later one reads again
                    log.warning("tenants not read", extra={"action": "tenants_read_failed", "error": repr(exc)})
                    return
                if generation == self._generation:
                    self._known, self._read_at = known, started
                    self._yes = {k: until for k, until in self._yes.items() if k not in known}
                if not self._again and generation == self._generation:
                    return
                await asyncio.sleep(max(0.0, self._next_read - self._clock()))
        finally:
            if self._reading is asyncio.current_task():
                self._reading = None
