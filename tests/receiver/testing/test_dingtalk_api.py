"""The simulated DingTalk API: token, one-level departments, cursor pages, roles, scope, failed list."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from receiver.testing import DingTalkApp, SimOrg, Simulator, generate_org
from receiver.testing import mutations as m

BASE = "/dingtalk/"


@pytest.fixture
def org() -> SimOrg:
    return generate_org(21, 500, 40, 5, multi_dept_ratio=0.3, role_groups=5)


@pytest.fixture
def sim() -> Simulator:
    return Simulator(seed=4)


@pytest.fixture
def app(sim: Simulator, org: SimOrg) -> DingTalkApp:
    return sim.add_dingtalk_app(org, app_key="dingappkey", app_secret="app-secret", corp_id="dingcorp")


@pytest.fixture
async def client(aiohttp_client: Any, sim: Simulator, app: DingTalkApp) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(sim.app)
    return client


@pytest.fixture
async def token(client: TestClient[Any, Any]) -> str:
    response = await client.get(BASE + "gettoken", params={"appkey": "dingappkey", "appsecret": "app-secret"})
    doc = await response.json()
    assert (doc["errcode"], doc["errmsg"], doc["expires_in"]) == (0, "ok", 7200)
    value: str = doc["access_token"]
    return value


async def call(client: TestClient[Any, Any], token: str, api: str, body: dict[str, Any] | None = None) -> Any:
    if body is None:
        response = await client.get(BASE + api, params={"access_token": token})
    else:
        response = await client.post(BASE + api, params={"access_token": token}, json=body)
    assert response.status == 200
    return await response.json()


async def result(client: TestClient[Any, Any], token: str, api: str, body: dict[str, Any]) -> Any:
    doc = await call(client, token, api, body)
    assert doc["errcode"] == 0, doc
    assert doc["errmsg"] == "ok"
    assert doc["request_id"]
    return doc["result"]


async def test_gettoken_rejects_a_wrong_secret(client: TestClient[Any, Any]) -> None:
    response = await client.get(BASE + "gettoken", params={"appkey": "dingappkey", "appsecret": "nope"})
    assert (await response.json())["errcode"] == 40096


async def test_expired_tokens_are_refused(client: TestClient[Any, Any], sim: Simulator, token: str) -> None:
    sim.expire_tokens()
    doc = await call(client, token, "topapi/user/count", {"only_active": False})
    assert doc["errcode"] == 40014
    assert "request_id" in doc


async def test_listsub_is_one_level_and_a_walk_finds_every_department(
    client: TestClient[Any, Any], token: str, org: SimOrg
) -> None:
    seen, queue = [org.root_id], [org.root_id]
    while queue:
        parent = queue.pop()
        rows = await result(client, token, "topapi/v2/department/listsub", {"dept_id": parent})
        assert [r["dept_id"] for r in rows] == org.children[parent]
        assert all(r["parent_id"] == parent for r in rows)
        seen += [r["dept_id"] for r in rows]
        queue += [r["dept_id"] for r in rows]
    assert sorted(seen) == sorted(org.departments)
    root = await result(client, token, "topapi/v2/department/get", {"dept_id": 1})
    assert "parent_id" not in root
    child = await result(client, token, "topapi/v2/department/get", {"dept_id": 2})
    assert child["parent_id"] == 1
    assert child["dept_manager_userid_list"] == org.departments[2].leaders
    missing = await call(client, token, "topapi/v2/department/get", {"dept_id": 424242})
    assert missing["errcode"] == 60003


@pytest.mark.parametrize("size", [7, 100])
async def test_user_list_cursor_walk_sees_each_member_once_per_department(
    client: TestClient[Any, Any], token: str, org: SimOrg, size: int
) -> None:
    seen: Counter[tuple[str, int]] = Counter()
    for dept_id in org.departments:
        cursor: int | None = 0
        while cursor is not None:
            page = await result(
                client, token, "topapi/v2/user/list", {"dept_id": dept_id, "cursor": cursor, "size": size}
            )
            assert len(page["list"]) <= size
            seen.update((row["userid"], dept_id) for row in page["list"])
            if page["has_more"]:
                cursor = page["next_cursor"]
            else:
                assert "next_cursor" not in page
                cursor = None
    assert seen == Counter((u, d) for u, member in org.members.items() for d in member.departments)


async def test_user_list_refuses_pages_over_100(client: TestClient[Any, Any], token: str) -> None:
    for body in ({"dept_id": 1, "cursor": 0, "size": 101}, {"dept_id": 1, "cursor": 0, "size": 0}, {"dept_id": 1}):
        assert (await call(client, token, "topapi/v2/user/list", body))["errcode"] == 400002


async def test_user_get_shape_and_unknown_user(client: TestClient[Any, Any], token: str, org: SimOrg) -> None:
    admin = next(iter(org.admins))
    user = await result(client, token, "topapi/v2/user/get", {"userid": admin})
    member = org.members[admin]
    assert user["unionid"] == member.unionid
    assert user["dept_id_list"] == member.departments
    assert [d["dept_id"] for d in user["dept_order_list"]] == member.departments
    assert user["admin"] is True
    assert {r["name"] for r in user["role_list"]} >= {"主管理员"}
    assert (await call(client, token, "topapi/v2/user/get", {"userid": "ghost"}))["errcode"] == 60121


async def test_a_person_back_under_a_new_userid_keeps_the_unionid(
    client: TestClient[Any, Any], token: str, org: SimOrg
) -> None:
    """dingtalk.md §6: the unionid names the person; getbyunionid answers the userid they have now."""
    leaver = sorted(org.members)[3]
    unionid = org.members[leaver].unionid
    assert await result(client, token, "topapi/user/getbyunionid", {"unionid": unionid}) == {
        "contact_type": 0,
        "userid": leaver,
    }
    m.remove_member(org, leaver)
    assert (await call(client, token, "topapi/user/getbyunionid", {"unionid": unionid}))["errcode"] == 60121
    m.add_member(org, "returned", unionid=unionid)
    found = await result(client, token, "topapi/user/getbyunionid", {"unionid": unionid})
    assert found["userid"] == "returned"
    assert (await result(client, token, "topapi/v2/user/get", {"userid": "returned"}))["unionid"] == unionid
    with pytest.raises(ValueError, match="unionid exists"):  # one person, one member of the org
        m.add_member(org, "twin", unionid=unionid)
    assert (await call(client, token, "topapi/user/getbyunionid", {"unionid": ""}))["errcode"] == 400002


async def test_admins_counts_and_listid(client: TestClient[Any, Any], token: str, org: SimOrg) -> None:
    admins = await result(client, token, "topapi/user/listadmin", {})
    assert {a["userid"]: a["sys_level"] for a in admins} == org.admins
    total = await result(client, token, "topapi/user/count", {"only_active": False})
    active = await result(client, token, "topapi/user/count", {"only_active": True})
    assert total["count"] == len(org.members)
    assert active["count"] == sum(1 for member in org.members.values() if member.active)
    ids = await result(client, token, "topapi/user/listid", {"dept_id": 2})
    assert ids["userid_list"] == org.dept_members[2]


async def test_role_list_pages_by_offset(client: TestClient[Any, Any], token: str, org: SimOrg) -> None:
    groups, offset = [], 0
    while True:
        page = await result(client, token, "topapi/role/list", {"offset": offset, "size": 2})
        groups += page["list"]
        offset += 2
        if not page["hasMore"]:
            break
    assert [g["groupId"] for g in groups] == list(org.role_groups)
    assert groups[0]["roles"][0] == {"id": org.role_groups[groups[0]["groupId"]].roles[0], "name": "主管理员"}
    assert (await call(client, token, "topapi/role/list", {"size": 201}))["errcode"] == 400002
    role = next(iter(org.roles.values()))
    members = await result(client, token, "topapi/role/simplelist", {"role_id": role.id, "size": 200})
    assert [u["userid"] for u in members["list"]] == role.members


async def test_scope_is_a_subtree(client: TestClient[Any, Any], token: str, org: SimOrg) -> None:
    top = org.children[1][-1]
    org.visible_root = top
    inside = {d.id for d in org.subtree(top)}
    outsider = next(u for u, member in org.members.items() if not set(member.departments) & inside)
    scopes = await call(client, token, "auth/scopes")
    assert scopes["auth_org_scopes"]["authed_dept"] == [top]
    assert (await call(client, token, "topapi/v2/department/listsub", {"dept_id": 1}))["errcode"] == 50004
    assert (await call(client, token, "topapi/v2/user/get", {"userid": outsider}))["errcode"] == 50002
    body = {"dept_id": 1, "cursor": 0, "size": 10}
    assert (await call(client, token, "topapi/v2/user/list", body))["errcode"] == 50004
    assert (await call(client, token, "topapi/user/listid", {"dept_id": 1}))["errcode"] == 0  # not scope-limited


async def test_failed_list_deletes_the_previous_batch_on_each_call(
    client: TestClient[Any, Any], token: str, sim: Simulator, org: SimOrg
) -> None:
    for i in range(450):
        sim.drop("dingappkey", m.add_member(org, f"new{i:03d}").dingtalk[0])

    async def fetch() -> tuple[list[str], bool]:
        doc = await call(client, token, "call_back/get_call_back_failed_result")
        assert doc["errcode"] == 0
        return [e[e["call_back_tag"]]["userid"][0] for e in doc["failed_list"]], doc["has_more"]

    first, more = await fetch()
    assert (first[0], first[-1], len(first), more) == ("new000", "new199", 200, True)
    again, more = await fetch()  # deletes the first batch
    assert (again[0], len(again), more) == ("new200", 200, True)
    sim.drop("dingappkey", m.remove_member(org, "new000").dingtalk[0])  # arrives between calls
    third, more = await fetch()
    assert (third[0], third[-1], len(third), more) == ("new400", "new000", 51, False)
    assert await fetch() == ([], False)


async def test_failed_entries_follow_the_documented_shape(sim: Simulator, app: DingTalkApp, org: SimOrg) -> None:
    sim.drop("dingappkey", m.add_member(org, "abc").dingtalk_legacy[0])
    sim.drop("dingappkey", m.add_department(org, parent_id=1).dingtalk[0])
    user, dept = app.failed
    assert user["call_back_tag"] == "user_add_org"
    assert user["user_add_org"] == {"userid": ["abc"], "corpid": "dingcorp"}
    assert isinstance(user["event_time"], int)
    assert dept["org_dept_create"]["deptid"] == [max(org.departments)]
    assert orjson.dumps(user)  # JSON-serializable as served
