"""Per-test databases cloned ahead and dropped behind, off the tests' critical path.

Cloning the migrated template takes ~0.15 s and dropping a clone ~0.1 s, and some 750 tests take one: done inline
that is minutes of every run spent waiting on PostgreSQL. A background thread keeps ``ahead`` clones ready and drops
the used ones while the next tests run.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import uuid
from collections.abc import Callable

import asyncpg


class Clones:
    """Clones of ``template`` on the server at ``admin_url``: ``take`` one, ``give_back`` it when done."""

    def __init__(self, admin_url: str, template: str, name_url: Callable[[str], str], *, ahead: int = 2) -> None:
        self._admin_url = admin_url
        self._template = template
        self._name_url = name_url
        self._ahead = ahead
        self._ready: collections.deque[str] = collections.deque()
        self._drops: collections.deque[str] = collections.deque()
        self._failure: BaseException | None = None
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="test-databases", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """The URL of a fresh clone of the template (waits for one)."""
        with self._cond:
            self._cond.notify_all()
            while not self._ready:
                if self._failure is not None:
                    raise RuntimeError(f"could not clone the template database: {self._failure}") from self._failure
                if not self._cond.wait(timeout=120):
                    raise TimeoutError("no template clone within 120 s")
            name = self._ready.popleft()
            self._cond.notify_all()
        return self._name_url(name)

    def give_back(self, url: str) -> None:
        """Drop the clone behind ``url`` (in the background, terminating whatever still uses it)."""
        with self._cond:
            self._drops.append(url.rsplit("/", 1)[1].split("?", 1)[0])
            self._cond.notify_all()

    def close(self) -> None:
        """Drop every clone, ready or used, and stop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=300)

    def _next(self) -> tuple[str, str] | None:
        """The next job: ("drop", name), ("create", name), or None to stop."""
        with self._cond:
            while True:
                if self._drops:
                    return "drop", self._drops.popleft()
                if self._closing:
                    if self._ready:
                        return "drop", self._ready.popleft()
                    return None
                if self._failure is None and len(self._ready) < self._ahead:
                    return "create", f"corpsync_t_{uuid.uuid4().hex[:12]}"
                self._cond.wait()

    def _run(self) -> None:
        asyncio.run(self._work())

    async def _work(self) -> None:
        conn: asyncpg.Connection | None = None
        try:
            while (job := await asyncio.to_thread(self._next)) is not None:
                verb, name = job
                try:
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self._admin_url)
                    if verb == "create":
                        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
                    else:
                        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    if verb == "create":  # a clone that could not be made fails the tests that wait for one
                        with self._cond:
                            self._failure = exc
                            self._cond.notify_all()
                    continue
                if verb == "create":
                    with self._cond:
                        self._ready.append(name)
                        self._cond.notify_all()
        finally:
            if conn is not None:
                await conn.close()
