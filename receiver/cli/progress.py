"""A terminal progress bar for ``corpsync sync`` (nothing is drawn when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Called as ``progress(stage, done, total)`` by the platform clients; redraws at most 10 times a second."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self._stream = stream or sys.stderr
        self._width = width
        self._last = 0.0
        self._drawn = False

    @property
    def enabled(self) -> bool:
        return self._stream.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        filled = self._width * done // total if total else 0
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\r{stage:<14} [{bar}] {done}/{total}   ")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
