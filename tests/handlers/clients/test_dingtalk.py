"""The DingTalk client against the upstream simulator: breadth-first snapshot, paging, scope, failed events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp import web

from handlers.clients import DingTalkClient, FailedEvent, NullObserver, RetryPolicy, make_client
from handlers.config import CallbackKeys, DingTalkCorp, Secret, SyncSettings
from handlers.errors import UpstreamError
from handlers.model import Membership
from receiver.testing import RateLimits, SimOrg, Simulator, generate_org, run_simulator
from receiver.testing.accounts import DingTalkApp

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, timeout=2.0)


class ExpireAfter(NullObserver):
    """Expires every token upstream once ``api`` has answered ``calls`` times: calls are in flight then."""

    def __init__(self, sim: Simulator, api: str, calls: int) -> None:
        self.sim, self.api, self.left = sim, api, calls
        self.refreshes: list[str] = []

    def on_call(self, api: str, outcome: str, seconds: float) -> None:
        if api == self.api:
            self.left -= 1
            if self.left == 0:
                self.sim.expire_tokens()

    def on_token_refresh(self, kind: str) -> None:
        self.refreshes.append(kind)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(Simulator(seed=5)) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def config(sim: Simulator, app: DingTalkApp, **extra: Any) -> DingTalkCorp:
    keys = CallbackKeys(Secret(app.token), Secret(app.aes_key), frozenset({app.app_key, app.corp_id}))
    return DingTalkCorp(
        name="Sales",
        title="Sales",
        corp_id=app.corp_id,
        agent_id=str(app.agent_id),
        app_key=app.app_key,
        app_secret=Secret(app.app_secret),
        callback=keys,
        api_base=sim.dingtalk_api_base,
        **extra,
    )


def client(corp: DingTalkCorp, session: aiohttp.ClientSession, pool: asyncpg.Pool, **kwargs: Any) -> DingTalkClient:
    made = make_client(corp, session, pool, retry=kwargs.pop("retry", FAST), **kwargs)
    assert isinstance(made, DingTalkClient)
    return made


def memberships(org: SimOrg, userid: str) -> tuple[Membership, ...]:
    m = org.members[userid]
    return tuple(
        Membership(str(d), is_leader=m.is_leader[k] == 1, order=m.orders[k])
        for k, d in enumerate(m.departments)
        if org.in_scope(d)
    )


async def test_snapshot_is_normalized_and_pages_every_member_once(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(21, members=700, departments=6, depth=3, multi_dept_ratio=0.3)  # >100 in a department
    app = sim.add_dingtalk_app(org)
    seen: list[tuple[str, int, int]] = []
    snap = await client(config(sim, app), session, pool).fetch_snapshot(lambda *p: seen.append(p))

    assert snap.root_dept_id == "1"
    by_dept = {d.dept_id: d for d in snap.departments}
    assert set(by_dept) == {str(d) for d in org.departments}
    assert by_dept["1"].parent_id is None
    assert by_dept["1"].name == org.name
    assert by_dept["3"].parent_id == str(org.departments[3].parentid)
    assert all(d.leaders == tuple(org.departments[int(d.dept_id)].leaders) for d in snap.departments)
    ids = [m.user_id for m in snap.members]
    assert len(ids) == len(set(ids)) == 700
    assert any(len(m.departments or ()) > 1 for m in snap.members)
    for member in snap.members:
        sim_member = org.members[member.user_id]
        assert member.departments == memberships(org, member.user_id)
        assert member.name == sim_member.name
        assert member.union_id == sim_member.unionid
        assert member.position == sim_member.position
        assert member.job_number == sim_member.job_number
        assert member.hired_date == sim_member.hired_date
        assert member.biz_mail == sim_member.biz_mail
        assert member.platform_status == (1 if sim_member.active else 4)
        assert member.gender is None
        assert member.telephone is None  # empty upstream: unknown, never ""
    biggest = max(len(v) for v in org.dept_members.values())
    assert biggest > 100
    assert sim.calls["dingtalk:topapi/v2/department/listsub"] == 6
    pages = sum(max(1, -(-len(v) // 100)) for v in org.dept_members.values())
    assert sim.calls["dingtalk:topapi/v2/user/list"] == pages
    assert snap.failed_departments == ()
    assert snap.api_calls == sum(sim.calls.values())
    assert seen[-1][1] == seen[-1][2]


async def test_roles_role_members_and_admins(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(22, members=50, departments=4, depth=2, role_groups=3, roles_per_group=4)
    app = sim.add_dingtalk_app(org)
    dingtalk = client(config(sim, app), session, pool)
    snap = await dingtalk.fetch_snapshot()
    assert snap.roles is not None
    assert {r.role_id for r in snap.roles} == {str(r) for r in org.roles}
    role = next(r for r in snap.roles if r.role_id == str(next(iter(org.roles))))
    sim_role = org.roles[int(role.role_id)]
    assert (role.name, role.group_name) == (sim_role.name, org.role_groups[sim_role.group_id].name)
    assert snap.role_members is not None
    assert set(snap.role_members) == {(str(r.id), u) for r in org.roles.values() for u in r.members}
    assert snap.admins is not None
    assert {(a.user_id, a.level) for a in snap.admins} == set(org.admins.items())
    assert await dingtalk.member_count() == 50
    assert await dingtalk.tag("1") is None


async def test_out_of_scope_root_is_found_through_the_app_scope(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(23, members=300, departments=30, depth=4, visible_root=2)
    app = sim.add_dingtalk_app(org)
    snap = await client(config(sim, app), session, pool).fetch_snapshot()
    visible = {str(d.id) for d in org.subtree(2)}
    assert snap.root_dept_id == "2"
    assert {d.dept_id for d in snap.departments} == visible
    assert {m.user_id for m in snap.members} == {u for u, m in org.members.items() if org.member_in_scope(m)}
    assert snap.failed_departments == ()


async def test_out_of_scope_root_without_a_scope_answer_is_reported_clearly(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    app = sim.add_dingtalk_app(generate_org(24, members=30, departments=6, depth=3, visible_root=2))
    sim.fail("dingtalk:auth/scopes", times=5, errcode=60011, errmsg="没有调用该接口的权限")
    with pytest.raises(UpstreamError) as raised:
        await client(config(sim, app), session, pool).fetch_snapshot()
    assert raised.value.errcode == 50004
    assert "sync.root_dept_id" in raised.value.errmsg


async def test_configured_root_is_the_snapshot_root(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(25, members=100, departments=12, depth=3)
    app = sim.add_dingtalk_app(org)
    snap = await client(config(sim, app, sync=SyncSettings(root_dept_id="2")), session, pool).fetch_snapshot()
    assert snap.root_dept_id == "2"
    assert {d.dept_id for d in snap.departments} == {str(d.id) for d in org.subtree(2)}


async def test_failed_department_is_listed_and_the_rest_is_complete(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(26, members=200, departments=8, depth=3, multi_dept_ratio=0.0)
    app = sim.add_dingtalk_app(org)
    sim.fail_department(3, errcode=-1)
    snap = await client(config(sim, app), session, pool).fetch_snapshot()
    assert snap.failed_departments == ("3",)
    assert {m.user_id for m in snap.members} == {u for u, m in org.members.items() if 3 not in m.departments}
    assert next(d for d in snap.departments if d.dept_id == "3").leaders is None


async def test_qps_answers_server_errors_and_timeouts_are_retried(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    app = sim.add_dingtalk_app(generate_org(27, members=80, departments=5, depth=2))
    sim.fail("dingtalk:topapi/v2/user/list", times=2, errcode=90018, errmsg="当前应用调用该接口的QPS超过限制")
    sim.fail("dingtalk:topapi/v2/department/listsub", times=1, errcode=90002)
    sim.fail("dingtalk:topapi/v2/user/list", times=1, kind="http500")
    sim.fail("dingtalk:topapi/role/list", times=1, kind="timeout")
    sim.hang_seconds = 2.0
    corp = config(sim, app)
    snap = await client(
        corp, session, pool, retry=RetryPolicy(attempts=4, base_delay=0.01, timeout=0.3)
    ).fetch_snapshot()
    assert snap.failed_departments == ()
    assert len(snap.members) == 80
    assert snap.roles is not None
    assert sim.errors[("dingtalk:topapi/v2/user/list", 90018)] == 2


async def test_auth_error_88_throttled_by_sub_code_is_retried_not_fatal(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    app = sim.add_dingtalk_app(generate_org(29, members=40, departments=4, depth=2))
    throttled = "当前应用调用该接口的QPS超过限制"
    sim.fail("dingtalk:topapi/v2/user/list", times=2, errcode=88, errmsg=throttled, sub_code="90018")
    corp = config(sim, app)
    snap = await client(corp, session, pool, retry=RetryPolicy(attempts=4, base_delay=0.01)).fetch_snapshot()
    assert snap.failed_departments == ()
    assert len(snap.members) == 40
    assert sim.errors[("dingtalk:topapi/v2/user/list", 88)] == 2


async def test_auth_error_88_for_any_other_reason_stays_fatal(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    # One department: the walk pipelines listsub and user/list, so with more, a child's first page may be under way
    # before the root's fatal answer comes back; that is a second call, not a retry.
    app = sim.add_dingtalk_app(generate_org(30, members=40, departments=1, depth=1))
    sim.fail("dingtalk:topapi/v2/user/list", times=50, errcode=88, errmsg="不合法的access_token", sub_code="40014x")
    dingtalk = client(config(sim, app), session, pool, retry=RetryPolicy(attempts=4, base_delay=0.01))
    with pytest.raises(UpstreamError) as caught:
        await dingtalk.fetch_snapshot()
    assert caught.value.errcode == 88
    assert sim.calls["dingtalk:topapi/v2/user/list"] == 1  # fatal: the first answer stops the walk, no retry


async def test_token_rejected_mid_run_is_renewed_once(session: aiohttp.ClientSession, pool: asyncpg.Pool) -> None:
    async with run_simulator(Simulator(seed=6, latency=0.005)) as sim:
        app = sim.add_dingtalk_app(generate_org(28, members=300, departments=40, depth=4))
        observer = ExpireAfter(sim, "topapi/v2/user/list", 8)
        snap = await client(config(sim, app), session, pool, observer=observer).fetch_snapshot()
    assert sim.calls["dingtalk:gettoken"] == 2
    assert sim.errors[("dingtalk:topapi/v2/user/list", 40014)] >= 1
    assert observer.refreshes == ["dingtalk", "dingtalk"]
    assert snap.failed_departments == ()
    assert len(snap.members) == 300


async def test_lookups_answer_none_for_users_and_departments_gone_upstream(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(29, members=40, departments=5, depth=3, visible_root=2)
    app = sim.add_dingtalk_app(org)
    dingtalk = client(config(sim, app), session, pool)
    inside = next(u for u, m in org.members.items() if org.member_in_scope(m))
    member = await dingtalk.member(inside)
    assert member is not None
    assert member.departments == memberships(org, inside)
    assert member.direct_leaders == (tuple(org.members[inside].direct_leader) or None)
    assert await dingtalk.member("gone") is None  # 60121
    outside = next((u for u, m in org.members.items() if not org.member_in_scope(m)), None)
    if outside is not None:
        assert await dingtalk.member(outside) is None  # 50002
    dept = await dingtalk.department("2")
    assert dept is not None
    assert dept.leaders == tuple(org.departments[2].leaders)
    assert await dingtalk.department("999") is None  # 60003


async def test_failed_events_are_persisted_batch_by_batch_before_the_next_call(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    org = generate_org(30, members=10, departments=2, depth=2)
    app = sim.add_dingtalk_app(org)
    for i in range(450):
        event = {"EventType": "user_modify_org", "CorpId": app.corp_id, "UserId": [f"u{i:06d}"], "TimeStamp": str(i)}
        sim.drop(app.app_key, orjson.dumps(event))
    dingtalk = client(config(sim, app), session, pool)
    api = "dingtalk:call_back/get_call_back_failed_result"
    batches: list[list[FailedEvent]] = []

    async def persist(batch: list[FailedEvent]) -> None:
        assert sim.calls[api] == len(batches) + 1  # no further call before this batch is safe
        await asyncio.sleep(0.01)
        batches.append(batch)

    assert await dingtalk.drain_failed_events(persist) == 450
    assert [len(b) for b in batches] == [200, 200, 50]
    first = batches[0][0]
    assert first.call_back_tag == "user_modify_org"
    assert orjson.loads(first.payload)["user_modify_org"]["userid"] == ["u000000"]
    assert sim.calls[api] == 3
    assert await dingtalk.drain_failed_events(persist) == 0


async def test_a_failing_persist_stops_the_drain_and_keeps_its_batch_upstream(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    app = sim.add_dingtalk_app(generate_org(31, members=5, departments=2, depth=2))
    for i in range(250):
        sim.drop(app.app_key, orjson.dumps({"EventType": "org_dept_modify", "DeptId": [i], "TimeStamp": "1"}))
    dingtalk = client(config(sim, app), session, pool)
    kept: list[FailedEvent] = []

    async def flaky(batch: list[FailedEvent]) -> None:
        if kept:
            raise RuntimeError("database down")
        kept.extend(batch)

    with pytest.raises(RuntimeError):
        await dingtalk.drain_failed_events(flaky)
    assert len(kept) == 200

    async def keep(batch: list[FailedEvent]) -> None:
        kept.extend(batch)

    assert await dingtalk.drain_failed_events(keep) == 50  # the held batch goes first: the next call deletes it
    assert len({e.payload for e in kept}) == 250


@pytest.mark.slow
async def test_documented_limits_hold_and_the_limiter_stays_saturated(
    session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    async with run_simulator(Simulator(seed=7, rate_limits=RateLimits(), latency=0.002)) as sim:
        org = generate_org(32, members=600, departments=60, depth=4)
        app = sim.add_dingtalk_app(org)
        started = time.monotonic()
        snap = await client(config(sim, app), session, pool).fetch_snapshot()
        elapsed = time.monotonic() - started
    assert not sim.errors
    assert len(snap.members) == 600
    busiest = max(sim.calls["dingtalk:topapi/v2/user/list"], sim.calls["dingtalk:topapi/v2/department/listsub"])
    floor = busiest / 20
    assert elapsed <= 1.2 * floor + 1.0  # the second API runs alongside; +1 s for the first window


async def test_an_answer_without_errcode_or_result_is_retried_not_read_as_empty(
    aiohttp_server: Any, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    """DingTalk's per-IP ban answers ``{"status": 1111, "wait": 5, ...}`` with HTTP 200 and no errcode."""
    answers = [
        {"status": 1111, "wait": 5, "source": "x5", "punish": "deny"},
        {"errcode": 0, "errmsg": "ok", "result": {"count": 42}},
    ]

    async def gettoken(request: web.Request) -> web.Response:
        return web.json_response({"errcode": 0, "access_token": "tok", "expires_in": 7200})

    async def count(request: web.Request) -> web.Response:
        return web.json_response(answers.pop(0))

    app = web.Application()
    app.router.add_get("/gettoken", gettoken)
    app.router.add_post("/topapi/user/count", count)
    server = await aiohttp_server(app)
    keys = CallbackKeys(Secret("t"), Secret("k" * 43), frozenset({"dingkey"}))
    corp = DingTalkCorp("D", "D", "dingcorp", "1", "dingkey", Secret("s"), keys, api_base=str(server.make_url("")))
    assert await client(corp, session, pool).member_count() == 42
    assert answers == []
