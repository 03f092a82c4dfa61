"""The inbox worker: order per stream, retries and dead letters, one owner per stream, crash safety, latency."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import replace

import asyncpg
import pytest

from handlers.errors import UpstreamError
from handlers.events import Services
from handlers.model import Member
from handlers.worker.apply import describe_error
from handlers.worker.loop import Worker, WorkerSettings, running
from tests.support.eventkit import (
    FAST,
    StubPlatform,
    changes,
    ding_json,
    inbox,
    make_corp,
    member,
    push,
    sync_reason,
    until,
    wecom_xml,
    worker,
)


class SlowPlatform(StubPlatform):
    """Reads take a while and record how many run at once, per user-id prefix (= per stream here)."""

    def __init__(self, delay: float = 0.01) -> None:
        super().__init__()
        self.delay = delay
        self.now: dict[str, int] = defaultdict(int)
        self.peak: dict[str, int] = defaultdict(int)
        self.started = asyncio.Event()
        self.release: asyncio.Event | None = None

    async def member(self, user_id: str) -> Member | None:
        stream = user_id.split("-", 1)[0]
        self.now[stream] += 1
        self.peak[stream] = max(self.peak[stream], self.now[stream])
        self.started.set()
        try:
            if self.release is not None:
                await self.release.wait()
            await asyncio.sleep(self.delay)
        finally:
            self.now[stream] -= 1
        return Member(user_id, name=user_id)


async def test_a_streams_events_apply_in_arrival_order(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    for change in ("create_user", "delete_user"):
        await push(pool, wecom_xml(change, UserID="u1", Name="U1"), corp=corp)
    await push(pool, wecom_xml("update_user", UserID="u1", Position="P"), corp=corp)
    await worker(pool).run_until_idle()
    row = await member(pool, corp, "u1")
    assert row is not None and (row["status"], row["position"]) == ("offline", "P")
    assert [op for _, _, op in await changes(pool, corp)] == ["create", "offline", "update"]


async def test_a_failing_event_blocks_its_stream_but_not_the_others(pool: asyncpg.Pool) -> None:
    hq = await make_corp(pool)
    other = await make_corp(pool, "Other", corp_id="wwother")
    platform = StubPlatform(failing={"stuck"})
    blocked = await push(pool, wecom_xml("create_user", UserID="stuck", Department=[1]), corp=hq)
    behind = await push(pool, wecom_xml("create_user", UserID="next", Name="N"), corp=hq)
    elsewhere = await push(pool, wecom_xml("create_user", UserID="free", Name="F"), stream="Other", corp=other)
    slow = WorkerSettings(backoff_base=60, max_attempts=3, async_commit=False, count_check_interval=0)
    await worker(pool, platform, settings=slow).run_until_idle()
    assert blocked is not None and behind is not None and elsewhere is not None
    first = await inbox(pool, blocked)
    assert (first["status"], first["attempts"]) == ("pending", 1)
    assert first["next_attempt_at"] > await pool.fetchval("SELECT now() + interval '50 seconds'")
    assert (await inbox(pool, behind))["status"] == "pending"  # waits: order matters more than speed
    assert (await inbox(pool, elsewhere))["status"] == "done"
    assert await worker(pool, platform, settings=slow).run_until_idle() == 0  # not due yet: no retry storm


async def test_retries_succeed_once_the_platform_recovers(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    platform = StubPlatform(failing={"u1"}, members={"u1": Member("u1", name="U1")})
    inbox_id = await push(pool, wecom_xml("create_user", UserID="u1"), corp=corp)
    w = worker(pool, platform)
    await w.run_until_idle()
    platform.failing.clear()
    await w.run_until_idle()
    assert inbox_id is not None
    row = await inbox(pool, inbox_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("done", 1, "UpstreamError: member/get errcode=-1")
    assert (await member(pool, corp, "u1") or {"name": None})["name"] == "U1"


async def test_a_failure_rolls_back_everything_the_event_had_written(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    platform = StubPlatform(failing={"bad"})
    inbox_id = await push(pool, wecom_xml("update_tag", TagId=5, AddUserItems="bad"), corp=corp)
    await worker(pool, platform).run_until_idle()
    assert inbox_id is not None and (await inbox(pool, inbox_id))["status"] == "pending"
    assert await pool.fetchval("SELECT count(*) FROM tags") == 0
    assert await pool.fetchval("SELECT count(*) FROM change_log") == 0


async def test_two_processes_never_apply_one_stream_in_parallel(pool: asyncpg.Pool, db_url: str) -> None:
    # WeCom thin creates read the member inside the event's transaction: concurrent reads of one stream
    # would mean concurrent application (DingTalk reads ahead on purpose, so it cannot tell).
    corps = [await make_corp(pool, f"C{i}", corp_id=f"ww{i}") for i in range(3)]
    for n in range(20):
        for i, corp in enumerate(corps):
            await push(pool, wecom_xml("create_user", UserID=f"C{i}-{n}"), stream=f"C{i}", corp=corp)
    platform = SlowPlatform(delay=0.005)
    settings = replace(FAST, batch_size=3, turn=4, concurrency=3)
    from handlers.store import pool as db

    other_pool = await db.create_pool(db_url, min_size=1, max_size=5)  # a second process: its own pool
    try:
        a, b = worker(pool, platform, settings=settings), worker(other_pool, platform, settings=settings)
        await asyncio.gather(a.run_until_idle(), b.run_until_idle(), a.run_until_idle())
    finally:
        await other_pool.close()
    assert max(platform.peak.values()) == 1
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE status = 'done'") == 60
    assert await pool.fetchval("SELECT count(*) FROM change_log WHERE op = 'create'") == 60


async def test_a_crash_mid_event_leaves_it_pending_and_it_applies_once_later(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool, "Sales", platform="dingtalk", corp_id="dingx")
    inbox_id = await push(pool, ding_json("user_add_org", userId=["C0-1"]), stream="Sales", platform="dingtalk",
                          corp=corp)  # fmt: skip
    platform = SlowPlatform()
    platform.release = asyncio.Event()  # the read hangs until released
    w = worker(pool, platform)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    await asyncio.wait_for(platform.started.wait(), 5)
    task.cancel()  # the process dies in the middle of the event
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert inbox_id is not None
    assert ((await inbox(pool, inbox_id))["status"], await member(pool, corp, "C0-1")) == ("pending", None)
    platform.release.set()
    await worker(pool, platform).run_until_idle()
    assert (await inbox(pool, inbox_id))["status"] == "done"
    assert await changes(pool, corp) == [("member", "C0-1", "create")]


async def test_wake_applies_a_new_event_without_waiting_for_the_poll(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every log call of the path runs (extras must not clash with LogRecord)
    corp = await make_corp(pool)
    w = worker(pool, settings=replace(FAST, poll_interval=30.0, heartbeat_interval=30.0))
    async with running(w):
        await asyncio.sleep(0.05)  # the worker is idle, sleeping for its 30 s poll
        inbox_id = await push(pool, wecom_xml("create_user", UserID="u1", Name="U1"), corp=corp)
        w.wake()
        assert await until(lambda: _status_is(pool, inbox_id, "done"), within=1.0) < 0.5
    actions = {getattr(r, "action", None) for r in caplog.records}
    assert {"worker_started", "event_applied", "worker_stopped"} <= actions


async def test_the_running_worker_retries_a_failure_when_it_is_due(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    platform = StubPlatform(failing={"u1"}, members={"u1": Member("u1", name="U1")})
    w = worker(pool, platform, settings=replace(FAST, backoff_base=0.2, backoff_cap=0.2, poll_interval=30.0))
    inbox_id = await push(pool, wecom_xml("create_user", UserID="u1"), corp=corp)
    async with running(w):
        await until(lambda: _attempted(pool, inbox_id))
        platform.failing.clear()
        await until(lambda: _status_is(pool, inbox_id, "done"), within=2.0)  # the retry time wakes it, not the poll


async def test_rows_without_a_stream_row_are_adopted(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await push(pool, wecom_xml("create_user", UserID="u1", Name="U1"), corp=corp)
    await pool.execute("DELETE FROM inbox_streams")
    assert await worker(pool).run_until_idle() == 1


async def test_asynchronous_commit_applies_the_same(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    for i in range(5):
        await push(pool, wecom_xml("create_user", UserID=f"u{i}", Name="U"), corp=corp)
    assert await worker(pool, settings=replace(FAST, async_commit=True)).run_until_idle() == 5
    assert await pool.fetchval("SHOW synchronous_commit") == "on"  # the pool's connections are left as they were


async def test_dead_letter_requests_a_sync_and_the_stream_moves_on(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    dead = await push(pool, "<xml><ChangeType>create_user", corp=corp)  # truncated: can never parse
    await push(pool, wecom_xml("create_user", UserID="u1", Name="U1"), corp=corp)
    assert await worker(pool).run_until_idle() == 2
    assert dead is not None and (await inbox(pool, dead))["status"] == "dead"
    assert await sync_reason(pool, corp) == "dead_letter"


def test_last_error_names_types_and_codes_only() -> None:
    assert (
        describe_error(UpstreamError("user/get", 60111, "userid zhangsan not found"))
        == "UpstreamError: user/get errcode=60111"
    )
    assert describe_error(KeyError("zhangsan")) == "KeyError"
    assert WorkerSettings(backoff_base=2, backoff_cap=100).backoff(1) == 2
    assert WorkerSettings(backoff_base=2, backoff_cap=100).backoff(10) == 100


async def test_without_wake_the_running_worker_finds_new_rows_by_polling(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    w = Worker(pool, worker(pool).services, replace(FAST, poll_interval=0.05))
    async with running(w):
        inbox_id = await push(pool, wecom_xml("create_user", UserID="u1", Name="U1"), corp=corp)
        await until(lambda: _status_is(pool, inbox_id, "done"))


async def _status_is(pool: asyncpg.Pool, inbox_id: int | None, status: str) -> bool:
    return bool((await inbox(pool, inbox_id or 0))["status"] == status)


async def _attempted(pool: asyncpg.Pool, inbox_id: int | None) -> bool:
    return bool((await inbox(pool, inbox_id or 0))["attempts"] > 0)


async def test_wake_for_a_stream_being_drained_is_skipped_but_any_other_wakes(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await push(pool, wecom_xml("create_user", UserID="HQ-1"), corp=corp)  # thin: its drain reads the member
    platform = SlowPlatform()
    platform.release = asyncio.Event()  # the read hangs until released
    w = worker(pool, platform, settings=replace(FAST, poll_interval=30.0, heartbeat_interval=30.0))
    async with running(w):
        try:
            await asyncio.wait_for(platform.started.wait(), 5)  # a drain of HQ is under way
            await asyncio.sleep(0.05)  # the loop sleeps for its 30 s poll: only a wake makes it look again
            turn = w.last_turn
            w.wake(["HQ"])
            await asyncio.sleep(0.05)
            assert w.last_turn == turn  # that drain will see the new rows; no inbox query needed
            w.wake(["HQ", "Sales"])
            await until(lambda: _turned(w, turn))
            turn = w.last_turn
            w.wake()
            await until(lambda: _turned(w, turn))  # no streams named: always look
        finally:
            platform.release.set()


async def _turned(w: Worker, since: float) -> bool:
    """The apply loop looked at the inbox again after ``since`` (its ``last_turn`` then)."""
    return w.last_turn > since


class BrokenClients:
    """A client source that fails for every corp: the prefetch of a batch and each handler's reads hit it."""

    async def client(self, corp: object) -> None:
        raise RuntimeError("client factory broken")


async def test_a_failure_before_any_event_is_applied_still_counts_as_their_attempt(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool, "Sales", platform="dingtalk", corp_id="dingb3c0d8e4f7a2965c")
    first = await push(pool, ding_json("user_add_org", UserId=["u1"]), stream="Sales", platform="dingtalk", corp=corp)
    await push(pool, ding_json("user_add_org", UserId=["u2"]), stream="Sales", platform="dingtalk", corp=corp)
    stalled = Worker(pool, Services(clients=BrokenClients(), pool=pool), replace(FAST, max_attempts=2))
    for _ in range(4):
        await stalled.run_until_idle()
    assert first is not None
    row = await inbox(pool, first)
    assert (row["status"], row["attempts"]) == ("dead", 2)
    assert "RuntimeError" in row["last_error"]
