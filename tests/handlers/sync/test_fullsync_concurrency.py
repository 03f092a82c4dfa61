"""Full sync beside the worker: an event of the corp applied while the sync's transaction runs never fails it.

The worker's transaction writes directory rows, then asks for a sync (the corps row); the sync's writes the
directory rows, then the corps row (its root department). Each test holds the worker's transaction open at
the step that matters and lets the sync run into it.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from handlers.store.corps import ensure_corp, request_sync
from handlers.store.directory import Directory, Source
from handlers.sync.fullsync import RunStatus, run_full_sync
from tests.handlers.sync.test_fullsync import Source as SnapshotSource
from tests.handlers.sync.test_fullsync import corp_config, member, org


async def waiting_for_a_lock(pool: asyncpg.Pool, besides: int) -> None:
    """Return once a backend other than ``besides`` (and this one) waits for a lock."""
    for _ in range(500):
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> $1 "
            "AND pid <> pg_backend_pid() AND datname = current_database()",
            besides,
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the sync never waited for the worker's transaction")


async def test_an_event_applied_during_a_first_sync_leaves_both_applied(pool: asyncpg.Pool) -> None:
    """The worker created a member the snapshot also has, then asks for a sync (an unknown department): the
    sync waits for it, and neither deadlocks nor fails on the member the worker committed meanwhile."""
    corp = corp_config()
    async with pool.acquire() as conn:
        row = await ensure_corp(conn, corp)
    async with pool.acquire() as worker, worker.transaction():
        await Directory(worker, row, Source("event")).upsert_member(member("u1", "2", name="from the event"))
        syncing = asyncio.create_task(run_full_sync(pool, row, corp, SnapshotSource(org(4)), trigger="first"))
        await waiting_for_a_lock(pool, worker.get_server_pid())
        await asyncio.wait_for(request_sync(worker, row, "unknown_department"), 10)
    result = await asyncio.wait_for(syncing, 30)
    assert result.status is RunStatus.SUCCEEDED, result.error
    assert await pool.fetchval("SELECT root_dept_id FROM corps WHERE id = $1", row) == "1"
    assert await pool.fetchval("SELECT name FROM members WHERE user_id = 'u1'") == "name-u1"
    assert await pool.fetchval("SELECT count(*) FROM members") == 4


async def test_a_deadlock_with_the_worker_is_retried_by_the_sync(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker's transaction of several events asked for a sync first, then writes a member the sync's
    transaction wrote: PostgreSQL breaks the deadlock by failing the sync's transaction, which runs again."""
    caplog.set_level(logging.INFO, logger="corpsync.fullsync")
    corp = corp_config()
    async with pool.acquire() as conn:
        row = await ensure_corp(conn, corp)
    async with pool.acquire() as worker, worker.transaction():
        await request_sync(worker, row, "unknown_department")
        syncing = asyncio.create_task(run_full_sync(pool, row, corp, SnapshotSource(org(4)), trigger="first"))
        await waiting_for_a_lock(pool, worker.get_server_pid())  # the sync wrote its rows, now wants the corp's
        directory = Directory(worker, row, Source("event"))
        await asyncio.wait_for(directory.upsert_member(member("u1", "2", name="from the event")), 30)
    result = await asyncio.wait_for(syncing, 30)
    assert result.status is RunStatus.SUCCEEDED, result.error
    assert await pool.fetchval("SELECT root_dept_id FROM corps WHERE id = $1", row) == "1"
    assert await pool.fetchval("SELECT count(*) FROM members") == 4
    assert "full_sync_apply_retried" in {getattr(r, "action", None) for r in caplog.records}
