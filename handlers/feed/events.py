"""The event JSON of a change (a change_log row), as the feed contract names it:

``{"id", "type", "corp", "objectId", "changes": {field: {"before", "after"}}, "source", "at", "inboxId",
"syncRunId"}``; ids are decimal strings; field names are the directory API's (camelCase); personal fields
appear only for consumers that asked for them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

Event = dict[str, Any]

SOURCES = {"event": "callback", "full_sync": "full_sync", "api": "operator"}

# Columns whose API name is not their plain camelCase.
FIELD_NAMES = {
    "user_id": "memberId",
    "leaders": "leaderIds",
    "direct_leaders": "directLeaderIds",
    "departments": "deptIds",
}

# Fields that are personal data: in an event's changes only for a consumer that names them (or "*").
PERSONAL_FIELDS = frozenset(
    {"mobile", "email", "bizMail", "telephone", "avatar", "gender", "extattr", "hiredDate", "signature"}
)

_PATTERN = re.compile(r"\*|[a-z*]+(?:\.[a-z*]+)?")


def field_name(column: str) -> str:
    known = FIELD_NAMES.get(column)
    if known is not None:
        return known
    head, *rest = column.split("_")
    return head + "".join(part.title() for part in rest)


def type_pattern(pattern: str) -> str:
    """An event type pattern (``member.*``, ``*.deleted``, ``tag.created``) as a SQL LIKE pattern; ValueError
    when it is not one."""
    if not _PATTERN.fullmatch(pattern):
        raise ValueError("an event type pattern is letters and '*', with at most one '.' (e.g. member.*)")
    return pattern.replace("*", "%")


def personal_fields(value: bool | Iterable[str]) -> frozenset[str]:
    """The personal fields a consumer may see: ``True`` or ``"*"`` for all, else the names given; ValueError for a
    name that is not a personal field."""
    if isinstance(value, bool):
        return PERSONAL_FIELDS if value else frozenset()
    names = frozenset(value)
    if "*" in names:
        return PERSONAL_FIELDS
    unknown = sorted(names - PERSONAL_FIELDS)
    if unknown:
        raise ValueError(f"not a personal field: {unknown[0]} (known: {', '.join(sorted(PERSONAL_FIELDS))})")
    return names


def _changes(fields: Iterable[str] | None, values: Mapping[str, Any] | None, allowed: Collection[str]) -> Event:
    found: Event = {}
    known = values or {}
    for column in [*(fields or ()), *known]:
        name = field_name(column)
        if name in found or (name in PERSONAL_FIELDS and name not in allowed):
            continue
        value = known.get(column) or {}
        found[name] = {"before": value.get("before"), "after": value.get("after")}
    return found


def _id(value: int | None) -> str | None:
    return None if value is None else str(value)


def event(row: Mapping[str, Any], allowed: Collection[str] = ()) -> Event:
    """The event of one feed row (``feed_page`` / ``feed_stream_head``); ``allowed`` the personal fields shown."""
    return {
        "id": str(row["id"]),
        "type": row["type"],
        "corp": row["corp"],
        "objectId": row["entity_id"],
        "changes": _changes(row["fields"], row["changes"], allowed),
        "source": SOURCES.get(row["source"], row["source"]),
        "at": row["at"].isoformat(),
        "inboxId": _id(row["inbox_id"]),
        "syncRunId": _id(row["sync_run_id"]),
    }
