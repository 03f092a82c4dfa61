"""The WeCom self-built client against the upstream simulator: snapshot, lookups, tokens, retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import asyncpg
import pytest

from handlers.clients import RetryPolicy, WecomClient
from handlers.clients.limiter import LimiterRegistry
from handlers.config import RateLimits, Secret, SyncSettings, WecomInnerCorp
from handlers.errors import UpstreamError
from handlers.model import Member
from receiver.testing import Simulator, generate_org, run_simulator
from tests.support.clients import ExpireAfter, Recorder, made, memberships, wecom_config

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, timeout=2.0)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(Simulator(seed=3)) as running:
        running.hang_seconds = 3.0
        yield running


def client(corp: WecomInnerCorp, session: aiohttp.ClientSession, pool: asyncpg.Pool, **kwargs: Any) -> WecomClient:
    return made(WecomClient, corp, session, pool, retry=kwargs.pop("retry", FAST), **kwargs)


async def test_snapshot_is_normalized_with_every_member_once(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(7, members=400, departments=30, depth=4, multi_dept_ratio=0.3)
    app = sim.add_wecom_corp(org)
    seen: list[tuple[str, int, int]] = []
    snap = await client(wecom_config(sim, app), session, pool).fetch_snapshot(lambda *p: seen.append(p))

    assert snap.root_dept_id == "1"
    assert {d.dept_id for d in snap.departments} == {str(d) for d in org.departments}
    by_dept = {d.dept_id: d for d in snap.departments}
    assert by_dept["1"].parent_id is None
    assert by_dept["2"].parent_id == "1"
    assert by_dept["2"].name == org.departments[2].name
    assert by_dept["2"].leaders == tuple(org.departments[2].leaders)
    ids = [m.user_id for m in snap.members]
    assert len(ids) == len(set(ids)) == len(org.members)
    multi = [m for m in snap.members if len(m.departments or ()) > 1]
    assert multi, "the org has members in several departments"
    for member in snap.members:
        sim_member = org.members[member.user_id]
        assert member.departments == memberships(org, member.user_id)
        assert member.main_dept_id == str(sim_member.main_department)
        assert member.name == sim_member.name
        assert member.platform_status == sim_member.status
        assert member.mobile is None  # withheld from apps created after 2022-06-20
        assert member.gender is None
        assert member.alias == (sim_member.alias or None)
        assert member.extattr == dict(sim_member.extattr)
        assert member.direct_leaders == tuple(sim_member.direct_leader)
    assert snap.failed_departments == ()
    assert snap.tags is not None
    assert len(snap.tags) == len(org.tags)
    tag = next(t for t in snap.tags if t.tag_id == "1")
    assert tag.name == org.tags[1].tagname
    assert tag.user_ids == tuple(org.tags[1].users)
    assert snap.admins is not None
    assert {a.user_id for a in snap.admins} == set(org.admins)
    assert snap.api_calls == sum(sim.calls.values())
    assert sim.calls["wecom:department/list"] == 1
    assert sim.calls["wecom:user/list"] == len(org.departments)
    assert ("members", len(org.departments), len(org.departments)) in seen


async def test_sensitive_fields_pass_through_when_the_platform_sends_them(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(8, members=20, departments=3, depth=2)
    app = sim.add_wecom_corp(org, privacy=False)
    snap = await client(wecom_config(sim, app), session, pool).fetch_snapshot()
    member = next(m for m in snap.members if m.user_id == "u000001")
    sim_member = org.members["u000001"]
    assert member.mobile == sim_member.mobile
    assert member.gender == sim_member.gender
    assert member.avatar == sim_member.avatar
    assert member.email == sim_member.email


async def test_contact_secret_gives_membership_and_member_count(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(9, members=250, departments=12, depth=3, multi_dept_ratio=0.4)
    app = sim.add_wecom_corp(org)
    wecom = client(wecom_config(sim, app, contact=True), session, pool)
    assert await wecom.member_count() == 250
    snap = await wecom.fetch_snapshot()
    assert len(snap.members) == 250
    assert all(m.departments == memberships(org, m.user_id) for m in snap.members)
    assert sim.calls["wecom:user/list_id"] >= 2
    assert sim.calls["wecom:user/get"] == 0
    assert sim.calls["wecom:gettoken"] == 2  # the app secret and the contact secret have separate tokens


async def test_member_count_is_unknown_without_contact_secret(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    app = sim.add_wecom_corp(generate_org(1, members=5, departments=2, depth=2))
    assert await client(wecom_config(sim, app), session, pool).member_count() is None


async def test_non_root_scope_reports_the_visible_top(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(11, members=300, departments=25, depth=4, visible_root=3)
    app = sim.add_wecom_corp(org)
    snap = await client(wecom_config(sim, app, contact=True), session, pool).fetch_snapshot()
    visible = {str(d.id) for d in org.subtree(3)}
    assert snap.root_dept_id == "3"
    assert {d.dept_id for d in snap.departments} == visible
    assert next(d for d in snap.departments if d.dept_id == "3").parent_id == "2"
    in_scope = {u for u, m in org.members.items() if org.member_in_scope(m)}
    assert {m.user_id for m in snap.members} == in_scope
    assert all({x.dept_id for x in m.departments or ()} <= visible for m in snap.members)


async def test_configured_root_limits_the_snapshot_to_its_subtree(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(12, members=200, departments=20, depth=4)
    app = sim.add_wecom_corp(org)
    corp = wecom_config(sim, app, sync=SyncSettings(root_dept_id="2"))
    snap = await client(corp, session, pool).fetch_snapshot()
    assert snap.root_dept_id == "2"
    assert {d.dept_id for d in snap.departments} == {str(d.id) for d in org.subtree(2)}


async def test_department_list_refused_falls_back_to_simplelist_and_get(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(13, members=50, departments=6, depth=3)
    app = sim.add_wecom_corp(org)
    sim.fail("wecom:department/list", errcode=48009, errmsg="api forbidden for contact assistant")
    snap = await client(wecom_config(sim, app), session, pool).fetch_snapshot()
    assert sim.calls["wecom:department/simplelist"] == 1
    assert sim.calls["wecom:department/get"] == 6
    assert {d.dept_id: d.name for d in snap.departments} == {str(k): d.name for k, d in org.departments.items()}
    assert len(snap.members) == 50


async def test_token_is_cached_in_the_database_and_shared_by_two_clients(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    app = sim.add_wecom_corp(generate_org(2, members=30, departments=4, depth=2))
    corp = wecom_config(sim, app)
    first, second = client(corp, session, pool), client(corp, session, pool)
    await asyncio.gather(first.fetch_snapshot(), second.fetch_snapshot(), first.member("u000001"))
    assert sim.calls["wecom:gettoken"] == 1
    assert await pool.fetchval("SELECT count(*) FROM credentials WHERE key LIKE 'wecom:token:%'") == 1
    stored = await pool.fetchval("SELECT key FROM credentials")
    assert app.secret not in stored


async def test_token_expiring_mid_run_is_refreshed_once(session: aiohttp.ClientSession, pool: asyncpg.Pool) -> None:
    async with run_simulator(Simulator(seed=4, latency=0.005)) as sim:
        org = generate_org(14, members=400, departments=60, depth=4)
        app = sim.add_wecom_corp(org)
        observer = ExpireAfter(sim, "user/list", 10)
        snap = await client(wecom_config(sim, app), session, pool, observer=observer).fetch_snapshot()
    assert sim.calls["wecom:gettoken"] == 2
    assert observer.refreshes == ["wecom_app", "wecom_app"]
    assert ("user/list", "token") in observer.retries
    assert sim.errors[("wecom:user/list", 42001)] >= 1
    assert snap.failed_departments == ()
    assert len(snap.members) == 400


async def test_rate_limit_and_busy_answers_are_retried(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    app = sim.add_wecom_corp(generate_org(5, members=60, departments=5, depth=2))
    sim.fail("wecom:user/list", times=2, errcode=45009, errmsg="api freq out of limit")
    sim.fail("wecom:tag/list", times=1, errcode=-1)
    sim.fail("wecom:department/list", times=1, errcode=45033, errmsg="api concurrent out of limit")
    observer = Recorder()
    snap = await client(wecom_config(sim, app), session, pool, observer=observer).fetch_snapshot()
    assert snap.failed_departments == ()
    assert len(snap.members) == 60
    assert snap.tags is not None
    assert ("user/list", "errcode:45009") in observer.retries
    assert ("tag/list", "errcode:-1") in observer.retries


async def test_server_errors_and_timeouts_are_retried(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    app = sim.add_wecom_corp(generate_org(6, members=40, departments=4, depth=2))
    sim.fail("wecom:user/list", times=2, kind="http500")
    sim.fail("wecom:department/list", times=1, kind="timeout")
    observer = Recorder()
    retry = replace(FAST, timeout=0.3)
    snap = await client(wecom_config(sim, app), session, pool, observer=observer, retry=retry).fetch_snapshot()
    assert snap.failed_departments == ()
    assert len(snap.members) == 40
    assert ("user/list", "http:500") in observer.retries
    assert ("department/list", "timeout") in observer.retries
    assert ("department/list", "timeout") in observer.calls


async def test_persistent_department_failure_is_listed_not_fatal(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(15, members=200, departments=10, depth=3, multi_dept_ratio=0.0)
    app = sim.add_wecom_corp(org)
    sim.fail_department(4)
    snap = await client(wecom_config(sim, app), session, pool).fetch_snapshot()
    assert snap.failed_departments == ("4",)
    expected = {u for u, m in org.members.items() if 4 not in m.departments}
    assert {m.user_id for m in snap.members} == expected
    assert sim.calls["wecom:user/list"] == 9 + FAST.attempts


async def test_failures_after_retries_carry_errcode_and_errmsg(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    app = sim.add_wecom_corp(generate_org(16, members=5, departments=2, depth=2))
    wrong = replace(wecom_config(sim, app), secret=Secret("not-the-secret"))
    with pytest.raises(UpstreamError) as raised:
        await client(wrong, session, pool).member("u000001")
    assert (raised.value.api, raised.value.errcode, raised.value.errmsg) == ("gettoken", 40001, "invalid credential")
    assert sim.calls["wecom:gettoken"] == 1  # a bad secret is not retried

    sim.fail("wecom:user/get", times=10, errcode=-1, errmsg="system busy")
    with pytest.raises(UpstreamError) as raised:
        await client(wecom_config(sim, app), session, pool).member("u000001")
    assert (raised.value.errcode, raised.value.errmsg) == (-1, "system busy")
    assert sim.calls["wecom:user/get"] == FAST.attempts


async def test_lookups_answer_none_for_records_gone_upstream(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(17, members=30, departments=5, depth=3, visible_root=2)
    app = sim.add_wecom_corp(org)
    wecom = client(wecom_config(sim, app), session, pool)
    inside = next(u for u, m in org.members.items() if org.member_in_scope(m))
    outside = next((u for u, m in org.members.items() if not org.member_in_scope(m)), None)
    found = await wecom.member(inside)
    assert isinstance(found, Member)
    assert found.user_id == inside
    assert await wecom.member("nobody") is None
    if outside is not None:
        assert await wecom.member(outside) is None
    dept = await wecom.department("2")
    assert dept is not None
    assert dept.name == org.departments[2].name
    assert await wecom.department("999") is None
    tag = await wecom.tag("1")
    assert tag is not None
    assert tag.name == org.tags[1].tagname
    assert await wecom.tag("999") is None


async def test_documented_rate_limits_hold_with_many_departments_in_flight(
    session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    from receiver.testing import RateLimits as SimLimits

    limits = SimLimits(wecom_limit=100, wecom_window=1.0)
    async with run_simulator(Simulator(seed=5, rate_limits=limits)) as sim:
        org = generate_org(18, members=300, departments=150, depth=4)
        app = sim.add_wecom_corp(org)
        corp = wecom_config(sim, app, rate_limits=RateLimits(calls_per_second=95.0, burst=5, concurrency=16))
        snap = await client(corp, session, pool, limiters=LimiterRegistry()).fetch_snapshot()
    assert not sim.errors
    assert snap.failed_departments == ()
    assert len(snap.members) == 300
