"""Full sync end to end: the real WeCom client against the upstream simulator, into real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import asyncpg
import pytest

from handlers.clients.base import RetryPolicy
from handlers.clients.wecom import WecomClient, inner_client
from handlers.clients.wiring import Wiring
from handlers.config import WecomInnerCorp
from handlers.store.corps import ensure_corp
from handlers.sync.fullsync import RunStatus, SyncResult, run_full_sync
from receiver.testing import SimOrg, Simulator, generate_org, mutations, run_simulator
from tests.support.clients import wecom_config
from tests.support.directory import fingerprint

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, timeout=5.0)


@dataclass
class Rig:
    sim: Simulator
    org: SimOrg
    corp: WecomInnerCorp
    client: WecomClient
    pool: asyncpg.Pool
    row: int

    async def sync(self, *, allow_deletes: bool = False) -> SyncResult:
        return await run_full_sync(
            self.pool, self.row, self.corp, self.client, trigger="manual", allow_deletes=allow_deletes
        )


@pytest.fixture
async def rig(pool: asyncpg.Pool) -> AsyncIterator[Rig]:
    sim = Simulator(seed=3)
    org = generate_org(3, members=60, departments=8, depth=3, tags=3)
    account = sim.add_wecom_corp(org, contact_new_ip=False, privacy=False)
    async with run_simulator(sim), aiohttp.ClientSession() as session:
        corp = wecom_config(sim, account, contact=True)
        async with pool.acquire() as conn:
            row = await ensure_corp(conn, corp)
        yield Rig(sim, org, corp, inner_client(corp, Wiring.of(session, pool, retry=FAST)), pool, row)


async def test_first_sync_mirrors_the_org_and_a_resync_writes_nothing(rig: Rig) -> None:
    first = await rig.sync()
    assert first.status is RunStatus.SUCCEEDED
    assert first.counts["members"]["created"] == len(rig.org.members)
    assert first.counts["departments"]["created"] == len(rig.org.departments)
    assert first.api_calls == sum(rig.sim.calls.values())
    multi = sum(len(m.departments) for m in rig.org.members.values())
    assert await rig.pool.fetchval("SELECT count(*) FROM member_departments") == multi
    assert await rig.pool.fetchval("SELECT count(*) FROM tags") == len(rig.org.tags)
    before = await fingerprint(rig.pool)
    again = await rig.sync()
    assert again.status is RunStatus.SUCCEEDED
    assert again.changes == 0
    assert await fingerprint(rig.pool) == before


async def test_upstream_changes_are_reconciled(rig: Rig) -> None:
    leaf = mutations.add_department(rig.org, parent_id=1, name="Temp")
    del leaf
    await rig.sync()
    temp = next(d.id for d in rig.org.departments.values() if d.name == "Temp")
    mover = next(iter(rig.org.members))
    leaver = list(rig.org.members)[-1]
    mutations.move_member(rig.org, mover, [temp])
    mutations.remove_member(rig.org, leaver)
    mutations.rename_department(rig.org, 2, "Renamed")
    mutations.add_member(rig.org, "newbie", name="New", departments=[2])
    result = await rig.sync()
    assert result.status is RunStatus.SUCCEEDED
    assert result.counts["members"]["created"] == 1
    assert result.counts["members"]["offlined"] == 1
    assert result.counts["members"]["updated"] >= 1
    assert await rig.pool.fetchval("SELECT name FROM departments WHERE dept_id = '2'") == "Renamed"
    assert await rig.pool.fetchval("SELECT status FROM members WHERE user_id = $1", leaver) == "offline"
    depts = await rig.pool.fetchval(
        "SELECT array_agg(md.dept_id) FROM member_departments md JOIN members m ON m.id = md.member "
        "WHERE m.user_id = $1",
        mover,
    )
    assert depts == [str(temp)]
    mutations.move_member(rig.org, mover, [2])
    mutations.remove_department(rig.org, temp)
    result = await rig.sync()
    assert result.counts["departments"]["deleted"] == 1


async def test_token_expiry_mid_sync_is_survived(rig: Rig) -> None:
    rig.sim.latency = 0.005

    async def expire_after_some_pages() -> None:
        while rig.sim.calls["wecom:user/list"] < 3:  # noqa: ASYNC110 - the simulator has no hook to await
            await asyncio.sleep(0.001)
        rig.sim.expire_tokens()

    expiring = asyncio.create_task(expire_after_some_pages())
    result = await rig.sync()
    await expiring
    assert result.status is RunStatus.SUCCEEDED
    assert result.counts["members"]["created"] == len(rig.org.members)
    assert rig.sim.calls["wecom:gettoken"] >= 2


async def test_rate_limit_answers_mid_sync_are_retried(rig: Rig) -> None:
    rig.sim.fail("wecom:user/list", times=4, errcode=45009, errmsg="api freq out of limit")
    result = await rig.sync()
    assert result.status is RunStatus.SUCCEEDED
    assert result.counts["members"]["created"] == len(rig.org.members)
    assert rig.sim.errors[("wecom:user/list", 45009)] == 4
    run = await rig.pool.fetchrow("SELECT api_calls FROM sync_runs WHERE id = $1", result.run_id)
    assert run["api_calls"] == sum(rig.sim.calls.values())


async def test_a_department_that_keeps_failing_quarantines_the_removals(rig: Rig) -> None:
    await rig.sync()
    dept = next(d for d, users in rig.org.dept_members.items() if d != 1 and users)
    only_there = next(u for u in rig.org.dept_members[dept] if len(rig.org.members[u].departments) == 1)
    rig.sim.fail_department(dept)
    result = await rig.sync()
    assert result.status is RunStatus.QUARANTINED
    assert result.held is not None
    assert result.held.failed_departments == (str(dept),)
    assert only_there in result.held.members
    assert await rig.pool.fetchval("SELECT status FROM members WHERE user_id = $1", only_there) == "active"
    rig.sim.clear_faults()
    assert (await rig.sync()).status is RunStatus.SUCCEEDED


async def test_unreachable_upstream_records_a_failed_run(rig: Rig) -> None:
    rig.sim.fail("wecom:gettoken", times=10, kind="http500")
    result = await rig.sync()
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "gettoken" in result.error
    assert result.api_calls == sum(rig.sim.calls.values())
    assert await rig.pool.fetchval("SELECT count(*) FROM members") == 0
    row = await rig.pool.fetchrow("SELECT status, api_calls FROM sync_runs WHERE id = $1", result.run_id)
    assert tuple(row) == ("failed", result.api_calls)


async def test_a_part_that_could_not_be_fetched_makes_the_run_quarantined_not_succeeded(rig: Rig) -> None:
    first = await rig.sync()
    assert first.status is RunStatus.SUCCEEDED
    tags_before = await rig.pool.fetchval("SELECT count(*) FROM tag_members")
    rig.sim.fail("wecom:tag/list", times=100, kind="errcode", errcode=60011)
    mutations.add_member(rig.org, "newcomer", departments=[rig.org.visible_root])
    second = await rig.sync()
    assert second.status is RunStatus.QUARANTINED
    assert second.error is not None and "tags" in second.error and "60011" in second.error
    row = await rig.pool.fetchrow("SELECT status, error FROM sync_runs WHERE id = $1", second.run_id)
    assert row["status"] == "quarantined" and "not fetched" in row["error"]
    # What was fetched is applied; what was not is left as it was.
    assert await rig.pool.fetchval("SELECT count(*) FROM members WHERE user_id = 'newcomer'") == 1
    assert await rig.pool.fetchval("SELECT count(*) FROM tag_members") == tags_before
