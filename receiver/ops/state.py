"""What ``/readyz`` and ``/metrics`` read of the database for each inbox stream: its corp's last full sync and its
pending inbox; and for ``/metrics`` the full sync runs of every corp. Shared by every process on the database, so
read at request or scrape time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handlers.store.rows import from_columns


@dataclass(frozen=True, slots=True)
class StreamState:
    """An active corp, or an inbox stream of no active corp (``is_corp`` False), as the database has it now."""

    name: str
    is_corp: bool
    last_sync_status: str | None  # of the newest finished full sync; None: never
    last_sync_age: float | None  # seconds since it finished
    good_sync_age: float | None  # seconds since the newest succeeded or quarantined run finished
    pending: int
    oldest_pending_age: float | None  # seconds since the oldest pending event was received

    @classmethod
    def from_record(cls, row: Mapping[str, Any]) -> StreamState:
        return from_columns(cls, row)

    def inbox_json(self) -> dict[str, Any]:
        return {"pending": self.pending, "oldestPendingSeconds": _seconds(self.oldest_pending_age)}

    def corp_json(self) -> dict[str, Any]:
        last = None
        if self.last_sync_status is not None:
            last = {"status": self.last_sync_status, "ageSeconds": _seconds(self.last_sync_age)}
        return {"lastSync": last, "inbox": self.inbox_json()}


@dataclass(frozen=True, slots=True)
class SyncRunBucket:
    """Finished full syncs of one corp with one status whose duration fell in one bucket of the histogram."""

    name: str
    status: str
    bucket: int  # how many of the histogram's bounds are below these runs' duration
    runs: int
    seconds: float  # their durations, summed

    @classmethod
    def from_record(cls, row: Mapping[str, Any]) -> SyncRunBucket:
        return from_columns(cls, row)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(max(value, 0.0), 3)


@dataclass(frozen=True, slots=True)
class TableState:
    """A table that grows with traffic, for /metrics: its size, and the age of its oldest row."""

    name: str
    bytes: int | None  # None: not a table (inbox_payload)
    oldest_age: float | None  # seconds; None: empty, or not tracked

    @classmethod
    def from_record(cls, row: Mapping[str, Any]) -> TableState:
        return from_columns(cls, row)
