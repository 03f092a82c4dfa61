"""Full sync beside the worker: an event of the corp applied while the sync's transaction runs never fails it.

The worker's transaction writes directory rows, then asks for a sync (the corps row); the sync's writes the
directory rows, then the corps row (its root department). Each test holds the worker's transaction (or one
locking the corps row) open at the step that matters and lets the sync run into it.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from handlers.config import WecomProxyCorp
from handlers.model import Department, Snapshot
from handlers.store.corps import ensure_corp, request_sync
from handlers.store.directory import Directory, Source
from handlers.sync.fullsync import RunStatus, run_full_sync
from tests.handlers.sync.test_fullsync import Source as SnapshotSource
from tests.handlers.sync.test_fullsync import corp_config, member, org
from tests.support.eventkit import SUITE, StubPlatform, push, wecom_xml, worker


async def waiting_for_a_lock(pool: asyncpg.Pool, besides: int, backends: int = 1) -> None:
    """Return once ``backends`` backends other than ``besides`` (and this one) wait for a lock."""
    for _ in range(500):
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> $1 "
            "AND pid <> pg_backend_pid() AND datname = current_database()",
            besides,
        )
        if waiting >= backends:
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


async def test_an_event_of_a_member_a_first_sync_is_inserting_waits_for_it_and_fails_no_attempt(
    pool: asyncpg.Pool,
) -> None:
    """bench/tenants.py: a suite tenant's update_user (UserID and Alias only) applied while the tenant's first sync
    inserts that member. The event reads the member from the platform (it is not here yet), its write waits for
    the sync's insert and then finds the member stored with the same values: nothing to write, and no NULL member
    in its memberships (NotNullViolationError, an attempt counted, before)."""
    tenant = "wwd9e211dc5338c645"
    corp = WecomProxyCorp(name=f"Suite/{tenant}", title="Tenant", corp_id=tenant, auth=SUITE)
    u1 = member("u1", "2", alias="a0", open_user_id="wo0000000000000001")
    depts = (Department("1", None, "HQ"), Department("2", "1", "R&D", order=1))
    snapshot = Snapshot("1", depts, (u1, member("u2", "2")), api_calls=3)
    async with pool.acquire() as conn:
        row = await ensure_corp(conn, corp)
    inbox_id = await push(
        pool, wecom_xml("update_user", tenant, UserID="u1", Alias="a0"), stream=corp.name, route="wecom-suite-data"
    )
    async with pool.acquire() as blocker:
        async with blocker.transaction():  # the sync inserts its rows, then waits here to set the root department
            await blocker.execute("SELECT 1 FROM corps WHERE id = $1 FOR NO KEY UPDATE", row)
            syncing = asyncio.create_task(run_full_sync(pool, row, corp, SnapshotSource(snapshot), trigger="first"))
            await waiting_for_a_lock(pool, blocker.get_server_pid())
            applying = asyncio.create_task(worker(pool, StubPlatform(members={"u1": u1})).run_until_idle())
            await waiting_for_a_lock(pool, blocker.get_server_pid(), backends=2)  # the event waits for the sync
        result = await asyncio.wait_for(syncing, 30)
        await asyncio.wait_for(applying, 30)
    assert result.status is RunStatus.SUCCEEDED, result.error
    settled = await pool.fetchrow("SELECT status, attempts, last_error FROM inbox WHERE id = $1", inbox_id)
    assert tuple(settled) == ("done", 0, None)
    assert await pool.fetchval("SELECT count(*) FROM change_log WHERE source = 'event'") == 0
    stored = await pool.fetchrow(
        "SELECT alias, ARRAY(SELECT dept_id FROM member_departments WHERE member = m.id) AS depts, local_user"
        " FROM members m WHERE user_id = 'u1'"
    )
    assert (stored["alias"], stored["depts"]) == ("a0", ["2"]) and stored["local_user"] is not None
