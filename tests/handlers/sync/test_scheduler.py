"""The full-sync scheduler: start-up, schedule, drift (debounced), retries, coalescing across processes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from handlers.config import CallbackKeys, CorpConfig, Secret, SyncSettings, WecomInnerCorp
from handlers.errors import UnknownCorp, UpstreamError
from handlers.model import Department, Member, Membership, Snapshot
from handlers.store.corps import ensure_corp, request_sync
from handlers.store.locks import FULL_SYNC_LOCK
from handlers.sync.fullsync import RunStatus
from handlers.sync.scheduler import CorpSyncState, SchedulerSettings, SyncScheduler, due

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SETTINGS = SchedulerSettings(poll_seconds=0.05, debounce_seconds=60, retry_seconds=60, max_retry_seconds=600)


def corp_config(name: str = "HQ", **sync: Any) -> WecomInnerCorp:
    keys = CallbackKeys(Secret("token"), Secret("k" * 43), frozenset({"ww1"}))
    return WecomInnerCorp(
        name=name,
        title=name,
        corp_id="ww1",
        agent_id=None,
        secret=Secret("s"),
        contact_secret=None,
        callback=keys,
        sync=SyncSettings(**sync),
    )


SNAPSHOT = Snapshot("1", (Department("1", None, "HQ"),), (Member("u1", "One", (Membership("1"),)),), api_calls=3)


class Source:
    """Stands in for a platform client; counts fetches, may fail or wait on a gate."""

    def __init__(self, result: Snapshot | Exception = SNAPSHOT, gate: asyncio.Event | None = None) -> None:
        self.result = result
        self.gate = gate
        self.calls = 0

    async def fetch_snapshot(self, progress: Any = None) -> Snapshot:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def state(**kw: Any) -> CorpSyncState:
    base: dict[str, Any] = {
        "now": NOW,
        "running": False,
        "last_started_at": NOW - timedelta(minutes=10),
        "last_good_at": NOW - timedelta(minutes=9),
        "failures": 0,
        "requested_at": None,
    }
    base.update(kw)
    return CorpSyncState(**base)


@pytest.mark.parametrize(
    ("case", "kw", "startup", "expected"),
    [
        ("never synced", {"last_started_at": None, "last_good_at": None}, False, "first"),
        ("fresh", {}, True, None),
        ("older than max age at start-up", {"last_good_at": NOW - timedelta(hours=25)}, True, "startup"),
        ("schedule elapsed", {"last_good_at": NOW - timedelta(hours=6)}, False, "schedule"),
        ("drift inside debounce", {"last_started_at": NOW - timedelta(seconds=30), "requested_at": NOW}, False, None),
        ("drift after debounce", {"requested_at": NOW - timedelta(seconds=5)}, False, "drift"),
        ("failed, backing off", {"failures": 2, "last_started_at": NOW - timedelta(seconds=100)}, False, None),
        ("failed, retry due", {"failures": 2, "last_started_at": NOW - timedelta(seconds=120)}, False, "retry"),
        ("failed first sync", {"failures": 1, "last_good_at": None}, False, "retry"),
        ("running elsewhere", {"running": True, "last_good_at": None}, True, None),
        (
            "authorized while backing off",
            {"failures": 3, "last_good_at": None, "requested_at": NOW, "requested_reason": "create_auth"},
            False,
            "first",
        ),
        (
            "code reset inside debounce",
            {
                "last_started_at": NOW - timedelta(seconds=30),
                "requested_at": NOW,
                "requested_reason": "reset_permanent_code",
            },
            False,
            "drift",
        ),
        (
            "authorized before the last start",
            {
                "failures": 1,
                "last_started_at": NOW - timedelta(seconds=30),
                "requested_at": NOW - timedelta(seconds=40),
                "requested_reason": "create_auth",
            },
            False,
            None,
        ),
        (
            "authorized, running elsewhere",
            {"running": True, "requested_at": NOW, "requested_reason": "create_auth"},
            False,
            None,
        ),
    ],
)
def test_due_picks_the_trigger(case: str, kw: dict[str, Any], startup: bool, expected: str | None) -> None:
    assert due(state(**kw), SyncSettings(), SETTINGS, startup=startup) == expected, case


def test_due_never_schedules_when_the_schedule_is_off() -> None:
    old = state(last_good_at=NOW - timedelta(days=30))
    assert due(old, SyncSettings(schedule_seconds=None), SETTINGS, startup=False) is None


async def registered(pool: asyncpg.Pool, corp: CorpConfig) -> int:
    async with pool.acquire() as conn:
        return await ensure_corp(conn, corp)


async def runs(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    return [(r["trigger"], r["status"]) for r in await pool.fetch("SELECT * FROM sync_runs ORDER BY id")]


async def test_tick_syncs_a_never_synced_corp_once_then_serves_drift_after_the_debounce(pool: asyncpg.Pool) -> None:
    corp = corp_config()
    row = await registered(pool, corp)
    source = Source()
    scheduler = SyncScheduler(pool, {"HQ": corp}, lambda _: source, SETTINGS)
    assert await scheduler.tick(startup=True) == ["HQ"]
    await scheduler.request("HQ")
    assert await scheduler.tick() == []
    async with pool.acquire() as conn:
        await request_sync(conn, row, "unknown user in event")
    assert await scheduler.tick() == []  # the last run started moments ago
    await pool.execute("UPDATE sync_runs SET started_at = started_at - interval '2 minutes'")
    assert await scheduler.tick() == ["HQ"]
    result = await scheduler.request("HQ")
    assert result.status is RunStatus.SUCCEEDED
    assert await runs(pool) == [("first", "succeeded"), ("drift", "succeeded")]
    assert await pool.fetchval("SELECT sync_requested_at FROM corps") is None
    assert source.calls == 2


async def test_requests_while_a_sync_runs_get_the_running_task(pool: asyncpg.Pool) -> None:
    corp = corp_config()
    await registered(pool, corp)
    gate = asyncio.Event()
    scheduler = SyncScheduler(pool, {"HQ": corp}, lambda _: Source(gate=gate), SETTINGS)
    first = scheduler.request("HQ", "api")
    second = scheduler.request("HQ", "manual")
    assert first is second
    assert scheduler.running() == {"HQ"}
    gate.set()
    assert (await first).trigger == "api"
    assert scheduler.running() == frozenset()
    with pytest.raises(UnknownCorp):
        scheduler.request("Nope")


async def test_a_run_in_another_process_is_seen_and_coalesced(pool: asyncpg.Pool, db_url: str) -> None:
    corp = corp_config()
    row = await registered(pool, corp)
    other = await asyncpg.connect(db_url)  # another process holding the corp's sync lock
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1::int, $2::int)", FULL_SYNC_LOCK, row)
        scheduler = SyncScheduler(pool, {"HQ": corp}, lambda _: Source(), SETTINGS)
        assert await scheduler.tick(startup=True) == []
        result = await scheduler.request("HQ", "manual")
        assert result.status is RunStatus.ALREADY_RUNNING
    finally:
        await other.close()
    assert await scheduler.tick() == ["HQ"]


async def test_failures_are_recorded_and_retried_with_backoff_without_stopping_the_loop(pool: asyncpg.Pool) -> None:
    corp = corp_config()
    await registered(pool, corp)
    source = Source(UpstreamError("gettoken", None, "network"))
    scheduler = SyncScheduler(pool, {"HQ": corp}, lambda _: source, SETTINGS)
    stop = asyncio.Event()
    loop = asyncio.create_task(scheduler.run(stop))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if await pool.fetchval("SELECT count(*) FROM sync_runs WHERE status = 'failed'"):
            break
    await asyncio.sleep(0.2)  # several more polls: the backoff keeps it from retrying at once
    assert await runs(pool) == [("first", "failed")]
    await pool.execute("UPDATE sync_runs SET started_at = started_at - interval '61 seconds'")
    source.result = SNAPSHOT
    for _ in range(100):
        await asyncio.sleep(0.05)
        if len(await runs(pool)) == 2 and not scheduler.running():
            break
    stop.set()
    await loop
    assert await runs(pool) == [("first", "failed"), ("retry", "succeeded")]


async def test_a_sync_requested_by_create_auth_runs_at_once_despite_the_backoff(pool: asyncpg.Pool) -> None:
    """A 代开发 tenant configured in the app dir fails its first sync (no permanent code yet); the create_auth that
    brings the code asks for a sync, which must not wait out the failed-sync backoff (60 s, doubling)."""
    corp = corp_config("T1")
    row = await registered(pool, corp)
    source = Source(UpstreamError("service/get_corp_token", None, "no permanent code stored"))
    scheduler = SyncScheduler(pool, {"T1": corp}, lambda _: source, SETTINGS)
    assert await scheduler.tick(startup=True) == ["T1"]
    assert (await scheduler.request("T1")).status is RunStatus.FAILED
    async with pool.acquire() as conn:
        await request_sync(conn, row, "unknown_department")
    assert await scheduler.tick() == []  # an ordinary request waits for the backoff
    source.result = SNAPSHOT
    async with pool.acquire() as conn:
        await request_sync(conn, row, "create_auth")
    assert await scheduler.tick() == ["T1"]
    assert (await scheduler.request("T1")).status is RunStatus.SUCCEEDED
    assert await runs(pool) == [("first", "failed"), ("first", "succeeded")]
    assert await scheduler.tick() == []  # served: no second run


async def test_a_crashing_client_factory_becomes_a_failed_result(pool: asyncpg.Pool) -> None:
    corp = corp_config()
    await registered(pool, corp)

    def broken(_: CorpConfig) -> Source:
        raise RuntimeError("no session")

    scheduler = SyncScheduler(pool, {"HQ": corp}, broken, SETTINGS)
    result = await scheduler.request("HQ")
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "no session" in result.error


async def test_stopping_the_loop_cancels_a_running_sync_and_records_it(pool: asyncpg.Pool) -> None:
    corp = corp_config()
    await registered(pool, corp)
    source = Source(gate=asyncio.Event())  # never opens
    scheduler = SyncScheduler(pool, {"HQ": corp}, lambda _: source, SETTINGS)
    stop = asyncio.Event()
    loop = asyncio.create_task(scheduler.run(stop))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if source.calls:
            break
    stop.set()
    await loop
    assert await runs(pool) == [("first", "failed")]
    assert await pool.fetchval("SELECT error FROM sync_runs") == "cancelled"


async def test_a_wake_starts_a_look_for_due_corps_before_the_next_poll(pool: asyncpg.Pool) -> None:
    slow_poll = SchedulerSettings(poll_seconds=60, wake_seconds=0.05)
    scheduler = SyncScheduler(pool, {}, lambda _: Source(), slow_poll)
    stop = asyncio.Event()
    loop = asyncio.create_task(scheduler.run(stop))
    try:
        await asyncio.sleep(0.1)  # the first look found nothing to sync
        tenant = corp_config("Suite/ww9")
        await registered(pool, tenant)
        scheduler.update_corps({"Suite/ww9": tenant})
        scheduler.wake()
        for _ in range(200):
            if await runs(pool) == [("first", "succeeded")]:
                break
            await asyncio.sleep(0.02)
        assert await runs(pool) == [("first", "succeeded")]
    finally:
        stop.set()
        await loop


async def test_startup_syncs_a_corp_whose_last_good_sync_is_too_old(pool: asyncpg.Pool) -> None:
    corp = corp_config(max_age_seconds=3600, schedule_seconds=None)
    row = await registered(pool, corp)
    await pool.execute(
        "INSERT INTO sync_runs (corp, trigger, status, started_at, finished_at) "
        "VALUES ($1, 'manual', 'succeeded', now() - interval '2 hours', now() - interval '2 hours')",
        row,
    )
    scheduler = SyncScheduler(pool, {"HQ": corp}, lambda _: Source(), SETTINGS)
    assert await scheduler.tick(startup=False) == []
    assert await scheduler.tick(startup=True) == ["HQ"]
    assert (await scheduler.request("HQ")).trigger == "startup"


async def test_corps_added_later_are_served(pool: asyncpg.Pool) -> None:
    scheduler = SyncScheduler(pool, {}, lambda _: Source(), SETTINGS)
    assert await scheduler.tick(startup=True) == []
    tenant = corp_config("Suite/ww9")
    await registered(pool, tenant)
    scheduler.update_corps({"Suite/ww9": tenant})
    assert await scheduler.tick() == ["Suite/ww9"]
    assert (await scheduler.request("Suite/ww9")).status is RunStatus.SUCCEEDED


async def test_suite_tenants_authorized_at_run_time_are_discovered_and_synced(pool: asyncpg.Pool) -> None:
    from handlers.config import AppConfig, SuiteAuth
    from handlers.store.corps import runtime_tenants

    auth = SuiteAuth("Suite", "Suite", "dk1", Secret("s"), Secret("t"), Secret("k" * 43), None)
    config = AppConfig(root="/app", corps={"HQ": corp_config()}, auths={"Suite": auth})
    await pool.execute(
        "INSERT INTO corps (name, platform, type, corp_id, auth_name, status) VALUES"
        " ('Suite/ww7', 'wecom', 'corps.QywxProxyType', 'ww7', 'Suite', 'active'),"
        " ('Suite/ww8', 'wecom', 'corps.QywxProxyType', 'ww8', 'Suite', 'disabled')"
    )
    found = await runtime_tenants(pool, config)
    assert list(found) == ["Suite/ww7"]
    assert (found["Suite/ww7"].corp_id, found["Suite/ww7"].auth) == ("ww7", auth)

    async def discover() -> dict[str, CorpConfig]:
        return dict(await runtime_tenants(pool, config))

    await registered(pool, config.corps["HQ"])
    scheduler = SyncScheduler(pool, config.corps, lambda _: Source(), SETTINGS, discover=discover)
    assert sorted(await scheduler.tick(startup=True)) == ["HQ", "Suite/ww7"]
