"""The group-committing inbox writer."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from receiver import db
from receiver.errors import StoreUnavailable
from receiver.intake import InboxRecord, Intake
from receiver.metrics import Metrics


def record(key: str, stream: str = "HQ") -> InboxRecord:
    return InboxRecord(
        stream=stream,
        platform="wecom",
        route="wecom",
        corp=None,
        dedupe_key=key,
        event_type="create_user",
        query={"msg_signature": "x", "timestamp": "1", "nonce": "n"},
        body="<xml/>",
        plaintext=f"<xml><UserID>{key}</UserID></xml>",
    )


async def test_submit_commits_before_returning(pool: asyncpg.Pool) -> None:
    intake = Intake(pool)
    intake.start()
    try:
        assert await intake.submit(record("a")) is True
        row = await pool.fetchrow("SELECT stream, status, query, plaintext FROM inbox WHERE dedupe_key = 'a'")
        assert row["status"] == "pending"
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
