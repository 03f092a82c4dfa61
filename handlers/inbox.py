"""The inbox row: what every writer of the inbox (the intake, replay, drift recovery) stores per callback.

``inbox_insert_batch`` takes a group of rows as one parameter, an array of the ``inbox_row`` composite type
(migration 0003), which asyncpg sends in PostgreSQL's binary format.

The raw body and the decrypted message are stored as the bytes they arrived as: PostgreSQL turns them into
text. What it cannot hold as text (bytes that are not UTF-8, a NUL character; in the other fields a lone
surrogate, which has no UTF-8) fails the statement that carries it with ``asyncpg.DataError``; the intake
then stores the rest of the group without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import orjson

from receiver.errors import EnvelopeError

__all__ = ["InboxRecord", "InboxRow", "inbox_row", "inbox_rows"]


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


# One element of inbox_insert_batch's parameter: the fields of InboxRecord, the query as JSON text.
InboxRow = tuple[str, str, str, int | None, str, str | None, str, bytes, bytes]


def inbox_row(record: InboxRecord) -> InboxRow:
    """The ``inbox_row`` value of ``record``; EnvelopeError if its query cannot be written as JSON."""
    try:
        query = orjson.dumps(record.query).decode()
    except orjson.JSONEncodeError as exc:  # a value that is not text, or text with a lone surrogate
        raise EnvelopeError("the query cannot be stored") from exc
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
    """``inbox_insert_batch``'s parameter for ``records`` (for writers other than the intake)."""
    return [inbox_row(r) for r in records]
