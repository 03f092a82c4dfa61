"""The inbox row: what every writer of the inbox (the intake, replay, drift recovery) stores per callback.

``inbox_insert_batch`` takes a group of rows as one parameter, a JSON array of row objects in UTF-8 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import orjson

from receiver.errors import EnvelopeError

__all__ = ["InboxRecord", "inbox_row", "inbox_rows", "rows_parameter"]


class InboxRecord(NamedTuple):
    stream: str  # ordering key: the corp's name (or the suite auth's, for instruction events)
    platform: str
    route: str
    corp: int | None
    dedupe_key: str
    event_type: str | None
    query: dict[str, str]
    body: str
    plaintext: str


def inbox_row(record: InboxRecord) -> bytes:
    """One element of ``inbox_insert_batch``'s rows parameter (a JSON object, UTF-8).

    Raises EnvelopeError for what the inbox cannot hold: a NUL character (PostgreSQL text has none).
    """
    query = record.query
    if "\x00" in record.body or "\x00" in record.plaintext or "\x00" in "".join(query.values()):
        raise EnvelopeError("the callback holds a NUL character")
    return orjson.dumps(
        {
            "stream": record.stream,
            "platform": record.platform,
            "route": record.route,
            "corp": record.corp,
            "dedupe_key": record.dedupe_key,
            "event_type": record.event_type,
            "query": query,
            "body": record.body,
            "plaintext": record.plaintext,
        }
    )


def rows_parameter(rows: list[bytes]) -> bytes:
    """The rows parameter of ``inbox_insert_batch``: a JSON array of ``inbox_row`` objects."""
    return b"[" + b",".join(rows) + b"]"


def inbox_rows(records: Iterable[InboxRecord]) -> bytes:
    """``inbox_insert_batch``'s parameter for ``records`` (for writers other than the intake)."""
    return rows_parameter([inbox_row(r) for r in records])
