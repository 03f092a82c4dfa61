"""The group-committing inbox writer."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

import asyncpg
import pytest

from handlers.errors import StoreUnavailable
from handlers.store import pool as db
from handlers.store.inbox import ROWS_PER_STATEMENT, inbox_values_of, insert_inbox_rows
from receiver.callbacks.intake import InboxRecord, Intake
from receiver.errors import EnvelopeError
from receiver.ops.metrics import Metrics


def record(key: str, stream: str = "HQ") -> InboxRecord:
    return InboxRecord(
        stream=stream,
        platform="wecom",
        route="wecom",
        corp=None,
        dedupe_key=key,
        event_type="create_user",
        query={"msg_signature": "x", "timestamp": "1", "nonce": "n"},
        body=b"<xml/>",
        plaintext=f"<xml><UserID>{key}</UserID></xml>".encode(),
    )


async def test_submit_commits_before_returning(pool: asyncpg.Pool) -> None:
    intake = Intake(pool)
    intake.start()
    try:
        assert await intake.submit(record("a")) is True
        row = await pool.fetchrow("SELECT stream, status, query, body, plaintext FROM inbox WHERE dedupe_key = 'a'")
        assert row["status"] == "pending"
        assert (row["body"], row["plaintext"]) == ("<xml/>", "<xml><UserID>a</UserID></xml>")
        assert row["query"]["nonce"] == "n"
        assert await pool.fetchval("SELECT count(*) FROM inbox_streams WHERE stream = 'HQ'") == 1
    finally:
        await intake.close()


async def test_duplicate_is_reported_and_not_stored_twice(pool: asyncpg.Pool) -> None:
    intake = Intake(pool)
    intake.start()
    try:
        assert await intake.submit(record("a")) is True
        assert await intake.submit(record("a")) is False
        assert await intake.submit(record("a", stream="Other")) is True
        assert await pool.fetchval("SELECT count(*) FROM inbox") == 2
    finally:
        await intake.close()


async def test_concurrent_submits_share_transactions_and_repeats_in_a_group_count_once(pool: asyncpg.Pool) -> None:
    metrics = Metrics()
    intake = Intake(pool, metrics=metrics, max_in_flight=2)
    intake.start()
    try:
        keys = [f"k{i}" for i in range(400)] + ["k1", "k2"]
        results = await asyncio.gather(*(intake.submit(record(k)) for k in keys))
        assert sum(results) == 400
        assert await pool.fetchval("SELECT count(*) FROM inbox") == 400
        batches = metrics.registry.get_sample_value("corpsync_inbox_commit_batch_size_count")
        assert batches is not None and batches < 100  # grouped, not one transaction per callback
        # ...but in groups of at most 16, so some can commit while the others are being filled
        assert metrics.registry.get_sample_value("corpsync_inbox_commit_batch_size_bucket", {"le": "16.0"}) == batches
    finally:
        await intake.close()


async def test_at_most_two_groups_are_at_the_database_at_once(pool: asyncpg.Pool) -> None:
    """The intake keeps the connections it used; under a burst it has used no more than two."""
    idle_before = pool.get_idle_size() + (pool.get_max_size() - pool.get_size())  # free: idle or yet to open
    intake = Intake(pool)
    intake.start()
    try:
        results = await asyncio.gather(*(intake.submit(record(f"k{i}")) for i in range(320)))
        assert all(results)
        held = idle_before - (pool.get_idle_size() + (pool.get_max_size() - pool.get_size()))
        assert held == 2
    finally:
        await intake.close()


@pytest.mark.parametrize(
    "change",
    [
        {"body": b"<xml>\x00</xml>"},
        {"plaintext": b"a\x00"},
        {"plaintext": "\u5f20\u4e09".encode("utf-16")},  # not UTF-8
        {"body": b"<xml>\xff</xml>"},
        {"query": {"msg_signature": "x", "extra": "\x00"}},
        {"event_type": "\ud800"},  # a lone surrogate has no UTF-8
    ],
)
async def test_a_record_the_inbox_cannot_hold_is_refused_alone(pool: asyncpg.Pool, change: dict[str, Any]) -> None:
    intake = Intake(pool, linger=0.05)
    intake.start()
    try:
        first = intake.submit(record("first"))
        bad = intake.submit(record("bad")._replace(**change))
        last = intake.submit(record("last"))
        assert await first is True
        with pytest.raises(EnvelopeError):
            await bad
        assert await last is True
    finally:
        await intake.close()
    assert await pool.fetchval("SELECT array_agg(dedupe_key ORDER BY id) FROM inbox") == ["first", "last"]


async def test_a_query_that_cannot_be_written_is_refused_at_once(pool: asyncpg.Pool) -> None:
    intake = Intake(pool)
    intake.start()
    try:
        with pytest.raises(EnvelopeError):
            intake.submit(record("a")._replace(query={"x": "\udc80"}))
    finally:
        await intake.close()


async def test_database_down_raises_store_unavailable(db_url: str) -> None:
    pool = await db.create_pool(db_url, min_size=1, max_size=2)
    intake = Intake(pool, timeout=1.0)
    intake.start()
    try:
        await pool.execute("SELECT 1")
        await pool.execute("ALTER TABLE inbox RENAME TO inbox_gone")  # the commit now fails like a broken store
        with pytest.raises(StoreUnavailable):
            await intake.submit(record("a"))
    finally:
        await intake.close()
        await pool.close()


async def test_pool_closed_raises_store_unavailable(db_url: str) -> None:
    pool = await db.create_pool(db_url, min_size=1, max_size=2)
    intake = Intake(pool, timeout=1.0)
    intake.start()
    await pool.close()
    try:
        with pytest.raises(StoreUnavailable):
            await intake.submit(record("a"))
    finally:
        await intake.close()


async def _insert(conn: asyncpg.Connection, *records: InboxRecord) -> list[int]:
    rows = await insert_inbox_rows(conn, inbox_values_of(records))
    return [row["id"] for row in rows]


async def test_a_streams_groups_commit_in_id_order_across_connections(db_url: str) -> None:
    """The worker reads a stream on from its last applied id: a later id must never be visible first."""
    first, second, other = [await db.connect(db_url) for _ in range(3)]
    try:
        tx = first.transaction()
        await tx.start()
        (early,) = await _insert(first, record("a", stream="HQ"))  # id drawn, not yet committed
        blocked = asyncio.create_task(_insert(second, record("b", stream="HQ")))
        free = await asyncio.wait_for(_insert(other, record("c", stream="Sales")), 5)  # other streams go on
        await asyncio.sleep(0.3)
        assert not blocked.done(), "a second group of the stream must wait for the first to commit"
        await tx.commit()
        (late,) = await asyncio.wait_for(blocked, 5)
        assert late > early
        assert free
    finally:
        for conn in (first, second, other):
            await conn.close()


async def test_callback_sized_rows_are_stored_uncompressed_and_inline(pool: asyncpg.Pool) -> None:
    # A WeCom callback row is just over PostgreSQL's default 2 KB compression threshold; compressing the
    # random base64 body on the hot path only burns CPU (migration 0002).
    body = "<xml><Encrypt><![CDATA[" + base64.b64encode(os.urandom(900)).decode() + "]]></Encrypt></xml>"
    plaintext = "<xml><Name><![CDATA[" + "张三" * 200 + "]]></Name></xml>"
    intake = Intake(pool)
    intake.start()
    try:
        big = record("big")._replace(body=body.encode(), plaintext=plaintext.encode())
        assert await intake.submit(big) is True
    finally:
        await intake.close()
    row = await pool.fetchrow(
        "SELECT pg_column_size(i.*) AS size, pg_column_compression(body) AS body, "
        "pg_column_compression(plaintext) AS plaintext FROM inbox i WHERE dedupe_key = 'big'"
    )
    assert row["size"] > 2100
    assert (row["body"], row["plaintext"]) == (None, None)


async def test_a_write_larger_than_one_statement_is_one_transaction(pool: asyncpg.Pool) -> None:
    """insert_inbox_rows splits 40 rows into statements of ROWS_PER_STATEMENT: the new ones come back in order,
    repeats (within a statement or across two) are skipped, and a bad row in the last statement stores nothing."""
    keys = [f"k{i}" for i in range(20)] + ["k3", "k17"] + [f"k{i}" for i in range(20, 38)]
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO inbox_streams (stream) VALUES ('HQ')")
        bad = inbox_values_of([*(record(f"x{i}") for i in range(39)), record("x39")._replace(plaintext=b"a\x00")])
        with pytest.raises(asyncpg.DataError):
            await insert_inbox_rows(conn, bad)
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 0

        stored = await insert_inbox_rows(conn, inbox_values_of(record(k) for k in keys))
    assert len(keys) > 2 * ROWS_PER_STATEMENT
    assert [row["dedupe_key"] for row in stored] == [f"k{i}" for i in range(38)]
    ids = [row["id"] for row in stored]
    assert ids == sorted(ids)
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 38


async def test_a_large_write_takes_its_streams_in_one_order(pool: asyncpg.Pool) -> None:
    """Rows of several streams beyond one statement are stored sorted by stream (each stream's in its own order),
    so every statement takes its streams' locks after those of the statements before it: no deadlock."""
    rows = inbox_values_of(
        [*(record(f"b{i}", stream="B") for i in range(20)), *(record(f"a{i}", stream="A") for i in range(20))]
    )
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO inbox_streams (stream) VALUES ('A'), ('B')")
        stored = await insert_inbox_rows(conn, rows)
    assert [row["dedupe_key"] for row in stored] == [f"a{i}" for i in range(20)] + [f"b{i}" for i in range(20)]


def test_a_group_is_never_more_than_one_statement(pool: asyncpg.Pool) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        Intake(pool, max_batch=ROWS_PER_STATEMENT + 1)
