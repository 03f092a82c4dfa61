"""``App``: a JitAI app dir opened for the synchronous facade, and ``getElement`` of its corps.

The App reads the app dir and the ``CORPSYNC_*`` settings as ``corpsync serve`` does (the embedded PostgreSQL
under ``<app dir>/.corpsync/`` when no database URL is set), and runs a ``receiver.runtime.Runtime`` on its own
event loop in a background thread: its platform calls share one set of rate limiters, and tokens are shared
with every other process through the database. It does not receive callbacks: ``corpsync serve`` does that.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import asyncpg

from handlers.api import Corp, get_agent_id
from handlers.config import AppConfig
from handlers.errors import InvalidInput, UnknownCorp
from receiver.appdir import load_app_dir
from receiver.embedded import EmbeddedPostgres, start_embedded
from receiver.jitai.elements import ELEMENTS, CorpElement, DDInnerCorp, QywxInnerCorp, QywxProxyCorp
from receiver.jitai.errors import JitaiError
from receiver.jitai.importer import install_type_modules
from receiver.jitai.registry import closed, opened
from receiver.jitai.runner import LoopThread
from receiver.runtime import Runtime, open_runtime
from receiver.settings import settings_from_env

T = TypeVar("T")
POOL_MAX = 10  # connections one App holds at most (threads calling at once share them; a sync takes two)


class App:
    """A JitAI app dir, opened: ``with App("myapp") as app: app.getElement("corps.HQ").getMembers()``.

    ``app_dir`` defaults to ``CORPSYNC_APP_DIR`` (else ``.``), ``database_url`` to ``CORPSYNC_DATABASE_URL`` (else
    the embedded PostgreSQL, started here and stopped by ``close()``). A fault in the app dir raises
    ``ConfigError`` naming the file and key. Every method waits for its answer; do not call them from a
    running event loop (use the async API there).
    """

    def __init__(self, app_dir: str | os.PathLike[str] | None = None, *, database_url: str | None = None) -> None:
        settings = settings_from_env()
        root = Path(app_dir) if app_dir is not None else settings.app_dir
        self.config: AppConfig = load_app_dir(root, os.environ)
        url = database_url or settings.database_url
        self._embedded: EmbeddedPostgres | None = None
        if url is None:
            self._embedded = start_embedded(root)
            url = self._embedded.url
        self._stack = contextlib.AsyncExitStack()
        self._loop = LoopThread()
        self._closed = False
        try:
            self.runtime: Runtime = self._loop.run(self._open(url))
        except BaseException as exc:
            self._loop.stop()
            if self._embedded is not None:
                self._embedded.stop()
            if isinstance(exc, OSError | asyncpg.PostgresError | asyncpg.InterfaceError):
                raise JitaiError(f"cannot open the database: {type(exc).__name__}: {exc}") from None
            raise
        atexit.register(self.close)  # an App left open still stops its embedded database on the way out
        install_type_modules({"corps.QywxInnerType": QywxInnerCorp, "corps.QywxProxyType": QywxProxyCorp,
                              "corps.DDInnerType": DDInnerCorp})  # fmt: skip
        opened(self)

    async def _open(self, url: str) -> Runtime:
        return await self._stack.enter_async_context(open_runtime(url, self.config, min_size=1, max_size=POOL_MAX))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of the async API on the App's loop and wait for its answer."""
        if self._closed:
            coro.close()
            raise JitaiError("receiver.jitai: the App is closed")
        return self._loop.run(coro)

    def getElement(self, fullName: object) -> CorpElement:  # noqa: N802, N803 - JitAI's names
        """``corps.<Name>``: the corp element of that name (a suite tenant too: ``corps.<Auth>/<corpId>``).

        A corp never synced gets its first sync now, as JitAI runs initCorp when an element is created.
        """
        if not isinstance(fullName, str):
            raise InvalidInput("fullName", f"must be a string like 'corps.<Name>', got {type(fullName).__name__}")
        kind, _, name = fullName.partition(".")
        if kind != "corps" or not name:
            raise JitaiError(f"{fullName!r}: corpsync serves corps elements only, named 'corps.<Name>'")
        corp = self.run(self._corp(name))
        element = ELEMENTS[corp.config.type.value](self, corp)
        if self.run(corp.last_sync_run_id()) == 0:
            element.initCorp()
        return element

    async def _corp(self, name: str) -> Corp:
        try:
            return await self.runtime.corp(name)
        except UnknownCorp:
            known = ", ".join(f"corps.{n}" for n in sorted(self.config.corps)) or "none"
            raise UnknownCorp(f"no element corps.{name} in {self.config.root} (corps: {known})") from None

    def agent_id(self, corp_id: str, suite_id: str) -> str | None:
        return self.run(get_agent_id(self.runtime.pool, self.config, corp_id, suite_id))

    def close(self) -> None:
        """Close the database pool and HTTP session, stop the loop thread and the embedded database."""
        if self._closed:
            return
        closed(self)
        atexit.unregister(self.close)
        try:
            self._loop.run(self._stack.aclose())
        finally:
            self._closed = True
            self._loop.stop()
            if self._embedded is not None:
                self._embedded.stop()

    def __enter__(self) -> App:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<App {self.config.root}{' (closed)' if self._closed else ''}>"
