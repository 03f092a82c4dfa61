"""What both platforms' record parsers (``wecom_records``, ``dingtalk_records``) share: the same JSON shapes under
each platform's own keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handlers.clients.base import Json, ident, integer, items, mapping, text
from handlers.model import Admin, Department


def id_tuple(value: Any, read: Callable[[Any], str | None] = ident) -> tuple[str, ...] | None:
    """A JSON list of ids, each read with ``read``, empty and unreadable ones left out; None when not a list."""
    if not isinstance(value, list):
        return None
    return tuple(x for x in map(read, value) if x)


def department(
    doc: Json,
    id_key: str,
    parent_key: str,
    leaders_key: str,
    *,
    leader: Callable[[Any], str | None] = ident,
    name_en_key: str | None = None,
) -> Department | None:
    """A department (None without an id); the root's parent (0 or missing) is None."""
    dept_id = ident(doc.get(id_key))
    if dept_id is None:
        return None
    parent = ident(doc.get(parent_key))
    return Department(
        dept_id=dept_id,
        parent_id=None if parent in (None, "0") else parent,
        name=text(doc.get("name")),
        name_en=None if name_en_key is None else text(doc.get(name_en_key)),
        order=integer(doc.get("order")),
        leaders=id_tuple(doc.get(leaders_key), leader),
    )


def admins(entries: Any, level_key: str) -> tuple[Admin, ...]:
    """A list of ``{"userid": ..., <level_key>: n}``; entries without a user id are left out."""
    found = []
    for entry in items(entries):
        user_id = text(mapping(entry).get("userid"))
        if user_id is not None:
            found.append(Admin(user_id, integer(entry.get(level_key))))
    return tuple(found)
