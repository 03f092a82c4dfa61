"""Webhook delivery from the outbox on real PostgreSQL, to a receiving end that verifies every request with the
official standardwebhooks package."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks.webhooks import Webhook

from handlers.config import Subscriber
from handlers.feed import admin
from handlers.feed.delivery import Delivery, FeedSettings, retry_delay
from handlers.feed.signing import secret_key, signature
from handlers.store import feed as store
from handlers.store import pool as db
from tests.support.feed import FAST, Hook, add_members, change_ids, corp_row, new_secret, subscriber, until

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@contextlib.asynccontextmanager
async def delivering(
    pool: asyncpg.Pool, subscribers: list[Subscriber], settings: FeedSettings = FAST
) -> AsyncIterator[Delivery]:
    async with aiohttp.ClientSession() as session:
        delivery = Delivery(pool, {s.name: s for s in subscribers}, session, settings)
        stop = asyncio.Event()
        task = asyncio.create_task(delivery.run(stop))
        try:
            yield delivery
        finally:
            stop.set()
            await task


async def serve(aiohttp_server: ServerFactory, hook: Hook) -> str:
    server = await aiohttp_server(hook.app())
    return str(server.make_url("/hook"))


async def delivered(pool: asyncpg.Pool, aiohttp_server: ServerFactory, count: int) -> tuple[Hook, Subscriber]:
    """A subscriber "Hook" that has received ``count`` member changes of corp HQ; the delivery stopped."""
    corp = await corp_row(pool)
    hook = Hook(new_secret())
    sub = subscriber(await serve(aiohttp_server, hook), hook.secret)
    async with delivering(pool, [sub]):
        await add_members(pool, corp, count)
        await until(lambda: len(hook.delivered()) == count)
    return hook, sub


async def test_each_event_is_a_signed_post_the_official_package_verifies(
    pool: asyncpg.Pool, aiohttp_server: ServerFactory
) -> None:
    hook, _ = await delivered(pool, aiohttp_server, 3)
    assert hook.unverified == 0
    assert hook.delivered() == await change_ids(pool)
    first = hook.received[0]
    assert first.headers["webhook-id"] == first.event["id"]
    assert first.event["type"] == "member.created" and "mobile" not in first.event["changes"]
    assert await store.pending(pool) == 0


def test_a_signature_is_the_official_package_s() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    official = Webhook(secret).sign("msg_p5jXN8AQM9LWM0D4loKWxJek", datetime.fromtimestamp(1614265330, UTC), body)
    assert signature(secret_key(secret), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == official
    for bad, why in (("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"), ("whsec_!!", "base64"), ("whsec_QUJD", "bytes")):
        with pytest.raises(ValueError, match=why):
            secret_key(bad)


async def test_a_subscriber_that_fails_then_recovers_gets_every_event_in_order_once(
    pool: asyncpg.Pool, aiohttp_server: ServerFactory
) -> None:
    hq, sales = await corp_row(pool), await corp_row(pool, "Sales")
    failing = {"left": 12}

    def answer(event: dict[str, Any]) -> int:
        if failing["left"] > 0:
            failing["left"] -= 1
            return 503 if failing["left"] % 2 else 200  # down, and flapping, for a while
        return 204

    hook = Hook(new_secret(), answer)
    sub = subscriber(await serve(aiohttp_server, hook), hook.secret)
    async with delivering(pool, [sub]):
        await asyncio.gather(add_members(pool, hq, 20), add_members(pool, sales, 20, "s"))
        await until(lambda: len(hook.delivered()) == 40)
        await asyncio.sleep(0.3)  # nothing more comes
    assert hook.unverified == 0
    assert [r.status for r in hook.received].count(503) == 6
    for name in ("HQ", "Sales"):
        assert hook.delivered(name) == await change_ids(pool, name)  # in order, each once per success
    assert len(hook.delivered()) == len(set(hook.delivered())) == 40
    states = await store.states(pool, ["Hook"])
    assert (states[0].pending, states[0].failing_since, states[0].last_error) == (0, None, None)


async def test_two_processes_never_send_one_stream_at_once(
    pool: asyncpg.Pool, db_url: str, aiohttp_server: ServerFactory
) -> None:
    corps = [await corp_row(pool, f"C{i}") for i in range(3)]
    hook = Hook(new_secret(), delay=0.003)
    sub = subscriber(await serve(aiohttp_server, hook), hook.secret)
    for k, corp in enumerate(corps):
        await add_members(pool, corp, 30, f"c{k}-")
    other = await db.create_pool(db_url, min_size=1, max_size=5)  # the second process's own connections
    try:
        async with delivering(pool, [sub]), delivering(other, [sub]):
            await until(lambda: len(hook.delivered()) == 90, 40)
            await asyncio.sleep(0.3)
    finally:
        await other.close()
    assert hook.most_in_flight == 1  # never two requests of one corp's stream at the same time
    assert len(hook.received) == 90  # no event sent twice
    for k in range(3):
        assert hook.delivered(f"C{k}") == await change_ids(pool, f"C{k}")


async def test_a_subscriber_failing_too_long_is_disabled_until_enabled(
    pool: asyncpg.Pool, aiohttp_server: ServerFactory
) -> None:
    corp = await corp_row(pool)
    up = {"yes": False}
    hook = Hook(new_secret(), lambda event: 200 if up["yes"] else 500)
    sub = subscriber(await serve(aiohttp_server, hook), hook.secret)
    settings = dataclasses.replace(FAST, disable_after=0.4)
    async with delivering(pool, [sub], settings) as delivery:
        await add_members(pool, corp, 3)
        await until(lambda: bool(hook.received))
        await until_async(lambda: store.disabled(pool, ["Hook"]), ["Hook"])
        tries = len(hook.received)
        await asyncio.sleep(0.5)
        assert len(hook.received) == tries  # a disabled subscriber gets nothing
        state = (await store.states(pool, ["Hook"]))[0]
        assert state.pending == 3 and state.disabled_reason is not None and state.last_error == "http 500"
        up["yes"] = True
        await admin.enable(pool, sub)
        delivery.wake()
        await until(lambda: len(hook.delivered()) == 3)
    assert hook.delivered() == await change_ids(pool)
    assert await store.disabled(pool, ["Hook"]) == []


async def until_async(read: Callable[[], Awaitable[Any]], expected: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await read() == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never became {expected!r}")


async def test_replay_sends_again_from_a_cursor_and_filters_hold(
    pool: asyncpg.Pool, aiohttp_server: ServerFactory
) -> None:
    hq, other = await corp_row(pool), await corp_row(pool, "Other")
    hook = Hook(new_secret())
    sub = subscriber(await serve(aiohttp_server, hook), hook.secret, events=("member.*",), corps=("HQ",),
                     personal_fields=frozenset({"mobile"}))  # fmt: skip
    async with delivering(pool, [sub]):
        await add_members(pool, hq, 4)
        await add_members(pool, other, 2)
        await until(lambda: len(hook.delivered()) == 4)
        ids = hook.delivered()
        assert ids == await change_ids(pool, "HQ")
        assert hook.received[0].event["changes"]["mobile"] == {"before": None, "after": "13800000000"}
        assert await admin.replay(pool, sub, after=int(ids[1])) == 2
        await until(lambda: len(hook.delivered()) == 6)
    assert hook.delivered()[4:] == ids[2:]  # same ids (webhook-id): the receiver can tell a replay


async def test_delivered_rows_go_after_the_retention_time(pool: asyncpg.Pool, aiohttp_server: ServerFactory) -> None:
    _, sub = await delivered(pool, aiohttp_server, 3)
    await admin.replay(pool, sub, after=0)  # three pending again
    assert await store.prune(pool, 3600, 100) == 0
    await asyncio.sleep(0.05)
    assert await store.prune(pool, 0.01, 100) == 3  # only the delivered ones
    assert await store.pending(pool) == 3


def test_retries_back_off_on_the_schedule_with_jitter() -> None:
    settings = FeedSettings(retry_schedule=(5, 300, 1800), jitter=0.2)
    assert [retry_delay(n, settings, lambda low, high: 1.0) for n in (1, 2, 3, 9)] == [5, 300, 1800, 1800]
    assert retry_delay(2, settings, lambda low, high: low) == pytest.approx(240)
    assert retry_delay(2, settings, lambda low, high: high) == pytest.approx(360)


async def test_wakes_soon_after_a_round_share_the_next_one(pool: asyncpg.Pool) -> None:
    rounds: list[float] = []

    class Counting(Delivery):
        async def round(self) -> None:
            rounds.append(asyncio.get_running_loop().time())
            await super().round()

    settings = dataclasses.replace(FAST, poll_interval=30.0, min_round_interval=0.3)
    async with aiohttp.ClientSession() as session:
        delivery = Counting(pool, {}, session, settings)
        stop = asyncio.Event()
        task = asyncio.create_task(delivery.run(stop))
        try:
            for _ in range(40):  # a commit every 25 ms for a second: the worker's batches under load
                delivery.wake()
                await asyncio.sleep(0.025)
            last_wake = asyncio.get_running_loop().time()
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            await task
    gaps = [b - a for a, b in itertools.pairwise(rounds)]
    assert len(rounds) >= 3  # the first, and rounds while the wakes go on (poll_interval is 30 s)
    assert min(gaps) >= 0.25  # not one per wake (25 ms); 0.3 s apart, less the first round's connect
    assert rounds[-1] >= last_wake - 0.01  # the last wake got its round, within min_round_interval


async def test_a_subscriber_added_later_starts_from_the_changes_since(
    pool: asyncpg.Pool, aiohttp_server: ServerFactory
) -> None:
    corp = await corp_row(pool)
    async with delivering(pool, []):
        await add_members(pool, corp, 3)
        await until_async(lambda: pool.fetchval("SELECT change_id FROM feed_fanout"), int((await change_ids(pool))[-1]))
    hook = Hook(new_secret())
    sub = subscriber(await serve(aiohttp_server, hook), hook.secret)
    async with delivering(pool, [sub]):
        await add_members(pool, corp, 2, "later")
        await until(lambda: len(hook.delivered()) == 2)
        await asyncio.sleep(0.3)
    assert hook.delivered() == (await change_ids(pool))[3:]


async def test_a_retention_pass_takes_every_delivered_row_due_not_one_batch(
    pool: asyncpg.Pool, aiohttp_server: ServerFactory
) -> None:
    _, sub = await delivered(pool, aiohttp_server, 7)
    settings = dataclasses.replace(FAST, retention=0.0, prune_every=0.0, prune_batch=2)
    async with aiohttp.ClientSession() as session:
        await Delivery(pool, {sub.name: sub}, session, settings).round()
    assert await pool.fetchval("SELECT count(*) FROM feed_outbox") == 0


async def test_pending_events_whose_change_the_log_retention_removed_are_dropped(
    pool: asyncpg.Pool, aiohttp_server: ServerFactory
) -> None:
    corp = await corp_row(pool)
    hook = Hook(new_secret(), lambda event: 503)
    sub = subscriber(await serve(aiohttp_server, hook), hook.secret)
    async with delivering(pool, [sub]):
        await add_members(pool, corp, 3)
        await until_async(lambda: store.pending(pool), 3)
    ids = await change_ids(pool)
    await pool.execute("DELETE FROM change_log WHERE id < $1", int(ids[-1]))  # CORPSYNC_RETAIN_CHANGE_LOG's purge
    settings = dataclasses.replace(FAST, prune_every=0.0)
    async with aiohttp.ClientSession() as session:
        await Delivery(pool, {sub.name: sub}, session, settings).round()
    rows = await pool.fetch("SELECT change_id FROM feed_outbox WHERE delivered_at IS NULL")
    assert [str(r["change_id"]) for r in rows] == ids[-1:]
