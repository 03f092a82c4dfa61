"""The pull feed in commit order: a consumer restarted from its cursor sees every change once, a change that
commits late is not skipped, a long poll wakes on commit, and NOTIFY comes after commit, never before."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg

from handlers.feed import CHANNEL
from handlers.feed.pull import ChangeQuery, read_changes, read_once
from handlers.feed.watch import ChangeWatch
from handlers.model import Member
from handlers.store.directory import Directory, Source
from tests.support.feed import change_ids, corp_row


async def upsert(conn: asyncpg.Connection, corp: int, user_id: str) -> None:
    await Directory(conn, corp, Source("event")).upsert_member(Member(user_id, user_id))


async def test_a_change_committed_late_holds_back_those_after_it(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as slow, pool.acquire() as fast:
        transaction = slow.transaction()
        await transaction.start()
        await upsert(slow, corp, "early")  # takes the lower id, commits last
        await upsert(fast, corp, "late")
        first = await read_once(pool, ChangeQuery())
        assert (first.items, first.cursor) == ([], 0)  # "late" is committed but may not pass "early" yet
        await transaction.commit()
    page = await read_once(pool, ChangeQuery())
    assert [e["objectId"] for e in page.items] == ["early", "late"]
    assert page.cursor == int(page.items[-1]["id"])


async def test_an_aborted_transaction_holds_nothing_back(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await upsert(conn, corp, "gone")
        await transaction.rollback()
    await upsert(pool, corp, "kept")
    assert [e["objectId"] for e in (await read_once(pool, ChangeQuery())).items] == ["kept"]


async def test_a_consumer_restarted_from_its_cursor_sees_every_change_once(pool: asyncpg.Pool) -> None:
    corps = [await corp_row(pool, f"C{i}") for i in range(3)]
    rng = random.Random(18)

    async def writer(k: int) -> None:
        for i in range(15):
            async with pool.acquire() as conn, conn.transaction():
                await upsert(conn, corps[k % 3], f"w{k}-{i}")
                await asyncio.sleep(rng.random() * 0.01)  # commits land out of id order
                await upsert(conn, corps[k % 3], f"w{k}-{i}b")

    seen: list[str] = []
    writers = asyncio.gather(*(writer(k) for k in range(4)))
    cursor, pages = 0, 0
    while not writers.done() or pages == 0 or (await read_once(pool, ChangeQuery(after=cursor))).items:
        page = await read_once(pool, ChangeQuery(after=cursor, limit=7))  # a new consumer each time: only the cursor
        seen += [e["id"] for e in page.items]
        cursor, pages = page.cursor, pages + 1
        await asyncio.sleep(0.003)
    await writers
    seen += [e["id"] for e in (await read_once(pool, ChangeQuery(after=cursor, limit=1000))).items]
    assert seen == await change_ids(pool)
    assert len(seen) == 4 * 15 * 2


async def test_a_long_poll_answers_as_soon_as_a_change_commits(pool: asyncpg.Pool, db_url: str) -> None:
    corp = await corp_row(pool)
    watch = ChangeWatch(db_url)
    await watch.start()
    try:
        started = time.monotonic()
        poll = asyncio.create_task(read_changes(pool, ChangeQuery(wait=10), watch))
        await asyncio.sleep(0.3)
        assert not poll.done()
        await upsert(pool, corp, "u1")
        page = await asyncio.wait_for(poll, 5)
        assert [e["objectId"] for e in page.items] == ["u1"]
        assert time.monotonic() - started < 3
        empty = await read_changes(pool, ChangeQuery(after=page.cursor, wait=0.2), watch)
        assert (empty.items, empty.cursor) == ([], page.cursor)
    finally:
        await watch.close()


async def test_notify_arrives_after_commit_never_before(pool: asyncpg.Pool, db_url: str) -> None:
    corp = await corp_row(pool)
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(db_url)
    await listener.add_listener(CHANNEL, lambda conn, pid, channel, payload: heard.put_nowait(payload))
    try:
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            await upsert(conn, corp, "u1")
            await upsert(conn, corp, "u2")
            await asyncio.sleep(0.5)
            assert heard.empty()
            await transaction.commit()
        payloads = [await asyncio.wait_for(heard.get(), 5), await asyncio.wait_for(heard.get(), 5)]
        ids = await change_ids(pool)
        assert payloads == ids  # one per statement; the last names the batch's last change
        assert await pool.fetchval("SELECT count(*) FROM change_log WHERE id <= $1", int(payloads[-1])) == 2
    finally:
        await listener.close()
