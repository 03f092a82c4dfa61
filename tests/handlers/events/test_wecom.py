"""WeCom change_contact handlers on real PostgreSQL, through the inbox and the worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from handlers.config import AppConfig, Secret, SuiteAuth, WecomProxyCorp
from handlers.model import Department, Member, Membership, Tag
from receiver.runtime import build_worker
from receiver.testing import SimOrg, Simulator, run_simulator
from tests.support.eventkit import (
    FAST,
    SUITE,
    StubPlatform,
    changes,
    department,
    inbox,
    make_corp,
    member,
    push,
    sync_reason,
    wecom_xml,
    worker,
)
from tests.support.paths import CAPTURED

SAMPLES = CAPTURED / "wecom"


async def _apply(pool: asyncpg.Pool, platform: StubPlatform | None = None) -> int:
    return await worker(pool, platform or StubPlatform()).run_until_idle()


async def _seed_departments(pool: asyncpg.Pool, corp: int, *ids: str) -> None:
    for dept_id in ids:
        await pool.execute(
            "INSERT INTO departments (corp, dept_id, parent_id, name) VALUES ($1, $2, $3, $4)",
            corp,
            dept_id,
            None if dept_id == "1" else "1",
            f"dept {dept_id}",
        )


async def test_create_user_writes_every_field_the_event_carries(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await _seed_departments(pool, corp, "1", "2", "3")
    await push(pool, (SAMPLES / "create_user__full.xml").read_bytes(), corp=corp)
    assert await _apply(pool) == 1
    row = await member(pool, corp, "zhangsan")
    assert row is not None
    assert (row["name"], row["position"], row["mobile"], row["gender"]) == ("张三", "产品经理", "13800000000", 1)
    assert row["dept_ids"] == ["1", "2", "3"]
    assert row["main_dept_id"] == "1"
    assert row["direct_leaders"] == ["lisi", "wangwu"]
    assert row["extattr"] == {"爱好": "旅游", "卡号": "https://work.weixin.qq.com"}
    assert row["status"] == "active"
    leaders = await pool.fetch("SELECT dept_id, is_leader FROM member_departments ORDER BY dept_id")
    assert [(r["dept_id"], r["is_leader"]) for r in leaders] == [("1", True), ("2", False), ("3", False)]
    assert await changes(pool, corp) == [("member", "zhangsan", "create")]
    assert await sync_reason(pool, corp) is None


async def test_thin_create_user_reads_the_details_from_the_platform(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await _seed_departments(pool, corp, "1", "2", "3")
    platform = StubPlatform(members={"zhangsan": Member("zhangsan", name="张三", position="工程师")})
    await push(pool, wecom_xml("create_user", UserID="zhangsan", Department=[1, 2, 3]), corp=corp)
    await _apply(pool, platform)
    row = await member(pool, corp, "zhangsan")
    assert row is not None and (row["name"], row["position"]) == ("张三", "工程师")
    assert row["dept_ids"] == ["1", "2", "3"]  # the event's departments stay: the read had none
    assert platform.reads == [("member", "zhangsan")]


async def test_update_user_changes_only_the_fields_present(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await push(
        pool,
        wecom_xml(
            "create_user",
            UserID="ChengXiaoFei",
            Name="程小飞",
            Department=[35, 36],
            MainDepartment=36,
            Mobile="13900000000",
        ),
        corp=corp,
    )
    await push(pool, (SAMPLES / "update_user__main_department_only.xml").read_bytes(), corp=corp)
    await _apply(pool)
    row = await member(pool, corp, "ChengXiaoFei")
    assert row is not None
    assert (row["name"], row["mobile"], row["main_dept_id"]) == ("程小飞", "13900000000", "35")
    assert row["dept_ids"] == ["35", "36"]
    fields = await pool.fetchval("SELECT fields FROM change_log WHERE op = 'update'")
    assert fields == ["main_dept_id"]


async def test_new_userid_renames_the_member_keeping_its_identity_and_links(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await push(pool, wecom_xml("create_user", UserID="zhangsan", Name="张三", Department=[1]), corp=corp)
    await push(pool, wecom_xml("update_tag", TagId=7, AddUserItems="zhangsan"), corp=corp)
    await _apply(pool)
    before = await member(pool, corp, "zhangsan")
    assert before is not None
    await push(pool, wecom_xml("update_user", UserID="zhangsan", NewUserID="zhangsan001", Department=[1, 2]), corp=corp)
    await _apply(pool)
    after = await member(pool, corp, "zhangsan001")
    assert after is not None and after["id"] == before["id"]
    assert await member(pool, corp, "zhangsan") is None
    assert after["dept_ids"] == ["1", "2"]
    assert await pool.fetchval("SELECT member FROM tag_members WHERE tag_id = '7'") == before["id"]
    assert ("member", "zhangsan001", "rename") in await changes(pool, corp)


async def test_rename_applied_twice_ends_in_the_same_state(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await push(pool, wecom_xml("create_user", UserID="a1", Name="A", Department=[1]), corp=corp)
    rename = wecom_xml("update_user", UserID="a1", NewUserID="a2")
    await push(pool, rename, corp=corp)
    await _apply(pool)
    await push(pool, rename, corp=corp, stream="HQ-replay")  # the same event again, past the dedupe
    await _apply(pool)
    assert [r["user_id"] for r in await pool.fetch("SELECT user_id FROM members")] == ["a2"]
    assert [c for c in await changes(pool, corp) if c[2] == "rename"] == [("member", "a2", "rename")]


async def test_update_before_create_ends_with_the_full_member(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    platform = StubPlatform(members={"lisi": Member("lisi", name="李四")})
    await push(pool, wecom_xml("update_user", UserID="lisi", Position="经理"), corp=corp)
    await push(pool, wecom_xml("create_user", UserID="lisi", Name="李四", Department=[1], Position="专员"), corp=corp)
    await _apply(pool, platform)
    row = await member(pool, corp, "lisi")
    assert row is not None
    assert (row["name"], row["position"], row["status"]) == ("李四", "专员", "active")
    assert [op for _, _, op in await changes(pool, corp)] == ["create", "update"]


async def test_create_for_an_existing_member_is_an_update_and_a_new_join(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await push(pool, wecom_xml("create_user", UserID="wangwu", Name="王五", Department=[1]), corp=corp)
    await push(pool, wecom_xml("delete_user", UserID="wangwu"), corp=corp)
    await _apply(pool)
    await pool.execute("UPDATE members SET offline_reason = 'operator'")
    await push(pool, wecom_xml("update_user", UserID="wangwu", Name="王五五"), corp=corp)
    await _apply(pool)
    row = await member(pool, corp, "wangwu")
    assert row is not None and (row["status"], row["name"]) == ("offline", "王五五")  # an update does not re-join
    await push(pool, wecom_xml("create_user", UserID="wangwu", Name="王五五", Department=[1]), corp=corp)
    await _apply(pool)
    row = await member(pool, corp, "wangwu")
    assert row is not None and (row["status"], row["offline_reason"]) == ("active", None)
    assert [op for _, _, op in await changes(pool, corp)] == ["create", "offline", "update", "reactivate"]


async def test_delete_user_takes_the_member_offline_once(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await _seed_departments(pool, corp, "1")
    await push(pool, wecom_xml("create_user", UserID="zhangsan", Name="张三", Department=[1]), corp=corp)
    await push(pool, (SAMPLES / "delete_user__known.xml").read_bytes(), corp=corp)
    await push(pool, wecom_xml("delete_user", created=1700000001, UserID="zhangsan"), corp=corp)  # offline already
    await _apply(pool)
    row = await member(pool, corp, "zhangsan")
    assert row is not None and (row["status"], row["offline_reason"]) == ("offline", "platform")
    assert row["offline_at"] is not None
    assert [op for _, _, op in await changes(pool, corp)] == ["create", "offline"]
    assert await sync_reason(pool, corp) is None


async def test_a_delete_of_an_unknown_member_creates_nothing_and_requests_a_sync(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await push(pool, wecom_xml("delete_user", UserID="nobody"), corp=corp)  # its create may still be coming
    await _apply(pool)
    assert await member(pool, corp, "nobody") is None
    assert await changes(pool, corp) == []
    assert await sync_reason(pool, corp) == "delete_of_unknown_member"


async def test_a_delete_of_an_unknown_department_requests_a_sync(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await _seed_departments(pool, corp, "1")
    await push(pool, wecom_xml("delete_party", Id=9), corp=corp)
    await _apply(pool)
    assert await department(pool, corp, "1") is not None
    assert await sync_reason(pool, corp) == "delete_of_unknown_department"


async def test_departments_are_created_updated_and_deleted(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await _seed_departments(pool, corp, "1")
    await push(pool, wecom_xml("create_party", Id=2, Name="研发部", ParentId=1, Order=10), corp=corp)
    await push(pool, wecom_xml("update_party", Id=2, Name="研发中心"), corp=corp)
    await _apply(pool)
    row = await department(pool, corp, "2")
    assert row is not None and (row["name"], row["parent_id"], row["order"]) == ("研发中心", "1", 10)
    await push(pool, wecom_xml("delete_party", Id=2), corp=corp)
    await _apply(pool)
    assert await department(pool, corp, "2") is None
    assert [op for e, _, op in await changes(pool, corp) if e == "department"] == ["create", "update", "delete"]
    assert await sync_reason(pool, corp) is None


async def test_a_department_whose_parent_is_unknown_is_kept_and_marks_drift(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await push(pool, wecom_xml("create_party", Id=5, Name="子部门", ParentId=4), corp=corp)
    await push(pool, wecom_xml("create_party", Id=4, Name="父部门", ParentId=0), corp=corp)
    await _apply(pool)
    child, parent = await department(pool, corp, "5"), await department(pool, corp, "4")
    assert child is not None and child["parent_id"] == "4"
    assert parent is not None and parent["parent_id"] == "0"
    assert await sync_reason(pool, corp) == "unknown_department"


async def test_thin_create_party_reads_its_name(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await _seed_departments(pool, corp, "1")
    platform = StubPlatform(departments={"9": Department("9", "1", name="市场部", order=3)})
    await push(pool, wecom_xml("create_party", Id=9, ParentId=1), corp=corp)
    await push(pool, wecom_xml("update_party", Id=9, ParentId=1), corp=corp)  # known now: no second read
    await _apply(pool, platform)
    row = await department(pool, corp, "9")
    assert row is not None and (row["name"], row["order"]) == ("市场部", 3)
    assert platform.reads == [("department", "9")]


async def test_update_tag_adds_and_removes_users_and_departments(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await _seed_departments(pool, corp, "1", "2", "3", "4")
    for user_id in ("zhangsan1", "lisi1"):
        await push(pool, wecom_xml("create_user", UserID=user_id, Name=user_id, Department=[1]), corp=corp)
    await push(pool, wecom_xml("update_tag", TagId=1, AddUserItems="zhangsan1,lisi1", AddPartyItems="3,4"), corp=corp)
    platform = StubPlatform(
        members={"zhangsan": Member("zhangsan", name="张三"), "lisi": Member("lisi", name="李四")},
        tags={"1": Tag("1", "产品组")},
    )
    await _apply(pool, platform)
    await push(pool, (SAMPLES / "update_tag__add_and_remove.xml").read_bytes(), corp=corp)
    await _apply(pool, platform)
    users = await pool.fetch(
        "SELECT m.user_id FROM tag_members t JOIN members m ON m.id = t.member WHERE t.tag_id = '1' ORDER BY 1"
    )
    assert [r["user_id"] for r in users] == ["lisi", "zhangsan"]
    depts = await pool.fetch("SELECT dept_id FROM tag_departments WHERE tag_id = '1' ORDER BY 1")
    assert [r["dept_id"] for r in depts] == ["1", "2"]
    assert await pool.fetchval("SELECT name FROM tags WHERE tag_id = '1'") == "产品组"


async def test_batch_job_result_requests_a_full_sync(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    inbox_id = await push(pool, (SAMPLES / "batch_job_result__sync_user.xml").read_bytes(), corp=corp)
    await _apply(pool)
    assert inbox_id is not None and (await inbox(pool, inbox_id))["status"] == "done"
    assert await sync_reason(pool, corp) == "batch_job_result"


async def test_unknown_change_type_is_ignored_and_marks_the_corp(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    unknown = await push(pool, wecom_xml("merge_party", Id=3), corp=corp)
    app_event = await push(
        pool, "<xml><ToUserName>ww</ToUserName><MsgType>event</MsgType><Event>enter_agent</Event></xml>", corp=corp
    )
    await _apply(pool)
    assert unknown is not None and app_event is not None
    row = await inbox(pool, unknown)
    assert (row["status"], row["event_type"], row["applied_at"] is not None) == ("ignored", "merge_party", True)
    assert (await inbox(pool, app_event))["status"] == "ignored"
    assert await sync_reason(pool, corp) == "unknown_event:merge_party"


async def test_a_doctype_is_refused_and_dead_lettered_at_once(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    evil = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><ChangeType>&a;</ChangeType></xml>'
    inbox_id = await push(pool, evil, corp=corp)
    await _apply(pool)
    assert inbox_id is not None
    row = await inbox(pool, inbox_id)
    assert (row["status"], row["attempts"]) == ("dead", 1)
    assert row["last_error"] == "MalformedMessage: XML with a DTD or entity declaration"
    assert await sync_reason(pool, corp) == "dead_letter"


async def test_thin_event_whose_read_keeps_failing_goes_dead_and_requests_a_sync(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    platform = StubPlatform(failing={"zhaoliu"})
    inbox_id = await push(pool, wecom_xml("create_user", UserID="zhaoliu", Department=[1]), corp=corp)
    later = await push(pool, wecom_xml("create_party", Id=1, Name="总部", ParentId=0), corp=corp)
    w = worker(pool, platform)
    for _ in range(3):  # FAST: 3 attempts, no backoff
        await w.run_until_idle()
    assert inbox_id is not None and later is not None
    row = await inbox(pool, inbox_id)
    assert (row["status"], row["attempts"]) == ("dead", 3)
    assert row["last_error"] == "UpstreamError: member/get errcode=-1"
    assert "zhaoliu" not in (row["last_error"] or "")
    assert (await inbox(pool, later))["status"] == "done"  # the stream moved on after the dead letter
    assert await sync_reason(pool, corp) == "dead_letter"
    assert await member(pool, corp, "zhaoliu") is None


async def test_third_party_change_contact_applies_to_the_tenant_corp(pool: asyncpg.Pool) -> None:
    tenant = await make_corp(
        pool, "Suite/wxf8b4f85f3a794e77", type_="corps.QywxProxyType", corp_id="wxf8b4f85f3a794e77", auth_name="Suite"
    )
    await push(pool, (SAMPLES / "create_user__third_party.xml").read_bytes(), stream="suite:Suite", route="wecom-suite")
    await worker(pool, StubPlatform(), config=AppConfig(".", {}, {"Suite": SUITE})).run_until_idle()
    row = await member(pool, tenant, "zhangsan")
    assert row is not None and (row["open_user_id"], row["name"]) == ("woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA", "张三")


async def test_members_of_a_deleted_department_lose_the_membership_and_mark_drift(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await _seed_departments(pool, corp, "1", "2")
    await push(pool, wecom_xml("create_user", UserID="u1", Name="U1", Department=[1, 2]), corp=corp)
    await push(pool, wecom_xml("delete_party", Id=2), corp=corp)
    await _apply(pool)
    row = await member(pool, corp, "u1")
    assert row is not None and row["dept_ids"] == ["1"]
    assert await sync_reason(pool, corp) == "removed_department_not_empty"


def test_membership_leader_flags_follow_department_order() -> None:
    from handlers.events.parse import parse_xml
    from handlers.events.wecom import member_from_fields

    fields = parse_xml(wecom_xml("create_user", UserID="u", Department="4,5", IsLeaderInDept="0,1", Gender=0))
    built = member_from_fields(fields, "u")
    assert built.departments == (Membership("4", False), Membership("5", True))
    assert built.gender is None  # 0 is "undefined", never a value
    assert built.mobile is None  # absent is unknown, not ''


# -- suite instruction events (route 'wecom-suite'), real SuiteClient against the simulator ----------

TENANT = "wxf8b4f85f3a794e77"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator() as running:
        yield running


def _auth(sim: Simulator, suite_id: str = SUITE.suite_id) -> SuiteAuth:
    suite = sim.suites.get(suite_id) or sim.add_wecom_suite(suite_id)
    return SuiteAuth(
        name="Suite", title="Suite", suite_id=suite_id, suite_secret=Secret(suite.suite_secret),
        token=Secret(suite.token), aes_key=Secret(suite.aes_key), provider_corp_id=suite.provider_corp_id,
        api_base=sim.wecom_api_base,
    )  # fmt: skip


async def _instruct(pool: asyncpg.Pool, plaintext: bytes | str, stream: str = "suite:Suite") -> int | None:
    return await push(pool, plaintext, stream=stream, route="wecom-suite")


async def _suite_apply(pool: asyncpg.Pool, auth: SuiteAuth, *corps: WecomProxyCorp) -> int:
    config = AppConfig(".", {c.name: c for c in corps}, {auth.name: auth})
    async with aiohttp.ClientSession() as session:
        return await build_worker(pool, config, session, FAST).run_until_idle()


async def _installed(pool: asyncpg.Pool, sim: Simulator, auth: SuiteAuth) -> str:
    """The suite's current ticket is pushed and the tenant corp installs from the app market."""
    sim.add_suite_tenant(auth.suite_id, SimOrg(corp_id=TENANT, name="腾讯科技"), corp_id=TENANT, agent_id=1000042)
    await _instruct(pool, sim.issue_suite_ticket(auth.suite_id))
    code, plaintext = sim.create_auth(auth.suite_id, TENANT)
    await _instruct(pool, plaintext)
    return code


def _instruction(info_type: str, **fields: str | int) -> str:
    body = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    return (
        f"<xml><SuiteId><![CDATA[{SUITE.suite_id}]]></SuiteId><InfoType><![CDATA[{info_type}]]></InfoType>{body}</xml>"
    )


async def test_suite_ticket_keeps_the_newest_push(pool: asyncpg.Pool) -> None:
    await _instruct(pool, _instruction("suite_ticket", SuiteTicket="t-new", TimeStamp=1700000600))
    await _instruct(pool, _instruction("suite_ticket", SuiteTicket="t-old", TimeStamp=1700000000))
    await worker(pool, config=AppConfig(".", {}, {"Suite": SUITE})).run_until_idle()
    ticket = await pool.fetchval("SELECT value FROM credentials WHERE key = $1", f"wecom:suite_ticket:{SUITE.suite_id}")
    assert ticket == "t-new"


async def test_create_auth_exchanges_the_code_and_registers_the_tenant(pool: asyncpg.Pool, sim: Simulator) -> None:
    auth = _auth(sim)
    await _installed(pool, sim, auth)
    assert await _suite_apply(pool, auth) == 2
    corp = await pool.fetchrow("SELECT * FROM corps WHERE name = $1", f"Suite/{TENANT}")
    assert corp is not None
    assert (corp["type"], corp["corp_id"], corp["auth_name"], corp["title"], corp["status"]) == (
        "corps.QywxProxyType",
        TENANT,
        "Suite",
        "腾讯科技",
        "active",
    )
    assert corp["sync_request_reason"] == "create_auth"
    tenant = await pool.fetchrow("SELECT * FROM suite_tenants WHERE corp_id = $1", TENANT)
    upstream = sim.suites[auth.suite_id].tenants[TENANT]
    assert (tenant["permanent_code"], tenant["agent_id"], tenant["status"]) == (
        upstream.permanent_code,
        "1000042",
        "active",
    )
    assert await changes(pool, corp["id"]) == [("corp", TENANT, "create")]


async def test_the_worker_tells_of_each_suite_instruction_it_applied(pool: asyncpg.Pool, sim: Simulator) -> None:
    auth = _auth(sim)
    await _installed(pool, sim, auth)
    told: list[str] = []
    config = AppConfig(".", {}, {auth.name: auth})
    async with aiohttp.ClientSession() as session:
        assert await build_worker(pool, config, session, FAST, on_instruction=told.append).run_until_idle() == 2
    assert told == ["suite_ticket", "create_auth"]


async def test_create_auth_uses_the_configured_proxy_corp(pool: asyncpg.Pool, sim: Simulator) -> None:
    auth = _auth(sim)
    await _installed(pool, sim, auth)
    await _suite_apply(pool, auth, WecomProxyCorp(name="T1", title="T1", corp_id=TENANT, auth=auth))
    assert [r["name"] for r in await pool.fetch("SELECT name FROM corps")] == ["T1"]


async def test_a_retried_create_auth_does_not_spend_the_code_twice(pool: asyncpg.Pool, sim: Simulator) -> None:
    auth = _auth(sim)
    await _installed(pool, sim, auth)
    await _suite_apply(pool, auth)
    plaintext = await pool.fetchval("SELECT plaintext FROM inbox WHERE event_type = 'create_auth'")
    await pool.execute("DELETE FROM corps")  # as if the event's own transaction had been lost after the exchange
    await _instruct(pool, plaintext, stream="suite:Suite-again")
    await _suite_apply(pool, auth)
    assert sim.calls["wecom:service/get_permanent_code"] == 1
    assert await pool.fetchval("SELECT status FROM corps WHERE name = $1", f"Suite/{TENANT}") == "active"


async def test_an_auth_code_the_platform_refuses_ends_dead(pool: asyncpg.Pool, sim: Simulator) -> None:
    auth = _auth(sim)
    await _instruct(pool, sim.issue_suite_ticket(auth.suite_id))
    bad = await _instruct(pool, _instruction("create_auth", AuthCode="expired-code"))
    for _ in range(3):
        await _suite_apply(pool, auth)
    assert bad is not None
    row = await inbox(pool, bad)
    assert (row["status"], row["last_error"]) == ("dead", "UpstreamError: service/get_permanent_code errcode=40078")


async def test_reset_permanent_code_replaces_the_secret(pool: asyncpg.Pool, sim: Simulator) -> None:
    auth = _auth(sim, "dk4asffe9e2e4c0f4c")
    await _installed(pool, sim, auth)
    await _suite_apply(pool, auth)
    first = await pool.fetchval("SELECT permanent_code FROM suite_tenants WHERE corp_id = $1", TENANT)
    _, plaintext = sim.reset_permanent_code(auth.suite_id, TENANT)
    await _instruct(pool, plaintext)
    await _suite_apply(pool, auth)
    now = await pool.fetchval("SELECT permanent_code FROM suite_tenants WHERE corp_id = $1", TENANT)
    assert now != first and now == sim.suites[auth.suite_id].tenants[TENANT].permanent_code


async def test_change_auth_refreshes_the_auth_info_and_requests_a_sync(pool: asyncpg.Pool, sim: Simulator) -> None:
    auth = _auth(sim)
    await _installed(pool, sim, auth)
    await _suite_apply(pool, auth)
    await pool.execute("UPDATE corps SET sync_requested_at = NULL, sync_request_reason = NULL")
    sim.suites[auth.suite_id].tenants[TENANT].agent_id = 1000077
    await _instruct(pool, sim.change_auth(auth.suite_id, TENANT))
    await _suite_apply(pool, auth)
    assert await pool.fetchval("SELECT agent_id FROM suite_tenants WHERE corp_id = $1", TENANT) == "1000077"
    assert await pool.fetchval("SELECT sync_request_reason FROM corps") == "change_auth"


async def test_cancel_auth_disables_the_tenant_and_keeps_its_directory(pool: asyncpg.Pool, sim: Simulator) -> None:
    auth = _auth(sim)
    await _installed(pool, sim, auth)
    await _suite_apply(pool, auth)
    corp = await pool.fetchval("SELECT id FROM corps")
    await push(pool, wecom_xml("create_user", UserID="u1", Name="U1"), stream=f"Suite/{TENANT}", corp=corp)
    await _instruct(pool, sim.cancel_auth(auth.suite_id, TENANT))
    await _suite_apply(pool, auth)
    row = await pool.fetchrow("SELECT status, disabled_at FROM corps WHERE id = $1", corp)
    assert row["status"] == "disabled" and row["disabled_at"] is not None
    assert await pool.fetchval("SELECT status FROM suite_tenants WHERE corp_id = $1", TENANT) == "cancelled"
    assert (await member(pool, corp, "u1") or {"status": None})["status"] == "active"


async def test_instruction_of_an_unconfigured_suite_is_ignored(pool: asyncpg.Pool) -> None:
    other = _instruction("suite_ticket", SuiteTicket="x").replace(SUITE.suite_id, "wwsomeothersuite01")
    inbox_id = await _instruct(pool, other)
    await worker(pool, config=AppConfig(".", {}, {"Suite": SUITE})).run_until_idle()
    assert inbox_id is not None and (await inbox(pool, inbox_id))["status"] == "ignored"
    assert await pool.fetchval("SELECT count(*) FROM credentials") == 0


async def test_a_message_on_the_suite_data_url_is_ignored_without_reconciliation(pool: asyncpg.Pool) -> None:
    tenant = await make_corp(pool, f"Suite/{TENANT}", type_="corps.QywxProxyType", corp_id=TENANT, auth_name="Suite")
    text = f"<xml><ToUserName>{TENANT}</ToUserName><MsgType>text</MsgType><Content>你好</Content></xml>"
    inbox_id = await push(pool, text, stream=f"Suite/{TENANT}", route="wecom-suite-data")
    await worker(pool).run_until_idle()
    assert inbox_id is not None and (await inbox(pool, inbox_id))["status"] == "ignored"
    assert await sync_reason(pool, tenant) is None
