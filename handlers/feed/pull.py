"""The pull feed: one page of events after a cursor, in commit order; with ``wait``, the first page that has any.

A consumer that stores the cursor it got and asks again from there sees every change once: ids below the feed
horizon are final, so a page never skips a change that commits later (handlers.store.feed.horizon).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

import asyncpg

from handlers.feed.events import Event, event
from handlers.feed.watch import ChangeWatch
from handlers.store import feed as store

MAX_WAIT = 30.0  # seconds a long poll may wait


@dataclass(frozen=True, slots=True)
class ChangeQuery:
    after: int = 0
    corp: str | None = None
    types: tuple[str, ...] | None = None  # SQL LIKE patterns (handlers.feed.events.type_pattern)
    limit: int = 100
    wait: float = 0.0  # seconds
    personal_fields: Collection[str] = ()


@dataclass(frozen=True, slots=True)
class ChangePage:
    items: list[Event]
    cursor: int  # the last id returned, or the query's ``after``


async def read_once(pool: asyncpg.Pool, query: ChangeQuery) -> ChangePage:
    async with pool.acquire() as conn:
        until = await store.horizon(conn)
        rows = await store.page(conn, query.after, until, query.corp, query.types, query.limit)
    items = [event(row, query.personal_fields) for row in rows]
    return ChangePage(items, rows[-1]["id"] if rows else query.after)


async def read_changes(pool: asyncpg.Pool, query: ChangeQuery, watch: ChangeWatch | None = None) -> ChangePage:
    """A page of changes; when it would be empty and ``query.wait`` > 0, the first non-empty page within that
    many seconds (an empty one after them)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(query.wait, MAX_WAIT)
    while True:
        ticket = None if watch is None else watch.ticket()
        found = await read_once(pool, query)
        left = deadline - loop.time()
        if found.items or left <= 0:
            return found
        if watch is None:
            await asyncio.sleep(min(left, 0.2))
        else:
            await watch.wait(left, ticket)
