"""The change feed over HTTP: ``GET /api/changes`` (long-poll pull) and the webhook subscribers' state, enable
and replay. Every handler is behind ``receiver.api.guard.endpoint``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from handlers.errors import InvalidInput, UnknownCorp
from handlers.feed import admin
from handlers.feed.events import personal_fields, type_pattern
from handlers.feed.pull import MAX_WAIT, ChangeQuery, read_changes
from handlers.store import feed as store
from receiver.api import params
from receiver.api.guard import endpoint, reply
from receiver.keys import CONFIG, FEED_WATCH, POOL

CHANGES_PARAMS = ("after", "corp", "types", "limit", "wait", "personalFields")
MAX_TYPES = 50


def _change_id(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(name, "must be a change id (a decimal string)")
    return int(raw)


def _wait(raw: str | None) -> float:
    if raw is None:
        return 0.0
    try:
        value = float(raw) if raw.isascii() else -1.0
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_WAIT:  # also refuses nan
        raise InvalidInput("wait", f"must be a number of seconds from 0 to {MAX_WAIT:g}")
    return value


def _types(raw: str | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    names = [t for t in raw.split(",") if t]
    if not names or len(names) > MAX_TYPES:
        raise InvalidInput("types", f"list 1 to {MAX_TYPES} event types or patterns, separated by commas")
    try:
        return tuple(type_pattern(t) for t in names)
    except ValueError as exc:
        raise InvalidInput("types", str(exc)) from None


def _personal(raw: str | None) -> frozenset[str]:
    if raw is None:
        return frozenset()
    try:
        return personal_fields([f for f in raw.split(",") if f])
    except ValueError as exc:
        raise InvalidInput("personalFields", str(exc)) from None


@endpoint
async def changes(request: web.Request) -> web.Response:
    """``{"items": [events in id order], "cursor": "<last id returned, or the one given>"}``."""
    given = params.query(request, CHANGES_PARAMS)
    corp = given.get("corp")
    query = ChangeQuery(
        after=_change_id(given.get("after"), "after") or 0,
        corp=corp,
        types=_types(given.get("types")),
        limit=params.limit(given),
        wait=_wait(given.get("wait")),
        personal_fields=_personal(given.get("personalFields")),
    )
    pool = request.app[POOL]
    if corp is not None and not await store.corp_exists(pool, corp):
        raise UnknownCorp(corp)
    page = await read_changes(pool, query, request.app.get(FEED_WATCH))
    return reply({"items": page.items, "cursor": str(page.cursor)})


def _origin(url: str) -> str:
    """Where a subscriber's events go, without path or query (which may hold a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@endpoint
async def subscribers(request: web.Request) -> web.Response:
    params.query(request, ())
    config = request.app[CONFIG].subscribers
    items: list[dict[str, Any]] = []
    for state in await admin.states(request.app[POOL], config):
        sub, kept = config.get(state.name), state.filters  # a removed subscriber: only what its row keeps
        events = sub.events if sub is not None else kept.events if kept is not None else None
        corps = sub.corps if sub is not None else kept.corps if kept is not None else None
        items.append({
            "name": state.name, "title": None if sub is None else sub.title,
            "url": None if sub is None else _origin(sub.url),
            "events": None if events is None else list(events),
            "corps": None if corps is None else list(corps),
            "personalFields": sorted(sub.personal_fields if sub is not None else kept.personal_fields if kept else ()),
            "removed": state.removed_at is not None,
            "removedAt": None if state.removed_at is None else state.removed_at.isoformat(),
            "disabled": state.disabled_at is not None,
            "disabledAt": None if state.disabled_at is None else state.disabled_at.isoformat(),
            "disabledReason": state.disabled_reason,
            "failingSince": None if state.failing_since is None else state.failing_since.isoformat(),
            "lastError": state.last_error, "pending": state.pending, "lagSeconds": state.lag_seconds,
        })  # fmt: skip
    return reply({"items": items, "total": len(items), "nextCursor": None})


@endpoint
async def enable_subscriber(request: web.Request) -> web.Response:
    params.query(request, ())
    await params.body(request, (), optional=True)
    target = admin.subscriber(request.app[CONFIG].subscribers, request.match_info["name"])
    await admin.enable(request.app[POOL], target)
    return reply({"name": target.name, "enabled": True})


@endpoint
async def replay_subscriber(request: web.Request) -> web.Response:
    """Queue a subscriber's changes again: ``{"after": "<change id>"}`` and/or ``{"since", "until"?}``, ``"corp"?``."""
    params.query(request, ())
    body = await params.body(request, ("after", "since", "until", "corp"))
    target = admin.subscriber(request.app[CONFIG].subscribers, request.match_info["name"])
    for key in ("after", "since", "until", "corp"):
        if key in body and not isinstance(body[key], str):
            raise InvalidInput(key, "must be a string")
    queued = await admin.replay(
        request.app[POOL],
        target,
        after=_change_id(body.get("after"), "after"),
        since=params.timestamp(body, "since"),
        until=params.timestamp(body, "until"),
        corp=body.get("corp"),
    )
    return reply({"subscriber": target.name, "queued": queued}, 202)
