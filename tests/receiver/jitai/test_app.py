"""receiver.jitai beyond the seeds' examples: its errors, its loop, the values it answers with, its client."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.errors import InvalidInput, UnknownCorp, UnknownRecord
from receiver.jitai import (
    App,
    CorpData,
    CorpElement,
    CorpMember,
    Field,
    JitaiError,
    QywxClient,
    QywxProxyCorp,
    SyncNotDone,
)
from tests.support.jitai import ENV, INNER_CORP_ID, PROXY_CORP_ID, SeedWorld, authorize_tenants, seed_world, sql


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeedWorld]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    with seed_world(tmp_path) as built:
        yield built


@pytest.fixture
def app(world: SeedWorld, db_url: str) -> Iterator[App]:
    authorize_tenants(db_url)
    with App(world.app_dir, database_url=db_url) as opened:
        yield opened


def runs(db_url: str) -> list[tuple[str, str]]:
    return [(r["trigger"], r["status"]) for r in sql(db_url, "SELECT trigger, status FROM sync_runs ORDER BY id")]


# -- values ------------------------------------------------------------------------------------------------------


def test_a_field_prints_formats_and_compares_as_its_value() -> None:
    name = Field("研发部")
    assert (str(name), f"{name}", f"{name:>4}", name.value, repr(name)) == (
        "研发部",
        "研发部",
        " 研发部",
        "研发部",
        "'研发部'",
    )
    assert name == "研发部" and name == Field("研发部") and name != "x"
    assert hash(name) == hash("研发部") and not Field(None)


def test_a_list_field_reads_as_its_list() -> None:
    dept_ids = Field(["2", "10"])
    assert (list(dept_ids), len(dept_ids), dept_ids[1], "10" in dept_ids) == (["2", "10"], 2, "10", True)


def test_methods_take_the_seeds_parameter_names() -> None:
    names = {"getDept": ["deptId"], "getMember": ["memberId"], "getMembers": ["status"],
             "offlineMember": ["memberIdList"], "setUserRole": ["memberId", "roleIdList"],
             "setAdmin": ["memberIdList"], "getUserSignature": ["memberId"],
             "saveUserSignature": ["memberId", "signature"], "bulkRegister": ["corpData", "memberList"]}  # fmt: skip
    for method, params in names.items():
        assert list(inspect.signature(getattr(CorpElement, method)).parameters)[1:] == params, method
    assert list(inspect.signature(QywxProxyCorp.getAgentId).parameters) == ["corpId", "suiteId"]
    assert isinstance(inspect.getattr_static(QywxProxyCorp, "getAgentId"), staticmethod)


def test_records_read_by_attribute_as_dict_and_say_which_fields_exist(app: App) -> None:
    member = app.getElement("corps.MyQywxCorp").getMember("user001")
    assert isinstance(member, CorpMember)
    assert (member.memberId.value, member["memberId"], member.toDict()["status"]) == ("user001", "user001", "active")
    assert member.deptIds.value == ["2"]
    with pytest.raises(
        AttributeError, match=r"CorpMember has no field 'nmae' \(fields: memberId, localId, localUserId, name"
    ):
        _ = member.nmae
    assert "mobile" not in repr(member)  # a repr may end up in a log: no contact details


def test_corp_data_is_a_dict_and_an_object_and_its_repr_holds_no_directory(app: App) -> None:
    data = app.getElement("corps.MyQywxCorp").getThirdCorpData()
    assert isinstance(data, CorpData) and isinstance(data, dict)
    assert data.corpId == data["corpId"] == INNER_CORP_ID
    assert data.userDict["user001"]["memberId"] == "user001"
    assert repr(data).startswith(f"CorpData(corpId='{INNER_CORP_ID}'") and "user001" not in repr(data)
    with pytest.raises(AttributeError, match="CorpData has no key 'userdict'"):
        _ = data.userdict


# -- errors ------------------------------------------------------------------------------------------------------


def test_unknown_elements_and_records_are_one_clear_line(app: App) -> None:
    with pytest.raises(UnknownCorp, match=r"^no element corps.Nope in .* \(corps: corps.CorpA, corps.CorpB, "):
        app.getElement("corps.Nope")
    with pytest.raises(JitaiError, match="corps elements only"):
        app.getElement("auths.QywxProxyAuth")
    with pytest.raises(InvalidInput, match=r"^fullName: must be a string"):
        app.getElement(42)
    corp = app.getElement("corps.MyQywxCorp")
    with pytest.raises(UnknownRecord, match=r"^unknown member: ghost$"):
        corp.getMember("ghost")
    with pytest.raises(UnknownRecord, match=r"^unknown department: 404$"):
        corp.getDept(404)  # a number is a WeCom department id


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.offlineMember("user001"), "memberIdList"),
        (lambda c: c.setUserRole("user001", "role001"), "roleIdList"),
        (lambda c: c.setUserRole(memberId=["user001"], roleIdList=[]), "memberId"),
        (lambda c: c.setAdmin(None), "memberIdList"),
        (lambda c: c.getMember(None), "memberId"),
        (lambda c: c.getMembers(status=1), "status"),
        (lambda c: c.saveUserSignature("user001", b"png"), "signature"),
        (lambda c: c.bulkRegister(c.getThirdCorpData().copy()), "corpData"),
        (lambda c: c.bulkRegister(c.getThirdCorpData(), memberList="user001"), "memberList"),
    ],
)
def test_a_bad_argument_is_invalid_input_naming_the_seeds_parameter_and_changes_nothing(
    app: App, db_url: str, call: Any, field: str
) -> None:
    corp = app.getElement("corps.MyQywxCorp")
    before = (runs(db_url), sql(db_url, "SELECT count(*) FROM change_log WHERE source = 'api'")[0][0])
    with pytest.raises(InvalidInput) as caught:
        call(corp)
    assert caught.value.field == field and "\n" not in str(caught.value)
    assert (runs(db_url), sql(db_url, "SELECT count(*) FROM change_log WHERE source = 'api'")[0][0]) == before


def test_bulk_register_of_chosen_members_takes_ids_or_member_records(app: App, db_url: str) -> None:
    corp = app.getElement("corps.MyQywxCorp")
    corp.offlineMember(["user001", "user002"])
    data = corp.getThirdCorpData()
    corp.bulkRegister(data, memberList=[corp.getMember("admin001"), "admin002", data.userDict["admin003"]])
    assert runs(db_url) == [("first", "succeeded")]  # chosen members: no run, nothing removed
    assert corp.getMember("user001").status == "offline"  # an operator offline stays


def test_a_failed_first_sync_on_get_element_says_why_in_one_line(world: SeedWorld, db_url: str) -> None:
    world.sim.fail("wecom:gettoken", times=20, errcode=40013, errmsg="invalid corpid")
    try:
        with App(world.app_dir, database_url=db_url) as app, pytest.raises(SyncNotDone) as caught:
            app.getElement("corps.MyQywxCorp")
    finally:
        world.sim.clear_faults()
    assert caught.value.status == "failed" and "\n" not in str(caught.value)
    assert str(caught.value).startswith("sync of MyQywxCorp failed (run ") and "40013" in str(caught.value)


def test_sync_that_would_offline_too_many_is_quarantined_until_allowed(app: App, world: SeedWorld) -> None:
    corp = app.getElement("corps.MyQywxCorp")
    for userid in [u for u in world.inner.members if u.startswith("u0")]:
        world.inner.drop_member(userid)
    with pytest.raises(SyncNotDone, match=r"quarantined .* syncCorp\(allowDeletes=True\)") as caught:
        corp.syncCorp()
    assert caught.value.status == "quarantined"
    assert corp.getMember("u000001").status == "active"  # held
    corp.syncCorp(allowDeletes=True)
    assert corp.getMember("u000001").status == "offline"


def test_get_agent_id_is_static_and_needs_an_open_app(world: SeedWorld, db_url: str) -> None:
    with pytest.raises(JitaiError, match="no App is open"):
        QywxProxyCorp.getAgentId("corp123", "suite456")
    authorize_tenants(db_url)
    with App(world.app_dir, database_url=db_url):
        assert QywxProxyCorp.getAgentId(corpId="corp123", suiteId="suite456") == "1000456"
        with pytest.raises(UnknownRecord):
            QywxProxyCorp.getAgentId("corp123", "no-such-suite")
    with pytest.raises(JitaiError, match="no App is open"):
        QywxProxyCorp.getAgentId("corp123", "suite456")


# -- the loop ----------------------------------------------------------------------------------------------------


def test_a_call_from_a_running_event_loop_is_refused_not_left_to_stall_it(app: App) -> None:
    corp = app.getElement("corps.MyQywxCorp")

    async def inside() -> str:
        with pytest.raises(JitaiError, match="would block this thread's running event loop"):
            corp.getMembers()
        return await asyncio.to_thread(lambda: corp.getMember("user001").name.value)  # the way that works

    assert asyncio.run(inside()) == "示例成员0"


def test_a_closed_app_says_so_and_closing_twice_is_fine(world: SeedWorld, db_url: str) -> None:
    app = App(world.app_dir, database_url=db_url)
    corp = app.getElement("corps.MyQywxCorp")
    app.close()
    app.close()
    with pytest.raises(JitaiError, match="the App is closed"):
        corp.getAdmin()
    assert "(closed)" in repr(app)


def test_app_defaults_come_from_the_corpsync_settings(
    world: SeedWorld, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORPSYNC_APP_DIR", str(world.app_dir))
    monkeypatch.setenv("CORPSYNC_DATABASE_URL", db_url)
    with App() as app:
        assert app.getElement("corps.testNailDivision").title == "测试钉钉组织"


# -- the client --------------------------------------------------------------------------------------------------


def test_client_calls_share_the_corps_stored_token(app: App, world: SeedWorld, db_url: str) -> None:
    corp = app.getElement("corps.MyQywxCorp")  # its first sync fetched the token
    client = corp.getClient()
    assert isinstance(client, QywxClient)
    assert client.user.get("user001")["userid"] == "user001"
    assert {u["userid"] for u in client.user.list(2)} >= {"user001", "user002"}
    assert [t["tagid"] for t in client.tag.list()] == sorted(world.inner.tags)
    assert client.call("department/get", {"id": "1"})["department"]["id"] == 1
    with App(world.app_dir, database_url=db_url) as other:
        other.getElement("corps.MyQywxCorp").getClient().department.get(1)
    assert world.sim.calls["wecom:gettoken"] == 1  # one token for the sync, the client and the other App


def test_a_database_that_cannot_be_reached_is_one_line(world: SeedWorld) -> None:
    with pytest.raises(JitaiError, match=r"^cannot open the database: ") as caught:
        App(world.app_dir, database_url="postgresql://nobody@127.0.0.1:9/none")
    assert "\n" not in str(caught.value)


def test_a_tenant_not_yet_authorized_says_so_on_get_element(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    with seed_world(tmp_path, examples=False) as world, App(world.app_dir, database_url=db_url) as app:
        with pytest.raises(SyncNotDone) as caught:
            app.getElement("corps.MyQywxProxyCorp")
        assert "no permanent code stored (authorization not exchanged yet)" in str(caught.value)
        tenant = app.getElement("corps.MyQywxProxyCorp")  # the first sync is tried once, as JitAI does
        assert isinstance(tenant, QywxProxyCorp) and tenant.corpId == PROXY_CORP_ID
