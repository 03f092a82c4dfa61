"""A terminal progress bar for ``corpsync sync`` (nothing is drawn when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

# What each stage of a full sync counts (handlers.clients: Ticker stages), as the bar labels it.
LABELS = {
    "departments": ("departments", "departments found"),
    "members": ("member lists", "departments listed"),
}


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


class ProgressBar:
    """Called as ``progress(stage, done, total)`` by the platform clients; redraws at most 10 times a second.

    Each stage gets its own line, labelled with what it counts, with its rate and the time left at that rate; a
    line is ended when the next stage starts, and by ``close``.
    """

    def __init__(
        self, stream: TextIO | None = None, width: int = 30, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream or sys.stderr
        self._width = width
        self._clock = clock
        self._last = 0.0
        self._drawn = False
        self._stage: str | None = None
        self._started = 0.0

    @property
    def enabled(self) -> bool:
        return self._stream.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self._clock()
        if stage != self._stage:
            self.close()
            self._stage, self._started, self._last = stage, now, 0.0
        elif now - self._last < 0.1 and done < total:
            return
        self._last = now
        self._stream.write("\r" + self.line(stage, done, total, now - self._started) + "   ")
        self._stream.flush()
        self._drawn = True

    def line(self, stage: str, done: int, total: int, elapsed: float) -> str:
        """``member lists [#####-----] 120/400 departments listed  35.2/s  ETA 0:08``"""
        label, unit = LABELS.get(stage, (stage, "done"))
        filled = self._width * done // total if total else 0
        bar = "#" * filled + "-" * (self._width - filled)
        rate = done / elapsed if elapsed > 0 else 0.0
        if done >= total:
            eta = f"in {_clock(elapsed)}"
        elif rate > 0:
            eta = f"ETA {_clock((total - done) / rate)}"
        else:
            eta = "ETA -:--"
        return f"{label:<12} [{bar}] {done}/{total} {unit}  {rate:.1f}/s  {eta}"

    def close(self) -> None:
        """End the current line (the next output starts on a line of its own)."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False
