"""A clock the test moves by hand, for whatever takes a ``clock: Callable[[], float]``."""

from __future__ import annotations


class FakeClock:
    """Seconds as a monotonic clock would answer them; it only moves when the test sets ``now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
