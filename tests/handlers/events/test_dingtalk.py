"""DingTalk contact-event handlers on real PostgreSQL, through the inbox and the worker."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from handlers.errors import MalformedMessage
from handlers.events.parse import dedupe_key, normalize_failed_entry, parse_dingtalk
from handlers.model import Department, Member, Membership, Role
from tests.support.eventkit import (
    StubPlatform,
    changes,
    department,
    ding_json,
    inbox,
    make_corp,
    member,
    push,
    sync_reason,
    worker,
)
from tests.support.paths import PROTOCOL_EVENTS

SHARED = PROTOCOL_EVENTS / "dingtalk"


async def _corp(pool: asyncpg.Pool) -> int:
    corp = await make_corp(pool, "Sales", platform="dingtalk", corp_id="dingb3c0d8e4f7a2965c")
    await pool.execute("INSERT INTO departments (corp, dept_id, name) VALUES ($1, '1', '钉钉科技')", corp)
    return corp


async def _send(pool: asyncpg.Pool, corp: int, event_type: str, **fields: Any) -> int | None:
    return await push(pool, ding_json(event_type, **fields), stream="Sales", platform="dingtalk", corp=corp)


async def _apply(pool: asyncpg.Pool, platform: StubPlatform | None = None) -> int:
    return await worker(pool, platform or StubPlatform()).run_until_idle()


def _alice(**fields: object) -> Member:
    return Member("alice01", name="Alice", departments=(Membership("1"),), **fields)  # type: ignore[arg-type]


# -- parsing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["", "http_v2/", "stream/"])
def test_every_shape_gives_the_same_user_event(shape: str) -> None:
    event = parse_dingtalk((SHARED / f"{shape}user_add_org.json").read_bytes())
    assert event.event_type == "user_add_org"
    assert len(event.user_ids) == 1
    assert event.time_ms is not None


def test_keys_are_matched_whatever_their_case() -> None:
    event = parse_dingtalk(b'{"EVENTTYPE": "org_dept_remove", "DEPTID": [581208264], "corpid": "dingx"}')
    assert (event.event_type, event.dept_ids, event.corp_id) == ("org_dept_remove", ("581208264",), "dingx")


def test_stream_wire_data_may_be_a_json_string() -> None:
    frame = json.loads((SHARED / "stream_wire" / "user_add_org.frame.json").read_text())
    event = parse_dingtalk(json.dumps({**frame["headers"], "data": frame["data"]}).encode())
    assert (event.event_type, event.user_ids, event.time_ms) == ("user_add_org", ("015xxxx227",), 1685501863357)


def test_post_label_list_entries_are_json_strings() -> None:
    event = parse_dingtalk((SHARED / "label_conf_modify.json").read_bytes())
    assert [(label.label_id, label.name) for label in event.post_labels] == [("2393865715", "角色编辑测试")]


def test_an_event_without_type_is_malformed() -> None:
    with pytest.raises(MalformedMessage):
        parse_dingtalk(b'{"UserId": ["x"]}')


def test_dedupe_key_is_the_event_id_when_there_is_one() -> None:
    with_id = ding_json("user_add_org", event_id="abc123", userId=["u"]).encode()
    legacy = ding_json("user_add_org", UserId=["u"]).encode()
    assert dedupe_key("dingtalk", with_id) == "event:abc123"
    assert len(dedupe_key("dingtalk", legacy)) == 64


def test_failed_list_entries_become_legacy_plaintexts() -> None:
    entry = {
        "call_back_tag": "user_add_org",
        "event_time": 1606126433000,
        "user_add_org": {"userid": ["zhangsan"], "corpid": "dingb3c0d8e4f7a2965c"},
    }
    plaintext = normalize_failed_entry(entry)
    assert plaintext is not None
    event = parse_dingtalk(plaintext)
    assert (event.event_type, event.user_ids, event.time_ms) == ("user_add_org", ("zhangsan",), 1606126433000)
    role = {
        "call_back_tag": "label_user_change",
        "event_time": 1,
        "roleLabelChange": {"action": "add", "userIdList": ["u1"], "labelIdList": [7], "corpid": "c"},
    }
    parsed = parse_dingtalk(normalize_failed_entry(role) or b"")
    assert (parsed.action, parsed.user_ids, parsed.label_ids) == ("add", ("u1",), ("7",))


# -- members -------------------------------------------------------------------------------------------


async def test_user_add_org_reads_the_member_back(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    await _send(pool, corp, "user_add_org", userId=["alice01"])
    await _apply(pool, StubPlatform(members={"alice01": _alice(union_id="UNION1")}))
    row = await member(pool, corp, "alice01")
    assert row is not None and (row["name"], row["union_id"], row["dept_ids"]) == ("Alice", "UNION1", ["1"])
    assert await changes(pool, corp) == [("member", "alice01", "create")]


async def test_a_member_the_platform_does_not_return_is_not_created(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    await _send(pool, corp, "user_add_org", userId=["ghost"])
    await _apply(pool)
    assert await member(pool, corp, "ghost") is None


async def test_user_modify_org_of_an_unreadable_known_member_requests_a_sync(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    await _send(pool, corp, "user_add_org", userId=["alice01"])
    await _apply(pool, StubPlatform(members={"alice01": _alice()}))
    await _send(pool, corp, "user_modify_org", userId=["alice01"])
    await _apply(pool)
    assert await sync_reason(pool, corp) == "member_not_readable"


async def test_user_leave_then_active_brings_the_same_member_back(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    platform = StubPlatform(members={"alice01": _alice()})
    await _send(pool, corp, "user_add_org", userId=["alice01"])
    await _send(pool, corp, "user_leave_org", UserId=["alice01"])
    await _apply(pool, platform)
    first = await member(pool, corp, "alice01")
    assert first is not None and (first["status"], first["offline_reason"]) == ("offline", "platform")
    await _send(pool, corp, "user_active_org", userId=["alice01"])
    await _apply(pool, platform)
    again = await member(pool, corp, "alice01")
    assert again is not None and (again["status"], again["id"]) == ("active", first["id"])


async def test_the_same_event_twice_is_stored_once(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    assert await _send(pool, corp, "user_add_org", event_id="e1", userId=["alice01"]) is not None
    assert await _send(pool, corp, "user_add_org", event_id="e1", userId=["alice01"]) is None
    assert await _apply(pool, StubPlatform(members={"alice01": _alice()})) == 1


async def test_a_batch_reads_members_ahead_once_each(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    platform = StubPlatform(members={f"u{i}": Member(f"u{i}", name=f"U{i}") for i in range(5)})
    for i in range(5):
        await _send(pool, corp, "user_add_org", userId=[f"u{i}"])
    await _send(pool, corp, "user_modify_org", userId=["u0"])
    assert await _apply(pool, platform) == 6
    assert sorted(platform.reads) == sorted({("member", f"u{i}") for i in range(5)})
    assert await pool.fetchval("SELECT count(*) FROM members WHERE status = 'active'") == 5


# -- departments ---------------------------------------------------------------------------------------


async def test_departments_are_read_back_and_removed(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    platform = StubPlatform(departments={"200": Department("200", "1", name="产品部", order=3)})
    await _send(pool, corp, "org_dept_create", deptId=[200])
    await _apply(pool, platform)
    row = await department(pool, corp, "200")
    assert row is not None and (row["name"], row["parent_id"], row["order"]) == ("产品部", "1", 3)
    platform.departments["200"] = Department("200", "1", name="产品中心", order=3)
    await _send(pool, corp, "org_dept_modify", DeptId=[200])
    await _send(pool, corp, "org_dept_remove", DeptId=[200])
    await _apply(pool, platform)
    assert await department(pool, corp, "200") is None
    assert [op for e, _, op in await changes(pool, corp)] == ["create", "update", "delete"]


async def test_a_modified_department_the_platform_cannot_return_requests_a_sync(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    await _send(pool, corp, "org_dept_modify", deptId=[300])
    await _apply(pool)
    assert await sync_reason(pool, corp) == "department_not_readable"


# -- admins and roles ----------------------------------------------------------------------------------


async def test_admins_are_added_and_removed(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    await _send(pool, corp, "org_admin_add", userId=["alice01"])
    await _apply(pool, StubPlatform(members={"alice01": _alice()}))
    assert await pool.fetchval("SELECT count(*) FROM admins WHERE source = 'platform'") == 1
    await pool.execute("INSERT INTO members (corp, user_id) VALUES ($1, 'bob')", corp)
    await pool.execute(
        "INSERT INTO admins (corp, member, source) SELECT $1, id, 'local' FROM members WHERE user_id = 'bob'", corp
    )
    await _send(pool, corp, "org_admin_remove", userId=["alice01"])
    await _send(pool, corp, "org_admin_remove", userId=["bob"])  # a local admin is not the platform's to remove
    await _apply(pool)
    rows = await pool.fetch("SELECT m.user_id FROM admins a JOIN members m ON m.id = a.member")
    assert [r["user_id"] for r in rows] == ["bob"]


async def test_roles_follow_label_events(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    platform = StubPlatform(members={"alice01": _alice()}, roles={"77": Role("77", "财务", "默认")})
    await _send(pool, corp, "label_conf_add", labelIdList=[77])
    await _send(pool, corp, "label_user_change", action="add", userIdList=["alice01"], labelIdList=[77])
    await _apply(pool, platform)
    assert await pool.fetchval("SELECT name FROM roles WHERE role_id = '77'") == "财务"
    assert await pool.fetchval("SELECT count(*) FROM role_members WHERE role_id = '77'") == 1
    post = [json.dumps({"name": "会计", "id": 77, "parentId": 5})]
    await _send(pool, corp, "label_conf_modify", labelIdList=[77], postLabelList=post)
    await _send(pool, corp, "label_user_change", action="remove", userIdList=["alice01"], labelIdList=[77])
    await _apply(pool, platform)
    assert await pool.fetchval("SELECT name FROM roles WHERE role_id = '77'") == "会计"
    assert await pool.fetchval("SELECT count(*) FROM role_members") == 0
    await _send(pool, corp, "label_conf_del", labelIdList=[77])
    await _apply(pool, platform)
    assert await pool.fetchval("SELECT count(*) FROM roles") == 0


async def test_an_unknown_role_action_requests_a_sync(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    await _send(pool, corp, "label_user_change", action="swap", userIdList=["a"], labelIdList=[1])
    await _apply(pool)
    assert await sync_reason(pool, corp) == "unknown_role_action"


# -- the organization and the rest ---------------------------------------------------------------------


async def test_org_remove_disables_the_corp(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    await _send(pool, corp, "org_remove")
    await _apply(pool)
    assert await pool.fetchval("SELECT status FROM corps WHERE id = $1", corp) == "disabled"
    assert await changes(pool, corp) == [("corp", "dingb3c0d8e4f7a2965c", "disable")]


async def test_check_url_is_ignored_and_an_unknown_event_marks_the_corp(pool: asyncpg.Pool) -> None:
    corp = await _corp(pool)
    check = await _send(pool, corp, "check_url")
    await _apply(pool)
    assert check is not None and (await inbox(pool, check))["status"] == "ignored"
    assert await sync_reason(pool, corp) is None
    odd = await _send(pool, corp, "user_dept_change", userId=["a"])
    await _apply(pool)
    assert odd is not None and (await inbox(pool, odd))["status"] == "ignored"
    assert await sync_reason(pool, corp) == "unknown_event:user_dept_change"
