"""The inbox row: what every writer of the inbox (the intake, replay, drift recovery) stores per callback,
and the statement that stores a group of them (``insert_inbox_rows``).

A group travels as nine parameters a row, each encoded by asyncpg on its own (PostgreSQL's binary format).
As one parameter, an array of the ``inbox_row`` composite type (migration 0003; no longer used), asyncpg
spent about twice the instructions per row encoding it (19.6k against 10.3k, callgrind), most of them in
checking every row's type for nested arrays; PostgreSQL's work per row is the same.

The raw body and the decrypted message are stored as the bytes they arrived as: PostgreSQL turns them into
text. What it cannot hold as text (bytes that are not UTF-8, a NUL character; in the other fields a lone
surrogate, which has no UTF-8) fails the statement that carries it with ``asyncpg.DataError``; the intake
then stores the rest of the group without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from itertools import chain
from typing import NamedTuple

import asyncpg
import orjson

from handlers.errors import MalformedMessage
from handlers.store.locks import INBOX_INSERT_LOCK
from handlers.store.queries import q

__all__ = ["ROWS_PER_STATEMENT", "InboxRecord", "InboxRow", "inbox_row", "inbox_rows", "insert_inbox_rows"]

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


# One row of insert_inbox_rows: the fields of InboxRecord, the query as JSON text.
InboxRow = tuple[str, str, str, int | None, str, str | None, str, bytes, bytes]


def inbox_row(record: InboxRecord) -> InboxRow:
    """The ``inbox_row`` value of ``record``; MalformedMessage if its query cannot be written as JSON."""
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


def inbox_rows(records: Iterable[InboxRecord]) -> list[InboxRow]:
    """The rows of ``records``, for ``insert_inbox_rows``."""
    return [inbox_row(r) for r in records]


_TYPES = ("text", "text", "text", "bigint", "text", "text", "text", "bytea", "bytea")  # an InboxRow's fields


def _values_row(row: int) -> str:
    """The VALUES row of the ``row``-th InboxRow (from 0) of a statement; $1 is the lock key."""
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
    rows: Sequence[InboxRow],
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
