"""The simulated WeCom API: tokens, scope, pagination, suite authorization, and the org's changes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from receiver.testing import SimOrg, Simulator, WecomCorp, generate_org
from receiver.testing import mutations as m
from tests.support.clock import FakeClock

BASE = "/wecom/cgi-bin/"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def org() -> SimOrg:
    return generate_org(7, 400, 30, 4, multi_dept_ratio=0.3)


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    return Simulator(clock=clock, seed=3)


@pytest.fixture
def corp(sim: Simulator, org: SimOrg) -> WecomCorp:
    return sim.add_wecom_corp(org, corp_id="wwcorp", secret="app-secret", contact_secret="contact-secret")


@pytest.fixture
async def client(aiohttp_client: Any, sim: Simulator, corp: WecomCorp) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(sim.app)
    return client


async def get(client: TestClient[Any, Any], api: str, **params: Any) -> dict[str, Any]:
    response = await client.get(BASE + api, params={k: str(v) for k, v in params.items()})
    assert response.status == 200
    doc: dict[str, Any] = await response.json()
    return doc


async def post(client: TestClient[Any, Any], api: str, body: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = await client.post(BASE + api, params={k: str(v) for k, v in params.items()}, json=body)
    assert response.status == 200
    doc: dict[str, Any] = await response.json()
    return doc


async def token(client: TestClient[Any, Any], secret: str = "app-secret", corp_id: str = "wwcorp") -> str:  # noqa: S107 - a test credential
    doc = await get(client, "gettoken", corpid=corp_id, corpsecret=secret)
    assert (doc["errcode"], doc["errmsg"], doc["expires_in"]) == (0, "ok", 7200), doc
    value: str = doc["access_token"]
    return value


async def test_gettoken_gives_one_token_per_secret(client: TestClient[Any, Any]) -> None:
    app, contact = await token(client), await token(client, "contact-secret")
    assert app != contact
    assert await token(client) == app  # asked again while valid: the same token
    assert (await get(client, "gettoken", corpid="wwcorp", corpsecret="nope"))["errcode"] == 40001
    assert (await get(client, "gettoken", corpid="wwother", corpsecret="app-secret"))["errcode"] == 40013


async def test_expired_tokens_answer_42001_until_refreshed(client: TestClient[Any, Any], sim: Simulator) -> None:
    old = await token(client)
    sim.expire_tokens()
    assert (await get(client, "department/simplelist", access_token=old))["errcode"] == 42001
    new = await token(client)
    assert new != old
    assert (await get(client, "department/simplelist", access_token=new))["errcode"] == 0


async def test_tokens_expire_after_their_ttl(client: TestClient[Any, Any], clock: FakeClock) -> None:
    app = await token(client)
    clock.now += 7199
    assert (await get(client, "gettoken", corpid="wwcorp", corpsecret="app-secret"))["expires_in"] == 1
    clock.now += 2
    assert (await get(client, "tag/list", access_token=app))["errcode"] == 42001


async def test_missing_or_unknown_token(client: TestClient[Any, Any]) -> None:
    assert (await get(client, "tag/list"))["errcode"] == 41001
    assert (await get(client, "tag/list", access_token="forged"))["errcode"] == 40014


async def test_list_id_walks_every_user_department_pair_once(client: TestClient[Any, Any], org: SimOrg) -> None:
    contact = await token(client, "contact-secret")
    expected = Counter((u, d) for u, member in org.members.items() for d in member.departments)
    for limit in (7, 10000):
        seen: Counter[tuple[str, int]] = Counter()
        cursor, pages = "", 0
        while True:
            doc = await post(client, "user/list_id", {"cursor": cursor, "limit": limit}, access_token=contact)
            assert doc["errcode"] == 0, doc
            assert len(doc["dept_user"]) <= limit
            seen.update((row["userid"], row["department"]) for row in doc["dept_user"])
            pages += 1
            cursor = doc["next_cursor"]
            if not cursor:
                break
        assert seen == expected
        assert pages == -(-sum(expected.values()) // limit) or pages == 1


async def test_list_id_is_for_the_contact_secret_only(client: TestClient[Any, Any]) -> None:
    app, contact = await token(client), await token(client, "contact-secret")
    assert (await post(client, "user/list_id", {"limit": 10}, access_token=app))["errcode"] == 48002
    assert (await post(client, "user/list_id", {"limit": 0}, access_token=contact))["errcode"] == 40058
    assert (await post(client, "user/list_id", {"limit": 10001}, access_token=contact))["errcode"] == 40058
    assert (await post(client, "user/list_id", {"cursor": "@@", "limit": 5}, access_token=contact))["errcode"] == 40058


async def test_contact_secret_from_a_new_ip_cannot_read_details(client: TestClient[Any, Any], corp: WecomCorp) -> None:
    contact = await token(client, "contact-secret")
    blocked: list[tuple[str, dict[str, Any]]] = [
        ("department/list", {}),
        ("user/list", {"department_id": 1}),
        ("user/get", {"userid": "u1"}),
    ]
    for api, params in blocked:
        assert (await get(client, api, access_token=contact, **params))["errcode"] == 48009
    assert (await get(client, "department/simplelist", access_token=contact))["errcode"] == 0
    corp.contact_new_ip = False
    doc = await get(client, "user/get", access_token=contact, userid="u000001")
    assert doc["errcode"] == 0
    assert "mobile" in doc


async def test_user_list_covers_each_membership_once(client: TestClient[Any, Any], org: SimOrg) -> None:
    app = await token(client)
    seen: Counter[tuple[str, int]] = Counter()
    for dept_id in org.departments:
        doc = await get(client, "user/list", access_token=app, department_id=dept_id)
        assert doc["errcode"] == 0
        seen.update((row["userid"], dept_id) for row in doc["userlist"])
    assert seen == Counter((u, d) for u, member in org.members.items() for d in member.departments)


async def test_user_fields_follow_the_documented_shape(client: TestClient[Any, Any], org: SimOrg) -> None:
    app = await token(client)
    doc = await get(client, "user/get", access_token=app, userid="u000002")
    member = org.members["u000002"]
    assert doc["errcode"] == 0
    assert doc["userid"] == "u000002"
    assert doc["name"] == member.name
    assert doc["department"] == member.departments
    assert doc["main_department"] == member.main_department
    assert len(doc["is_leader_in_dept"]) == len(doc["order"]) == len(doc["department"])
    assert "mobile" not in doc
    assert "email" not in doc
    assert "open_userid" not in doc  # self-built apps get none
    simple = await get(client, "user/simplelist", access_token=app, department_id=member.departments[0])
    assert {"userid": "u000002", "name": member.name, "department": member.departments} in simple["userlist"]


async def test_unknown_ids(client: TestClient[Any, Any]) -> None:
    app = await token(client)
    assert (await get(client, "user/get", access_token=app, userid="ghost"))["errcode"] == 60111
    assert (await get(client, "department/get", access_token=app, id=99999))["errcode"] == 60123
    assert (await get(client, "user/list", access_token=app, department_id="x"))["errcode"] == 60123
    assert (await get(client, "tag/get", access_token=app, tagid=99999))["errcode"] == 40068


async def test_department_list_is_recursive_below_the_id(client: TestClient[Any, Any], org: SimOrg) -> None:
    app = await token(client)
    everything = await get(client, "department/list", access_token=app)
    assert {d["id"] for d in everything["department"]} == set(org.departments)
    assert everything["department"][0] == {
        "id": 1, "name": org.departments[1].name, "name_en": org.departments[1].name_en,
        "department_leader": org.departments[1].leaders, "parentid": 0, "order": org.departments[1].order,
    }  # fmt: skip
    below = await get(client, "department/list", access_token=app, id=2)
    assert {d["id"] for d in below["department"]} == {d.id for d in org.subtree(2)}
    simple = await get(client, "department/simplelist", access_token=app, id=2)
    assert simple["department_id"][0] == {"id": 2, "parentid": 1, "order": org.departments[2].order}
    one = await get(client, "department/get", access_token=app, id=2)
    assert one["department"]["id"] == 2


async def test_visible_scope_hides_the_rest_of_the_corp(client: TestClient[Any, Any], org: SimOrg) -> None:
    top = org.children[1][-1]
    org.visible_root = top
    inside = {d.id for d in org.subtree(top)}
    outside = next(d for d in org.departments if d not in inside)
    outsider = next(u for u, member in org.members.items() if not set(member.departments) & inside)
    app, contact = await token(client), await token(client, "contact-secret")
    listed = await get(client, "department/simplelist", access_token=app)
    assert {d["id"] for d in listed["department_id"]} == inside
    assert listed["department_id"][0]["id"] == top  # the root of what is visible is not department 1
    assert (await get(client, "department/get", access_token=app, id=outside))["errcode"] == 60011
    assert (await get(client, "user/list", access_token=app, department_id=outside))["errcode"] == 60011
    assert (await get(client, "user/get", access_token=app, userid=outsider))["errcode"] == 60011
    everything = await get(client, "department/simplelist", access_token=contact)
    assert len(everything["department_id"]) == len(org.departments)


async def test_tags_and_admins(client: TestClient[Any, Any], org: SimOrg) -> None:
    app = await token(client)
    tags = await get(client, "tag/list", access_token=app)
    assert [t["tagid"] for t in tags["taglist"]] == list(org.tags)
    tag = org.tags[1]
    doc = await get(client, "tag/get", access_token=app, tagid=1)
    assert doc["tagname"] == tag.tagname
    assert [u["userid"] for u in doc["userlist"]] == tag.users
    assert doc["partylist"] == tag.parties
    admins = await get(client, "agent/get_admin_list", access_token=app)
    assert {a["userid"]: a["auth_type"] for a in admins["admin"]} == {
        u: 1 if level == 1 else 0 for u, level in org.admins.items()
    }
    assert (await post(client, "agent/get_admin_list", {"agentid": 1000002}, access_token=app))["errcode"] == 0


async def test_the_api_follows_mutations(client: TestClient[Any, Any], org: SimOrg) -> None:
    app = await token(client)
    userid = m.add_member(org, departments=[2]).subject
    assert (await get(client, "user/get", access_token=app, userid=userid))["department"] == [2]
    m.rename_member(org, str(userid), "renamed1")
    assert (await get(client, "user/get", access_token=app, userid=userid))["errcode"] == 60111
    assert (await get(client, "user/get", access_token=app, userid="renamed1"))["errcode"] == 0
    m.remove_member(org, "renamed1")
    assert (await get(client, "user/get", access_token=app, userid="renamed1"))["errcode"] == 60111


# -- suites ------------------------------------------------------------------------------------


async def test_third_party_suite_authorization_flow(client: TestClient[Any, Any], sim: Simulator, org: SimOrg) -> None:
    suite = sim.add_wecom_suite("wwsuite1", suite_secret="suite-secret")
    tenant_org = generate_org(8, 50, 5, 3)
    tenant = sim.add_suite_tenant("wwsuite1", tenant_org, corp_id="wwtenant")
    old_ticket = suite.ticket
    sim.issue_suite_ticket("wwsuite1")
    body = {"suite_id": "wwsuite1", "suite_secret": "suite-secret", "suite_ticket": old_ticket}
    assert (await post(client, "service/get_suite_token", body))["errcode"] == 40085
    got = await post(client, "service/get_suite_token", {**body, "suite_ticket": suite.ticket})
    assert set(got) == {"suite_access_token", "expires_in"}  # no errcode on success
    suite_token = got["suite_access_token"]

    code, xml = sim.create_auth("wwsuite1", "wwtenant")
    assert b"<InfoType><![CDATA[create_auth]]></InfoType>" in xml
    assert code.encode() in xml
    granted = await post(client, "service/get_permanent_code", {"auth_code": code}, suite_access_token=suite_token)
    assert granted["errcode"] == 0
    assert granted["auth_corp_info"]["corpid"] == "wwtenant"
    assert granted["permanent_code"] == tenant.permanent_code
    assert granted["auth_info"]["agent"][0]["privilege"]["allow_party"] == [tenant_org.visible_root]
    again = await post(client, "service/get_permanent_code", {"auth_code": code}, suite_access_token=suite_token)
    assert again["errcode"] == 40078  # single use

    corp_body = {"auth_corpid": "wwtenant", "permanent_code": tenant.permanent_code}
    info = await post(client, "service/get_auth_info", corp_body, suite_access_token=suite_token)
    assert info["errcode"] == 0
    assert info["auth_info"]["agent"][0]["is_customized_app"] is False
    corp_token = await post(client, "service/get_corp_token", corp_body, suite_access_token=suite_token)
    assert set(corp_token) == {"access_token", "expires_in"}
    user = await get(client, "user/get", access_token=corp_token["access_token"], userid="u000001")
    assert user["open_userid"].startswith("wo")
    # a third-party permanent code is not a gettoken secret
    assert (await get(client, "gettoken", corpid="wwtenant", corpsecret=tenant.permanent_code))["errcode"] == 40001
    wrong = {**corp_body, "permanent_code": "nope"}
    assert (await post(client, "service/get_corp_token", wrong, suite_access_token=suite_token))["errcode"] == 40084
    sim.expire_tokens()
    assert (await post(client, "service/get_auth_info", corp_body, suite_access_token=suite_token))["errcode"] == 42009


async def test_proxy_template_permanent_code_is_a_gettoken_secret(client: TestClient[Any, Any], sim: Simulator) -> None:
    suite = sim.add_wecom_suite("dktemplate", suite_secret="s")
    tenant = sim.add_suite_tenant("dktemplate", generate_org(9, 30, 4, 3), corp_id="wwproxy", permanent_code="pc1")
    got = await post(
        client, "service/get_suite_token", {"suite_id": "dktemplate", "suite_secret": "s", "suite_ticket": suite.ticket}
    )
    suite_token = got["suite_access_token"]
    assert (await token(client, "pc1", "wwproxy")) != ""
    corp_body = {"auth_corpid": "wwproxy", "permanent_code": "pc1"}
    assert (await post(client, "service/get_corp_token", corp_body, suite_access_token=suite_token))["errcode"] == 48002

    code, xml = sim.reset_permanent_code("dktemplate", "wwproxy")
    assert b"reset_permanent_code" in xml
    assert (await token(client, "pc1", "wwproxy")) != ""  # the old secret works until the exchange
    await post(client, "service/get_permanent_code", {"auth_code": code}, suite_access_token=suite_token)
    assert tenant.permanent_code != "pc1"
    assert (await get(client, "gettoken", corpid="wwproxy", corpsecret="pc1"))["errcode"] == 40001
    assert await token(client, tenant.permanent_code or "", "wwproxy")
    sim.cancel_auth("dktemplate", "wwproxy")
    assert (await get(client, "gettoken", corpid="wwproxy", corpsecret=tenant.permanent_code))["errcode"] == 40001
