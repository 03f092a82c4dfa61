"""Subscribers as the app dir declares them: stored filters every process fans out by, removal and return."""

from __future__ import annotations

import aiohttp
import asyncpg

from handlers.config import Subscriber
from handlers.feed import admin
from handlers.feed.delivery import Delivery, declare
from handlers.store import feed as store
from tests.support.feed import FAST, add_members, change_ids, corp_row, new_secret, subscriber

URL = "http://127.0.0.1:9/hook"  # never reached: these tests only fan out


async def queued(pool: asyncpg.Pool, name: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT o.change_id FROM feed_outbox o WHERE o.subscriber = $1 AND o.delivered_at IS NULL ORDER BY o.id", name
    )
    return [str(r["change_id"]) for r in rows]


async def fan_out_by(pool: asyncpg.Pool, subscribers: dict[str, Subscriber]) -> None:
    """A round of a process whose app dir has ``subscribers`` (it declared nothing: that happens when it starts);
    it sends nothing, holding no stream lock."""
    async with aiohttp.ClientSession() as session:
        await Delivery(pool, subscribers, session, FAST).round()


async def test_every_process_fans_out_by_the_filters_the_app_dir_stored(pool: asyncpg.Pool) -> None:
    hq, sales = await corp_row(pool), await corp_row(pool, "Sales")
    secret = new_secret()
    narrow = subscriber(URL, secret, events=("member.created",), corps=("HQ",))
    wide = subscriber(URL, secret)  # the same name, another app dir: every type, every corp
    await declare(pool, {"Hook": narrow})
    await add_members(pool, hq, 2)
    await add_members(pool, sales, 2, "s")
    # A process with the other configuration runs the fan-out: the stored filters decide, not its own.
    await fan_out_by(pool, {"Hook": wide})
    assert await queued(pool, "Hook") == await change_ids(pool, "HQ")
    await declare(pool, {"Hook": wide})  # that app dir loaded last: its filters count from now on
    await add_members(pool, sales, 1, "t")
    await fan_out_by(pool, {"Hook": narrow})
    assert await queued(pool, "Hook") == [*await change_ids(pool, "HQ"), (await change_ids(pool, "Sales"))[-1]]
    (state,) = await store.states(pool, ["Hook"])
    assert state.filters is not None and (state.filters.events, state.filters.corps) == (None, None)


async def test_a_subscriber_no_longer_declared_is_removed_and_gets_nothing(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    secret = new_secret()
    keep, gone = subscriber(URL, secret, name="Keep"), subscriber(URL, secret, name="Gone")
    await declare(pool, {"Keep": keep, "Gone": gone})
    await add_members(pool, corp, 2)
    await fan_out_by(pool, {})
    assert len(await queued(pool, "Gone")) == 2
    assert await declare(pool, {"Keep": keep}) == ["Gone"]  # subscribers/Gone/ deleted, the app dir loaded again
    assert await queued(pool, "Gone") == []  # its pending events dropped
    assert await pool.fetchval("SELECT count(*) FROM feed_streams WHERE subscriber = 'Gone'") == 0
    await add_members(pool, corp, 1, "v")
    await fan_out_by(pool, {"Gone": gone})  # even a process that still has it: no fan-out to a removed one
    assert await queued(pool, "Gone") == []
    assert len(await queued(pool, "Keep")) == 3
    assert await admin.replay(pool, gone, after=0) == 3  # a replay names it: it is declared again, then queued
    await admin.states(pool, {"Keep": keep})  # the CLI/API read removes nothing
    assert (await store.states(pool, ["Gone"]))[0].removed_at is None and len(await queued(pool, "Gone")) == 3
    await declare(pool, {"Keep": keep})  # serve starts again without it
    states = {s.name: s for s in await admin.states(pool, {"Keep": keep})}
    assert states["Gone"].removed_at is not None and states["Keep"].removed_at is None
    assert await queued(pool, "Gone") == []


async def test_a_subscriber_declared_again_gets_the_changes_from_then_on(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    gone = subscriber(URL, new_secret(), name="Back")
    await declare(pool, {"Back": gone})
    await declare(pool, {})
    await add_members(pool, corp, 2)  # while it is removed
    await fan_out_by(pool, {})
    await declare(pool, {"Back": gone})
    (state,) = await store.states(pool, ["Back"])
    assert state.removed_at is None
    await add_members(pool, corp, 1, "w")
    await fan_out_by(pool, {})
    assert await queued(pool, "Back") == (await change_ids(pool))[-1:]


async def test_removed_subscribers_are_forgotten_after_the_retention_time(pool: asyncpg.Pool) -> None:
    await declare(pool, {"Old": subscriber(URL, new_secret(), name="Old")})
    await declare(pool, {})
    assert await store.prune(pool, 3600, 100) == 0
    assert [s.name for s in await store.states(pool, [], removed=True)] == ["Old"]
    await store.prune(pool, 0.0, 100)
    assert await store.states(pool, [], removed=True) == []
