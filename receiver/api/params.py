"""Parsing /api input at the edge: query parameters and JSON bodies; a bad one is a 400 naming the field."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from handlers.api import DEFAULT_LIMIT, MAX_LIMIT, MemberFilter
from handlers.errors import InvalidInput
from receiver.bodies import read_body

PAGE_PARAMS = ("limit", "cursor")
_PLUS_AS_SPACE = re.compile(r"(:\d{2}(?:\.\d+)?) (\d{2}:?\d{2})$")
MEMBER_PARAMS = (*PAGE_PARAMS, "status", "deptId", "updatedSince")


def query(request: web.Request, allowed: Collection[str]) -> dict[str, str]:
    """The query parameters, each at most once; an unknown one is refused (a typo must not widen a list)."""
    found: dict[str, str] = {}
    for name, value in request.query.items():
        if name not in allowed:
            raise InvalidInput(name, "unknown query parameter")
        if name in found:
            raise InvalidInput(name, "given more than once")
        found[name] = value
    return found


def limit(params: dict[str, str]) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit():
        raise InvalidInput("limit", "must be a whole number")
    value = int(raw)
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
    return value


def cursor(params: dict[str, str]) -> str | None:
    raw = params.get("cursor")
    if raw is not None and not raw:
        raise InvalidInput("cursor", "must not be empty (leave it out for the first page)")
    return raw


def page(request: web.Request) -> tuple[int, str | None]:
    params = query(request, PAGE_PARAMS)
    return limit(params), cursor(params)


def timestamp(params: dict[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    raw = _PLUS_AS_SPACE.sub(r"\1+\2", raw)  # an unencoded "+08:00" arrives as " 08:00"
    try:
        value = datetime.fromisoformat(raw)
        value.astimezone(UTC)  # 0001-01-01T00:00:00+14:00 is before the first instant the database holds
    except (ValueError, OverflowError):
        raise InvalidInput(name, "must be an ISO-8601 date-time, e.g. 2024-05-01T08:00:00Z") from None
    return value


def member_filter(params: dict[str, str]) -> MemberFilter:
    return MemberFilter(params.get("status"), params.get("deptId"), timestamp(params, "updatedSince"))


async def body(request: web.Request, allowed: Collection[str], *, optional: bool = False) -> dict[str, Any]:
    """The JSON object of the body; unknown keys are refused. ``optional``: an empty body is ``{}``."""
    raw = await read_body(request)
    if not raw.strip():
        if optional:
            return {}
        raise InvalidInput("body", "a JSON object is required")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput("body", "not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("body", "must be a JSON object")
    for key in data:
        if key not in allowed:
            raise InvalidInput(key, "unknown field")
    return data


def required(data: dict[str, Any], field: str) -> Any:
    if field not in data:
        raise InvalidInput(field, "required")
    return data[field]


def id_list(data: dict[str, Any], field: str) -> list[str]:
    value = required(data, field)
    if not isinstance(value, list):
        raise InvalidInput(field, "must be a list of ids")
    return value


def flag(data: dict[str, Any], field: str, default: bool) -> bool:
    value = data.get(field, default)
    if not isinstance(value, bool):
        raise InvalidInput(field, "must be true or false")
    return value


def id_list_of(data: dict[str, Any], names: tuple[str, str]) -> list[str]:
    """The id list under either name (today's key, or the JitAI seeds' one: ``memberIds`` / ``memberIdList``),
    exactly one of them."""
    given = [name for name in names if name in data]
    if len(given) > 1:
        raise InvalidInput(given[1], f"give {names[0]} or {names[1]}, not both")
    return id_list(data, given[0] if given else names[0])


def optional_id_list_of(data: dict[str, Any], names: tuple[str, str]) -> list[str] | None:
    """``id_list_of``, or None when neither name is given."""
    return id_list_of(data, names) if any(name in data for name in names) else None
