"""Drift detection: heartbeat gaps, member counts, DingTalk failed-events lists (real client, simulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from handlers.clients.dingtalk_records import FailedEvent
from handlers.config import AppConfig, DingTalkCorp
from handlers.store.corps import ensure_corp
from handlers.sync import drift
from receiver.runtime import build_worker
from receiver.testing import SimOrg, Simulator, generate_org, mutations, run_simulator
from receiver.testing.accounts import DingTalkApp
from tests.support.clients import dingtalk_config
from tests.support.eventkit import FAST, StubPlatform, make_corp, member, push, sync_reason, until, wecom_xml, worker

GAP = timedelta(minutes=5)


async def test_the_first_beat_of_a_fresh_database_is_not_a_gap(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    async with pool.acquire() as conn:
        assert not await drift.beat(conn, "p1", GAP)
        assert not await drift.beat(conn, "p1", GAP)
    assert await sync_reason(pool, corp) is None


async def test_a_silence_longer_than_the_gap_requests_a_sync_of_every_active_corp(pool: asyncpg.Pool) -> None:
    active = await make_corp(pool)
    disabled = await make_corp(pool, "Old", corp_id="wwold")
    await pool.execute("UPDATE corps SET status = 'disabled' WHERE id = $1", disabled)
    await pool.execute("INSERT INTO heartbeats (process, beat_at) VALUES ('gone', now() - interval '10 minutes')")
    async with pool.acquire() as conn:
        assert await drift.beat(conn, "p2", GAP)
        assert not await drift.beat(conn, "p2", GAP)  # beating again: no new gap
    assert await sync_reason(pool, active) == "gap"
    assert await sync_reason(pool, disabled) is None


async def test_another_live_receiver_means_no_gap(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await pool.execute(
        "INSERT INTO heartbeats (process, beat_at) VALUES ('old', now() - interval '1 hour'), ('alive', now())"
    )
    async with pool.acquire() as conn:
        assert not await drift.beat(conn, "new", GAP)
    assert await sync_reason(pool, corp) is None


async def test_forgetting_a_process_prunes_stale_rows(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO heartbeats (process, beat_at) VALUES ('me', now()), ('ancient', now() - interval '8 days'),"
        " ('recent', now() - interval '1 day')"
    )
    async with pool.acquire() as conn:
        await drift.forget_process(conn, "me")
    assert [r["process"] for r in await pool.fetch("SELECT process FROM heartbeats")] == ["recent"]


async def test_the_running_worker_beats(pool: asyncpg.Pool) -> None:
    from handlers.worker.loop import running

    w = worker(pool)
    async with running(w):
        await until(lambda: _beating(pool, w.process))
    assert await pool.fetchval("SELECT count(*) FROM heartbeats WHERE process = $1", w.process) == 0


async def _beating(pool: asyncpg.Pool, process: str) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM heartbeats WHERE process = $1", process))


# -- member counts ---------------------------------------------------------------------------------


async def test_member_counts_that_agree_or_are_unknown_mark_nothing(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await pool.execute("INSERT INTO members (corp, user_id) VALUES ($1, 'a'), ($1, 'b')", corp)
    async with pool.acquire() as conn:
        assert not await drift.compare_member_count(conn, corp, "HQ", StubPlatform(count=2))
        assert not await drift.compare_member_count(conn, corp, "HQ", StubPlatform(count=None))
    assert await sync_reason(pool, corp) is None


async def test_a_member_count_that_disagrees_requests_a_sync(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await pool.execute("INSERT INTO members (corp, user_id) VALUES ($1, 'a')", corp)
    async with pool.acquire() as conn:
        assert await drift.compare_member_count(conn, corp, "HQ", StubPlatform(count=5))
    assert await sync_reason(pool, corp) == "member_count"


async def test_the_count_check_waits_for_pending_events(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await push(pool, wecom_xml("create_user", UserID="u1", Name="U1"), corp=corp)
    async with pool.acquire() as conn:
        assert not await drift.compare_member_count(conn, corp, "HQ", StubPlatform(count=1))
    await worker(pool).run_until_idle()
    async with pool.acquire() as conn:
        assert not await drift.compare_member_count(conn, corp, "HQ", StubPlatform(count=1))
    assert await sync_reason(pool, corp) is None


# -- DingTalk failed-events list -------------------------------------------------------------------


def _failed(tag: str, inner: dict[str, Any], when: int = 1606126433000) -> FailedEvent:
    entry = {"call_back_tag": tag, "event_time": when, tag: inner}
    return FailedEvent(tag, when, orjson.dumps(entry).decode())


async def test_failed_entries_go_to_the_inbox_once_and_mark_drift(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool, "Sales", platform="dingtalk", corp_id="dingx")
    batch = [
        _failed("user_leave_org", {"userid": ["a"], "corpid": "dingx"}),
        _failed("org_dept_remove", {"deptid": [9]}),
    ]
    assert await drift.persist_failed_entries(pool, corp, "Sales", batch) == 2
    assert await drift.persist_failed_entries(pool, corp, "Sales", batch) == 0  # the same entries again: deduped
    rows = await pool.fetch("SELECT route, event_type, body FROM inbox ORDER BY id")
    assert [(r["route"], r["event_type"]) for r in rows] == [
        ("dingtalk-failed", "user_leave_org"),
        ("dingtalk-failed", "org_dept_remove"),
    ]
    assert orjson.loads(rows[0]["body"])["call_back_tag"] == "user_leave_org"  # the raw entry is kept
    assert await sync_reason(pool, corp) == "failed_events"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator() as running:
        yield running


async def sales(pool: asyncpg.Pool, sim: Simulator, org: SimOrg) -> tuple[DingTalkApp, DingTalkCorp, int]:
    """``org`` as the DingTalk corp "Sales": its simulated app, its config and its corps row."""
    app = sim.add_dingtalk_app(org)
    config = dingtalk_config(sim, app)
    async with pool.acquire() as conn:
        return app, config, await ensure_corp(conn, config)


async def test_the_worker_drains_the_failed_list_and_applies_it(pool: asyncpg.Pool, sim: Simulator) -> None:
    org = generate_org(7, members=20, departments=4, depth=2)
    app, corp_config, corp = await sales(pool, sim, org)
    added = mutations.add_member(org, name="新员工")
    for plaintext in added.dingtalk:  # the receiver was down: DingTalk parks the event in the failed list
        sim.drop(app.app_key, plaintext)
    async with aiohttp.ClientSession() as session:
        w = build_worker(pool, AppConfig(".", {"Sales": corp_config}, {}), session, FAST)
        await w.duties.check_corps(failed_lists=True, counts=False)
        assert await w.run_until_idle() == 1
        await w.duties.check_corps(failed_lists=True, counts=False)  # nothing left upstream
    row = await member(pool, corp, str(added.subject))
    assert row is not None and (row["name"], row["status"]) == ("新员工", "active")
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE route = 'dingtalk-failed'") == 1
    assert await sync_reason(pool, corp) == "failed_events"


async def test_the_worker_compares_member_counts_with_the_platform(pool: asyncpg.Pool, sim: Simulator) -> None:
    org = generate_org(8, members=10, departments=2, depth=2)
    _, corp_config, corp = await sales(pool, sim, org)
    async with aiohttp.ClientSession() as session:
        await build_worker(pool, AppConfig(".", {"Sales": corp_config}, {}), session, FAST).duties.check_corps(
            failed_lists=False, counts=True
        )
    assert await sync_reason(pool, corp) == "member_count"  # 10 upstream, none here yet
