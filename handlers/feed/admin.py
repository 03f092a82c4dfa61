"""The operator's side of the webhook feed: replay, enable, and each subscriber's state (CLI and API)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import asyncpg

from handlers.config import Subscriber
from handlers.errors import InvalidInput, UnknownRecord
from handlers.feed.delivery import filters
from handlers.store import feed as store

REPLAY_MAX = 1_000_000  # changes one replay may queue


def subscriber(subscribers: Mapping[str, Subscriber], name: str) -> Subscriber:
    found = subscribers.get(name)
    if found is None:
        raise UnknownRecord("subscriber", name)
    return found


async def replay(
    pool: asyncpg.Pool,
    target: Subscriber,
    *,
    after: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    corp: str | None = None,
) -> int:
    """Queue the subscriber's changes again, from a cursor (``after``) and/or in a time window; the number queued.
    They go out after what is pending, in order, with their original ids (``webhook-id``)."""
    if after is None and since is None:
        raise InvalidInput("after", "give a change id to replay after, or a time to replay since")
    if since is not None and until is not None and until <= since:
        raise InvalidInput("until", "must be later than since")
    await store.declare_subscribers(pool, filters({target.name: target}), complete=False)
    return await store.replay(pool, target.name, after=after, since=since, until=until, corp=corp, limit=REPLAY_MAX)


async def enable(pool: asyncpg.Pool, target: Subscriber) -> None:
    """Enable a subscriber the failing time disabled; its pending events go out at once."""
    await store.declare_subscribers(pool, filters({target.name: target}), complete=False)
    await store.enable(pool, target.name)


async def states(pool: asyncpg.Pool, subscribers: Mapping[str, Subscriber]) -> list[store.SubscriberState]:
    """The state of the app dir's subscribers and of the removed ones. Only ``serve`` removes subscribers (when it
    starts: ``declare``); a read here stores the app dir's filters but removes none, so that ``corpsync changes
    status`` run with another app dir (or none) cannot drop anything."""
    await store.declare_subscribers(pool, filters(subscribers), complete=False)
    return await store.states(pool, list(subscribers), removed=True)
