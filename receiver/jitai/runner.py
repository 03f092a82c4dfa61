"""The event loop the synchronous facade runs the async API on: its own, in a background thread.

A call from a thread whose event loop is running is refused: waiting there for the answer would stall that
loop (and every task on it) for as long as the call takes, a full sync included.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from receiver.jitai.errors import JitaiError

T = TypeVar("T")


class LoopThread:
    """An asyncio loop running in a daemon thread until ``stop()``; ``run(coro)`` waits for a coroutine on it."""

    def __init__(self, name: str = "corpsync-jitai") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result (or raise its exception) in the calling thread."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise JitaiError("receiver.jitai: called from its own event loop; await the async API there instead")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise JitaiError(
                "receiver.jitai is synchronous and would block this thread's running event loop: in async code "
                "use the async API (receiver.runtime / handlers.api.Corp), or call this through asyncio.to_thread"
            )
        if not self.running:
            coro.close()
            raise JitaiError("receiver.jitai: the App is closed")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.running:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
