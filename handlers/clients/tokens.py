"""Access tokens cached in the ``credentials`` table, so every process of a deployment shares one token.

A token is renewed early (10 min before expiry, or a quarter of its lifetime for short ones), and at
most once per rejection: ``refresh(stale)`` renews only if nobody replaced the rejected value already.
Renewals are serialized across processes by an advisory lock on the credential's key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from handlers.clients.observe import ClientObserver
from handlers.store.credentials import Credential, Db, load_credential, store_credential, utcnow
from handlers.store.locks import lock_credential

TokenFetch = Callable[[], Awaitable[tuple[str, float]]]  # () -> (token, expires_in seconds)
EARLY = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class TokenSpec:
    key: str  # the credentials key (see handlers.store.credentials)
    kind: str  # for metrics: wecom_app | wecom_contact | wecom_suite | wecom_corp | dingtalk
    fetch: TokenFetch


def _margin(cred: Credential) -> timedelta:
    if cred.expires_at is None:
        return timedelta(0)
    return min(EARLY, (cred.expires_at - cred.updated_at) / 4)


class Token:
    """One token: ``get()`` for a call, ``refresh(stale)`` when the platform rejected ``stale``."""

    def __init__(
        self, spec: TokenSpec, pool: Db, observer: ClientObserver, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.spec = spec
        self._pool = pool
        self._observer = observer
        self._clock = clock
        self._lock = asyncio.Lock()
        self._mem: Credential | None = None

    def _usable(self, cred: Credential | None, stale: str | None = None) -> bool:
        return cred is not None and cred.value != stale and cred.fresh(self._clock(), _margin(cred))

    async def get(self) -> str:
        if self._mem is not None and self._usable(self._mem):
            return self._mem.value
        async with self._lock:
            if self._mem is not None and self._usable(self._mem):
                return self._mem.value
            cred = await load_credential(self._pool, self.spec.key)
            if cred is not None and self._usable(cred):
                self._mem = cred
                return cred.value
            return await self._renew(stale=None)

    async def refresh(self, stale: str) -> str:
        async with self._lock:
            if self._mem is not None and self._usable(self._mem, stale):
                return self._mem.value
            return await self._renew(stale=stale)

    async def _renew(self, stale: str | None) -> str:
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_credential(conn, self.spec.key)
            cred = await load_credential(conn, self.spec.key)
            if cred is not None and self._usable(cred, stale):  # another process renewed it meanwhile
                self._mem = cred
                return cred.value
            value, expires_in = await self.spec.fetch()
            now = self._clock()
            cred = Credential(value, now + timedelta(seconds=max(0.0, expires_in)), now)
            await store_credential(conn, self.spec.key, value, cred.expires_at)
        self._mem = cred
        self._observer.on_token_refresh(self.spec.kind)
        return value


class TokenSource(Protocol):
    """What a call needs of a token: the current value, and a renewal after a rejection."""

    async def get(self) -> str: ...

    async def refresh(self, stale: str) -> str: ...
