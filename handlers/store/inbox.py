"""The inbox: what every writer (the intake, replay, drift recovery) stores per callback, the statement that
stores a group of them (``insert_inbox_rows``), and the worker's side: due streams, pending rows, marks.

A group travels as nine parameters a row, each encoded by asyncpg on its own: far cheaper for asyncpg than
one array of a composite type. The raw body and the decrypted message are stored as the bytes they arrived
as: PostgreSQL turns them into text. What it cannot hold as text (bytes that are not UTF-8, a NUL character;
in the other fields a lone surrogate, which has no UTF-8) fails the statement that carries it with
``asyncpg.DataError``; the intake then stores the rest of the group without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import chain
from typing import Any, NamedTuple

import asyncpg
import orjson

from handlers.errors import MalformedMessage
from handlers.store.locks import INBOX_INSERT_LOCK, STREAM_LOCK, holds_session_state
from handlers.store.pool import Db, Row
from handlers.store.queries import q
from handlers.store.rows import from_columns

__all__ = [
    "ROWS_PER_STATEMENT",
    "InboxRecord",
    "InboxRow",
    "InboxValues",
    "inbox_values",
    "inbox_values_of",
    "insert_inbox_rows",
]

# Rows per INSERT: the intake's largest group. Each size is its own prepared statement (asyncpg keeps them per
# connection), so larger writes go in statements of this size, one transaction for them all.
ROWS_PER_STATEMENT = 16


class InboxRecord(NamedTuple):
    stream: str  # ordering key: the corp's name (or the suite auth's, for instruction events)
    platform: str
    route: str
    corp: int | None
    dedupe_key: str
    event_type: str | None
    query: dict[str, str]
    body: bytes  # the raw request body
    plaintext: bytes  # the decrypted message


# The parameters of one row of insert_inbox_rows: the fields of InboxRecord, the query as JSON text.
InboxValues = tuple[str, str, str, int | None, str, str | None, str, bytes, bytes]


def inbox_values(record: InboxRecord) -> InboxValues:
    """The parameters that store ``record``; MalformedMessage if its query cannot be written as JSON."""
    try:
        query = orjson.dumps(record.query).decode()
    except orjson.JSONEncodeError as exc:  # a value that is not text, or text with a lone surrogate
        raise MalformedMessage("the query cannot be stored") from exc
    return (
        record.stream,
        record.platform,
        record.route,
        record.corp,
        record.dedupe_key,
        record.event_type,
        query,
        record.body,
        record.plaintext,
    )


def inbox_values_of(records: Iterable[InboxRecord]) -> list[InboxValues]:
    """The parameters of ``records``, for ``insert_inbox_rows``."""
    return [inbox_values(r) for r in records]


_TYPES = ("text", "text", "text", "bigint", "text", "text", "text", "bytea", "bytea")  # an InboxValues' fields


def _values_row(row: int) -> str:
    """The VALUES row of the ``row``-th InboxValues (from 0) of a statement; $1 is the lock key."""
    first = row * len(_TYPES) + 2
    return "(" + ", ".join(f"${first + i}::{kind}" for i, kind in enumerate(_TYPES)) + ")"


@cache
def insert_sql(rows: int) -> str:
    """The ``inbox_insert_rows`` statement for ``rows`` rows (parameters $2..$10 the first row, and so on)."""
    sql = q("inbox_insert_rows")
    if _values_row(0) not in sql:
        raise RuntimeError("inbox_insert_rows no longer holds the VALUES row insert_sql repeats")
    return sql.replace(_values_row(0), ", ".join(_values_row(row) for row in range(rows)))


async def insert_inbox_rows(
    conn: asyncpg.Connection,
    rows: Sequence[InboxValues],
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - each statement's own bound, kept by asyncpg's timers
) -> list[asyncpg.Record]:
    """Store ``rows``, skipping duplicates (same stream and dedupe key); (id, stream, dedupe_key) of each new one.

    Up to ROWS_PER_STATEMENT rows are one statement, so one implicit transaction when ``conn`` is not in one.
    More are several statements in a transaction of their own (a savepoint when ``conn`` is in one), the rows
    sorted by stream first (stable: a stream's rows keep their order), so that the statements take the
    streams' locks in one order and two such writes cannot deadlock. Raises asyncpg.DataError if a row holds
    text PostgreSQL cannot store: nothing of that transaction (or savepoint) is stored then.
    """
    if len(rows) <= ROWS_PER_STATEMENT:
        if not rows:
            return []
        inserted: list[asyncpg.Record] = await conn.fetch(
            insert_sql(len(rows)), INBOX_INSERT_LOCK, *chain.from_iterable(rows), timeout=timeout
        )
        return inserted
    ordered = sorted(rows, key=lambda row: row[0])
    async with conn.transaction():
        found: list[asyncpg.Record] = []
        for start in range(0, len(ordered), ROWS_PER_STATEMENT):
            found += await insert_inbox_rows(conn, ordered[start : start + ROWS_PER_STATEMENT], timeout=timeout)
        return found


async def ensure_streams(
    conn: asyncpg.Connection,
    streams: list[str],
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - the statement's own bound, kept by asyncpg's timers
) -> None:
    """Register inbox streams (the worker and the readiness probe find pending rows through them)."""
    await conn.execute(q("inbox_ensure_streams"), streams, timeout=timeout)


# -- the worker's side ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboxRow:
    """A pending inbox row, as the worker reads it (``pending_rows``)."""

    id: int
    stream: str
    platform: str
    route: str
    corp: int | None
    event_type: str | None
    plaintext: str
    attempts: int
    next_attempt_at: datetime
    due: bool  # it may be tried now (its next attempt is not in the future)

    @classmethod
    def from_record(cls, row: Mapping[str, Any]) -> InboxRow:
        return from_columns(cls, row)


async def pending_rows(conn: asyncpg.Connection, stream: str, limit: int, after: int) -> list[InboxRow]:
    """Up to ``limit`` pending rows of ``stream`` with ids above ``after``, in id order."""
    return [InboxRow.from_record(r) for r in await conn.fetch(q("worker_batch"), stream, limit, after)]


async def adopt_streams(conn: asyncpg.Connection) -> None:
    """Register the streams of pending rows some other writer did not register."""
    await conn.execute(q("worker_adopt_streams"))


async def due_streams(db: Db, limit: int) -> list[Row]:
    """Streams with pending rows, soonest first: (stream, due, wait_seconds until the head may be tried)."""
    rows: list[Row] = await db.fetch(q("worker_due_streams"), limit)
    return rows


async def mark_done(conn: asyncpg.Connection, row_id: int, outcome: str, event_type: str | None) -> float | None:
    """Settle a pending row; seconds since it was received, or None when it was no longer pending."""
    marked = await conn.fetchrow(q("worker_mark_done"), row_id, outcome, event_type)
    return None if marked is None else float(marked["waited"])


async def mark_done_many(
    conn: asyncpg.Connection, row_ids: list[int], outcomes: list[str], event_types: list[str | None]
) -> dict[int, float]:
    """Settle pending rows (the lists aligned); seconds since each was received, by id, of those still pending."""
    marked = await conn.fetch(q("worker_mark_done_many"), row_ids, outcomes, event_types)
    return {r["id"]: r["waited"] for r in marked}


async def mark_failed(
    conn: asyncpg.Connection, row_id: int, error: str, max_attempts: int, delay: float, permanent: bool
) -> str | None:
    """Count a failed attempt: the row's status after it ('pending' or 'dead'), None when it was not pending."""
    marked = await conn.fetchrow(q("worker_mark_failed"), row_id, error, max_attempts, delay, permanent)
    return None if marked is None else str(marked["status"])


async def own_stream(conn: asyncpg.Connection, stream: str, asynchronous: bool) -> bool:
    """Own the inbox stream on this pooled connection, its commits asynchronous when ``asynchronous``, in one round
    trip; False when another connection owns the stream. Both hold until the connection goes back to the pool, whose
    reset gives them up: release it as soon as the drain ends."""
    holds_session_state(conn)
    owned: bool = await conn.fetchval(q("worker_own_stream"), STREAM_LOCK, stream, asynchronous)
    return owned


async def commit_synchronously(conn: asyncpg.Connection) -> None:
    """For the rest of the transaction: its commit waits for the WAL on disk."""
    await conn.execute(q("worker_sync_commit_local"))


async def pending_count(db: Db) -> int:
    """Rows waiting for the worker, in every stream."""
    count: int = await db.fetchval(q("inbox_pending_count"))
    return count


async def export_page(db: Db, corp: str | None, since: datetime | None, after: int, limit: int) -> list[Row]:
    """Inbox rows with ids above ``after`` for export, oldest first, of one corp or stream (None: all)."""
    rows: list[Row] = await db.fetch(q("replay_export"), corp, since, after, limit)
    return rows
