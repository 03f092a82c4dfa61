"""Keyset pages: an opaque cursor (URL-safe base64 of the last key seen), and the list shape of the API."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson

from handlers.api.views import Json, JsonView
from handlers.errors import InvalidInput

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

View = TypeVar("View", bound=JsonView)
Key = str | int
K = TypeVar("K", str, int)  # the key type of one list


@dataclass(frozen=True, slots=True)
class Page(Generic[View]):
    """One page of a list; ``total`` counts the whole filtered list, ``next_cursor`` is None on the last page."""

    items: tuple[View, ...]
    total: int
    next_cursor: str | None

    def to_json(self) -> Json:
        return {"items": [item.to_json() for item in self.items], "total": self.total, "nextCursor": self.next_cursor}


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def encode_cursor(kind: str, key: Key) -> str:
    """The cursor after ``key`` in the list ``kind``; opaque to clients."""
    raw = orjson.dumps({"l": kind, "k": key})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(kind: str, cursor: str | None, key_type: type[K]) -> K | None:
    """The key a cursor of list ``kind`` carries; None for no cursor. Anything else is a 400 on ``cursor``."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidInput("cursor", "not a cursor this API issued") from None
    if not isinstance(data, dict) or data.get("l") != kind:
        raise InvalidInput("cursor", f"not a cursor of this list ({kind})")
    key = data.get("k")
    if isinstance(key, key_type) and not isinstance(key, bool):
        return key
    raise InvalidInput("cursor", "not a cursor this API issued")


def page_of(kind: str, items: list[View], keys: list[Key], limit: int, total: int) -> Page[View]:
    """Cut a fetch of ``limit + 1`` rows into a page; the extra row only says whether there is more."""
    more = len(items) > limit
    cursor = encode_cursor(kind, keys[limit - 1]) if more else None
    return Page(tuple(items[:limit]), total, cursor)
