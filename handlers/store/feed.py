"""The change feed's statements (``feed.sql``): change_log pages in commit order, the webhook outbox and the
subscribers' delivery state. Callers own the transaction; ``fan_out`` opens its own.

Read ``horizon`` in a statement of its own before a page: ids below it are final (see migration 0006).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

import asyncpg
import orjson

from handlers.store import locks
from handlers.store.queries import q

Executor: TypeAlias = "asyncpg.Connection | asyncpg.Pool"


@dataclass(frozen=True, slots=True)
class SubscriberFilter:
    """What one subscriber wants, as its feed_subscribers row keeps it: event type patterns as declared
    (``member.*``) and corp names (None: all of them), and the personal fields its events may show."""

    name: str
    events: tuple[str, ...] | None
    corps: tuple[str, ...] | None
    personal_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SubscriberState:
    name: str
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    last_error: str | None
    pending: int  # outbox rows not delivered
    lag_seconds: float | None  # age of the oldest pending change; None when nothing is pending
    removed_at: datetime | None = None  # no longer in the app dir: nothing goes to it
    filters: SubscriberFilter | None = None  # as stored


async def horizon(conn: Executor) -> int:
    """The least change id a reader may not pass yet (every id below it is committed or gone for good)."""
    value: int = await conn.fetchval(q("feed_horizon"))
    return value


async def page(
    conn: Executor, after: int, until: int, corp: str | None, types: Sequence[str] | None, limit: int
) -> list[asyncpg.Record]:
    """Changes after ``after`` and below ``until`` (a horizon), in id order, filtered by corp and type patterns."""
    rows: list[asyncpg.Record] = await conn.fetch(
        q("feed_page"), after, until, corp, None if types is None else list(types), limit
    )
    return rows


async def corp_exists(conn: Executor, name: str) -> bool:
    found: bool = await conn.fetchval(q("feed_corp_exists"), name)
    return found


async def declare_subscribers(conn: Executor, subscribers: Sequence[SubscriberFilter], *, complete: bool) -> list[str]:
    """Store the subscribers' filters (a removed one is back); when ``complete`` (every subscriber of an app dir),
    mark every other one removed and drop its pending events. The names removed now."""
    declared = [
        {"name": s.name, "events": s.events, "corps": s.corps, "personalFields": list(s.personal_fields)}
        for s in subscribers
    ]
    rows = await conn.fetch(q("feed_declare_subscribers"), orjson.dumps(declared).decode(), complete)
    return [r["name"] for r in rows]


async def fan_out(pool: asyncpg.Pool, batch: int) -> tuple[int, int] | None:
    """Queue the next ``batch`` committed changes for every subscriber whose stored filters want them: (changes
    read, outbox rows queued); None when another process is doing it."""
    async with pool.acquire() as conn, conn.transaction():
        if not await locks.try_lock_feed_fanout(conn):
            return None
        until = await horizon(conn)
        row = await conn.fetchrow(q("feed_fanout"), until, batch)
        assert row is not None
        return int(row["seen"]), int(row["queued"])


async def due_streams(conn: Executor, subscribers: Sequence[str], limit: int) -> list[tuple[str, int]]:
    rows = await conn.fetch(q("feed_due_streams"), list(subscribers), limit)
    return [(r["subscriber"], r["corp"]) for r in rows]


async def stream_head(conn: Executor, subscriber: str, corp: int, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(q("feed_stream_head"), subscriber, corp, limit)
    return rows


async def delivered(conn: Executor, subscriber: str, outbox_ids: Sequence[int]) -> None:
    await conn.execute(q("feed_delivered"), list(outbox_ids), subscriber)


async def failed(conn: Executor, subscriber: str, corp: int, outbox_id: int, delay: float, error: str) -> None:
    await conn.execute(q("feed_failed"), outbox_id, subscriber, corp, delay, error)


async def disable_failing(conn: Executor, after_seconds: float) -> list[str]:
    rows = await conn.fetch(q("feed_disable_failing"), after_seconds)
    return [r["name"] for r in rows]


async def enable(conn: Executor, subscriber: str) -> bool:
    """Enable a subscriber again (its streams are due at once); False when it has no state yet."""
    count: int = await conn.fetchval(q("feed_enable"), subscriber)
    return count > 0


async def disabled(conn: Executor, subscribers: Sequence[str]) -> list[str]:
    rows = await conn.fetch(q("feed_disabled"), list(subscribers))
    return [r["name"] for r in rows]


def _tuple(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


async def states(conn: Executor, subscribers: Sequence[str], *, removed: bool = False) -> list[SubscriberState]:
    """The named subscribers' states, and every removed subscriber's too when ``removed``."""
    rows = await conn.fetch(q("feed_subscriber_states"), list(subscribers), removed)
    return [
        SubscriberState(
            r["name"], r["disabled_at"], r["disabled_reason"], r["failing_since"], r["last_error"], r["pending"],
            r["lag_seconds"], r["removed_at"],
            SubscriberFilter(r["name"], _tuple(r["events"]), _tuple(r["corps"]), tuple(r["personal_fields"])),
        )
        for r in rows
    ]  # fmt: skip


async def replay(
    conn: Executor,
    subscriber: str,
    *,
    after: int | None,
    since: datetime | None,
    until: datetime | None,
    corp: str | None,
    limit: int,
) -> int:
    """Queue the changes the subscriber's stored filters want again (after a change id and/or in a time window); the
    number queued (0 for a removed subscriber)."""
    end = await horizon(conn)
    count: int = await conn.fetchval(
        q("feed_replay"),
        subscriber,
        after,
        since,
        until,
        end,
        corp,
        limit,
    )
    return count


async def prune(conn: Executor, keep_seconds: float, limit: int) -> int:
    """Delete outbox rows delivered longer ago than ``keep_seconds`` (at most ``limit``); the number deleted."""
    count: int = await conn.fetchval(q("feed_prune"), keep_seconds, limit)
    return count


async def prune_orphans(conn: Executor) -> dict[str, int]:
    """Delete pending outbox rows whose change the change_log retention removed; how many, per subscriber."""
    return {r["subscriber"]: r["n"] for r in await conn.fetch(q("feed_prune_orphans"))}


async def pending(conn: Executor) -> int:
    count: int = await conn.fetchval(q("feed_outbox_pending"))
    return count
