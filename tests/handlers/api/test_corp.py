"""handlers.api.Corp: the JitAI corp operations on real PostgreSQL (directory written by bulk_register or SQL)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from handlers.api import Corp, CorpData, MemberFilter, corp_page, get_agent_id
from handlers.config import AppConfig, CallbackKeys, Secret, SuiteAuth, WecomInnerCorp, WecomProxyCorp
from handlers.errors import InvalidInput, NoRootDept, UnknownCorp, UnknownRecord
from handlers.model import Admin, Department, Member, Membership, Role, Snapshot
from handlers.store import credentials
from handlers.store.corps import ensure_corps
from handlers.store.directory import Directory, Reactivate, Source
from handlers.sync.fullsync import RunStatus, run_full_sync
from receiver.testing import Simulator, generate_org, run_simulator

AES = "a" * 43


def wecom(name: str, corp_id: str, api_base: str = "http://127.0.0.1:9") -> WecomInnerCorp:
    keys = CallbackKeys(Secret("tok"), Secret(AES), frozenset({corp_id}))
    return WecomInnerCorp(
        name=name, title=f"{name} title", corp_id=corp_id, agent_id="1000002", secret=Secret("app-secret-xyz"),
        contact_secret=Secret("contact-secret-xyz"), callback=keys, api_base=api_base,
    )  # fmt: skip


SUITE = SuiteAuth(
    name="Suite", title="Suite", suite_id="dk0001", suite_secret=Secret("suite-secret-xyz"), token=Secret("t"),
    aes_key=Secret(AES), provider_corp_id=None,
)  # fmt: skip


def config(*corps: WecomInnerCorp | WecomProxyCorp) -> AppConfig:
    return AppConfig(root="/nowhere", corps={c.name: c for c in corps}, auths={"Suite": SUITE})


def member(user_id: str, *depts: str, **extra: Any) -> Member:
    return Member(user_id, name=f"name-{user_id}", departments=tuple(Membership(d) for d in depts), **extra)


ORG = Snapshot(
    root_dept_id="100",
    departments=(
        Department("100", "0", "Root"),
        Department("1", "100", "One"),  # a department "1" that is not the root
        Department("2", "100", "Two"),
        Department("10", "2", "Ten"),
    ),
    members=(
        member("alice", "1"),
        member("bob", "2", "10"),
        member("carol", "10"),
        member("dave", "2"),
        member("erin", "1"),
    ),
    roles=(Role("r-platform", "Platform role"),),
    role_members=(("r-platform", "alice"),),
    admins=(Admin("alice", 1),),
)


@pytest.fixture
async def hq(pool: asyncpg.Pool) -> AsyncIterator[Corp]:
    app = config(wecom("HQ", "wwHQ"), wecom("Other", "wwOther"))
    async with pool.acquire() as conn:
        await ensure_corps(conn, app)
    async with await Corp.open(pool, app, "HQ") as corp:
        yield corp


@pytest.fixture
async def loaded(hq: Corp) -> Corp:
    result = await hq.bulk_register(ORG)
    assert result.status is RunStatus.SUCCEEDED
    return hq


async def api_changes(pool: asyncpg.Pool) -> list[tuple[str, str, str, list[str] | None]]:
    rows = await pool.fetch("SELECT entity, entity_id, op, fields FROM change_log WHERE source = 'api' ORDER BY id")
    return [(r["entity"], r["entity_id"], r["op"], r["fields"]) for r in rows]


async def test_open_refuses_an_unknown_corp(pool: asyncpg.Pool) -> None:
    with pytest.raises(UnknownCorp):
        await Corp.open(pool, config(), "Nope")


async def test_properties_follow_jitai_and_mask_every_secret(hq: Corp) -> None:
    assert (hq.title, hq.full_name, hq.corp_full_name, hq.corp_id) == ("HQ title", "corps.HQ", "corps.HQ", "wwHQ")
    assert hq.auth_config["secret"] == "***"
    assert hq.auth_config["contactSecret"] == "***"
    assert "secret-xyz" not in repr(dict(hq.auth_config))
    info = (await hq.get_corp_info()).to_json()
    assert info["fullName"] == "corps.HQ"
    assert "secret-xyz" not in repr(info)


async def test_root_dept_is_the_synced_root_not_department_one(loaded: Corp) -> None:
    root = await loaded.get_root_dept()
    assert (root.dept_id, root.name, root.corp_full_name) == ("100", "Root", "corps.HQ")


async def test_root_dept_without_a_recorded_root_is_the_top_of_the_largest_tree(hq: Corp, pool: asyncpg.Pool) -> None:
    rows = [("5", None), ("1", "5"), ("6", "5"), ("7", "6"), ("orphan", "gone")]
    await pool.executemany(
        "INSERT INTO departments (corp, dept_id, parent_id) VALUES ($1, $2, $3)", [(hq.row_id, *r) for r in rows]
    )
    assert (await hq.get_root_dept()).dept_id == "5"
    await pool.execute("UPDATE corps SET root_dept_id = '6' WHERE id = $1", hq.row_id)
    assert (await hq.get_root_dept()).dept_id == "6"
    await pool.execute("UPDATE corps SET root_dept_id = 'missing' WHERE id = $1", hq.row_id)
    assert (await hq.get_root_dept()).dept_id == "5"


async def test_root_dept_of_an_empty_corp_whose_platform_cannot_answer_is_unknown_and_says_why(hq: Corp) -> None:
    with pytest.raises(NoRootDept) as caught:
        await hq.get_root_dept()
    assert (caught.value.kind, caught.value.ids) == ("department", ("root",))
    assert str(caught.value).startswith("no root department: none is stored yet and the platform could not give it")
    assert "app-secret-xyz" not in str(caught.value) and "contact-secret-xyz" not in str(caught.value)


async def test_root_dept_of_a_proxy_corp_before_its_first_sync_is_created(pool: asyncpg.Pool) -> None:
    """The 代开发 seed: getRootDept "automatically creates if root department doesn't exist"."""
    sim = Simulator(seed=6)
    suite = sim.add_wecom_suite("dkTemplate01")
    org = generate_org(6, members=10, departments=4, depth=2)
    tenant = sim.add_suite_tenant(suite.suite_id, org, permanent_code="perm-code-1", agent_id=1000007)
    async with run_simulator(sim), aiohttp.ClientSession() as session:
        auth = SuiteAuth(
            name="Suite", title="Suite", suite_id=suite.suite_id, suite_secret=Secret(suite.suite_secret),
            token=Secret(suite.token), aes_key=Secret(suite.aes_key), provider_corp_id=suite.provider_corp_id,
            api_base=sim.wecom_api_base,
        )  # fmt: skip
        t1 = WecomProxyCorp(name="T1", title="T1", corp_id=tenant.corp_id, auth=auth)
        app = AppConfig(root="/nowhere", corps={"T1": t1}, auths={"Suite": auth})
        async with pool.acquire() as conn:
            await ensure_corps(conn, app)
        await credentials.store_tenant(pool, "Suite", tenant.corp_id, Secret("perm-code-1"), "1000007", {})
        await credentials.store_suite_ticket(pool, suite.suite_id, suite.tickets[-1], int(time.time()))
        async with await Corp.open(pool, app, "T1", session) as corp:
            root = await corp.get_root_dept()
            again = await corp.get_root_dept()
    assert (root.dept_id, root.name) == (str(org.visible_root), org.departments[org.visible_root].name)
    assert again == root  # stored: the second call reads it back
    assert await pool.fetchval("SELECT count(*) FROM departments") == 1
    assert await pool.fetchval("SELECT root_dept_id FROM corps WHERE name = 'T1'") == root.dept_id
    logged = await pool.fetch("SELECT entity, entity_id, op, source FROM change_log")
    assert [tuple(r) for r in logged] == [("department", root.dept_id, "create", "api")]


async def test_depts_come_in_natural_id_order(loaded: Corp) -> None:
    assert [d.dept_id for d in await loaded.get_depts()] == ["1", "2", "10", "100"]
    assert (await loaded.get_dept("10")).parent_id == "2"
    with pytest.raises(UnknownRecord):
        await loaded.get_dept("404")


async def test_members_filter_by_status_and_direct_department(loaded: Corp) -> None:
    assert [m.member_id for m in await loaded.get_members(dept_id="10")] == ["bob", "carol"]
    assert len(await loaded.get_members(status="active")) == 5
    assert await loaded.get_members(status="offline") == ()
    bob = await loaded.get_member("bob")
    assert (bob.dept_ids, bob.status, bob.offline_reason) == (("2", "10"), "active", None)
    with pytest.raises(InvalidInput) as caught:
        await loaded.get_members(status="gone")
    assert caught.value.field == "status"


async def test_members_updated_since_compares_the_last_change(loaded: Corp, pool: asyncpg.Pool) -> None:
    await pool.execute("UPDATE members SET updated_at = now() - interval '2 days' WHERE user_id <> 'erin'")
    since = datetime.now(UTC) - timedelta(days=1)
    assert [m.member_id for m in await loaded.get_members(updated_since=since)] == ["erin"]
    naive = since.replace(tzinfo=None)  # read as UTC
    assert [m.member_id for m in await loaded.get_members(updated_since=naive)] == ["erin"]


async def test_pages_walk_every_member_once_with_the_cursor(loaded: Corp) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = await loaded.page_members(MemberFilter(), limit=2, cursor=cursor)
        assert page.total == 5
        seen.extend(m.member_id for m in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["alice", "bob", "carol", "dave", "erin"]


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", "eyJsIjoiZGVwdHMiLCJrIjoiMSJ9"])
async def test_a_cursor_not_issued_for_the_list_is_refused(loaded: Corp, cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await loaded.page_members(cursor=cursor)  # the last one is a valid departments cursor
    assert caught.value.field == "cursor"


@pytest.mark.parametrize("limit", [0, 1001])
async def test_limit_outside_one_to_a_thousand_is_refused(loaded: Corp, limit: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        await loaded.page_depts(limit=limit)
    assert caught.value.field == "limit"


async def test_offline_member_is_local_and_logged_once(loaded: Corp, pool: asyncpg.Pool) -> None:
    (bob,) = await loaded.offline_member(["bob"])
    assert (bob.status, bob.offline_reason) == ("offline", "operator")
    assert bob.offline_at is not None
    (again,) = await loaded.offline_member(["bob"])
    assert again == bob
    assert await api_changes(pool) == [("member", "bob", "offline", ["status", "offline_reason", "offline_at"])]


async def test_offline_member_takes_over_a_platform_offline(loaded: Corp, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await Directory(conn, loaded.row_id, Source("event")).offline_member("dave", "platform")
    (dave,) = await loaded.offline_member(["dave"])
    assert dave.offline_reason == "operator"
    assert await api_changes(pool) == [("member", "dave", "offline", ["offline_reason"])]


async def test_offline_unknown_member_changes_nothing(loaded: Corp, pool: asyncpg.Pool) -> None:
    with pytest.raises(UnknownRecord) as caught:
        await loaded.offline_member(["bob", "ghost"])
    assert caught.value.ids == ("ghost",)
    assert (await loaded.get_member("bob")).status == "active"
    assert await api_changes(pool) == []


async def test_operator_offline_survives_full_sync_and_updates_until_a_new_join(
    loaded: Corp, pool: asyncpg.Pool
) -> None:
    await loaded.offline_member(["carol"])
    result = await loaded.bulk_register(ORG)  # the platform still lists carol
    assert result.counts["members"]["reactivated"] == 0
    assert (await loaded.get_member("carol")).offline_reason == "operator"
    async with pool.acquire() as conn:
        directory = Directory(conn, loaded.row_id, Source("event"))
        await directory.upsert_member(member("carol", "10", position="Lead"), reactivate=Reactivate.CONFIRMED)
        assert (await loaded.get_member("carol")).status == "offline"
        await directory.upsert_member(member("carol", "10"), reactivate=Reactivate.JOIN)
    carol = await loaded.get_member("carol")
    assert (carol.status, carol.offline_reason, carol.position) == ("active", None, "Lead")


async def test_set_user_role_replaces_local_roles_and_keeps_platform_ones(loaded: Corp, pool: asyncpg.Pool) -> None:
    first = await loaded.set_user_role("alice", ["viewer", "editor"])
    assert [(r.role_id, r.source) for r in first] == [("editor", "local"), ("viewer", "local")]  # what it set
    second = await loaded.set_user_role("alice", ["editor"])
    assert [r.role_id for r in second] == ["editor"]
    assert await loaded.set_user_role("alice", ["editor"]) == second
    assert [(r.role_id, r.source) for r in await loaded.get_user_roles("alice")] == [
        ("editor", "local"),
        ("r-platform", "platform"),  # kept, but not in setUserRole's answer
    ]
    assert await api_changes(pool) == [
        ("role", "editor", "create", None),
        ("role", "viewer", "create", None),
        ("role", "editor", "update", ["members"]),
        ("role", "viewer", "update", ["members"]),
        ("role", "viewer", "update", ["members"]),
    ]
    assert [r.to_json()["memberId"] for r in await loaded.get_user_roles("alice")] == ["alice", "alice"]


async def test_set_user_role_refuses_platform_roles_and_unknown_members(loaded: Corp) -> None:
    with pytest.raises(InvalidInput) as caught:
        await loaded.set_user_role("bob", ["r-platform"])
    assert caught.value.field == "roleIds"
    with pytest.raises(UnknownRecord):
        await loaded.set_user_role("ghost", ["x"])
    with pytest.raises(InvalidInput) as caught:
        await loaded.set_user_role("bob", [""])
    assert caught.value.field == "roleIds"


async def test_set_admin_replaces_local_admins_and_keeps_platform_ones(loaded: Corp, pool: asyncpg.Pool) -> None:
    assert await loaded.get_admin() == ("alice",)
    found = await loaded.set_admin(["bob", "alice"])
    assert [(a.member_id, a.source) for a in found] == [("alice", "platform"), ("bob", "local")]
    found = await loaded.set_admin(["dave"])
    assert [(a.member_id, a.source) for a in found] == [("alice", "platform"), ("dave", "local")]
    assert await api_changes(pool) == [("admin", "bob", "create", None), ("admin", "bob", "delete", None),
                                       ("admin", "dave", "create", None)]  # fmt: skip
    await loaded.set_admin([])
    assert await loaded.get_admin() == ("alice",)


async def test_signature_is_saved_once_and_read_back(loaded: Corp, pool: asyncpg.Pool) -> None:
    empty = await loaded.get_user_signature("bob")
    assert (empty.signature, empty.updated_at) == (None, None)
    saved = await loaded.save_user_signature("bob", "https://example.com/bob.png")
    assert saved.signature == "https://example.com/bob.png"
    await loaded.save_user_signature("bob", "https://example.com/bob.png")
    await loaded.save_user_signature("bob", "https://example.com/bob2.png")
    assert await api_changes(pool) == [("signature", "bob", "create", ["signature"]),
                                       ("signature", "bob", "update", ["signature"])]  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        await loaded.save_user_signature("bob", "  ")
    assert caught.value.field == "signature"


async def test_local_corp_data_uses_the_jitai_keys(loaded: Corp) -> None:
    data = await loaded.get_local_corp_data()
    body = data.to_json()
    assert body["rootDeptId"] == "100"
    assert [u["memberId"] for u in body["userList"]] == ["alice", "bob", "carol", "dave", "erin"]
    assert [d["deptId"] for d in body["deptList"]] == ["1", "2", "10", "100"]
    assert body["roleList"] == [
        {"roleId": "r-platform", "name": "Platform role", "groupName": None, "source": "platform",
         "memberIds": ["alice"]}
    ]  # fmt: skip
    assert [a["memberId"] for a in body["adminList"]] == ["alice"]
    assert body["userList"][1]["deptIds"] == ["2", "10"]


async def test_views_are_camel_case_with_string_ids(loaded: Corp) -> None:
    bob = (await loaded.get_member("bob")).to_json()
    assert {"memberId", "localId", "deptIds", "mainDeptId", "offlineReason", "corpFullName", "updatedAt"} <= set(bob)
    assert isinstance(bob["localId"], str)
    assert isinstance(bob["updatedAt"], str)
    assert set((await loaded.get_dept("2")).to_json()) >= {"deptId", "parentId", "name", "leaderIds"}


async def test_bulk_register_of_chosen_members_touches_only_them(hq: Corp, pool: asyncpg.Pool) -> None:
    result = await hq.bulk_register(CorpData("corps.HQ", "wwHQ", ORG), ["bob", "carol"])
    assert (result.status, result.run_id, result.counts["members"]["created"]) == (RunStatus.SUCCEEDED, None, 2)
    assert [m.member_id for m in await hq.get_members()] == ["bob", "carol"]
    assert await pool.fetchval("SELECT count(*) FROM change_log WHERE source = 'api'") == 2
    with pytest.raises(UnknownRecord):
        await hq.bulk_register(ORG, ["nobody"])


@pytest.mark.parametrize("given", [{"corpId": "wwHQ", "userList": []}, "corpData", None, [ORG]])
async def test_bulk_register_of_something_else_fails_before_anything_changes(
    hq: Corp, pool: asyncpg.Pool, given: Any
) -> None:
    await pool.execute(
        "UPDATE corps SET sync_requested_at = now(), sync_request_reason = 'drift' WHERE id = $1", hq.row_id
    )
    with pytest.raises(InvalidInput) as caught:
        await hq.bulk_register(given)
    assert caught.value.field == "corpData"
    assert await pool.fetchval("SELECT count(*) FROM sync_runs") == 0
    assert await pool.fetchval("SELECT sync_request_reason FROM corps WHERE id = $1", hq.row_id) == "drift"


async def test_a_full_sync_given_something_else_than_a_snapshot_is_a_failed_run(hq: Corp, pool: asyncpg.Pool) -> None:
    class Wrong:
        async def fetch_snapshot(self, progress: Any = None) -> Any:
            return {"userList": []}

    result = await run_full_sync(pool, hq.row_id, hq.config, Wrong(), trigger="manual")
    assert result.status is RunStatus.FAILED
    assert await pool.fetchval("SELECT status FROM sync_runs WHERE id = $1", result.run_id) == "failed"


@pytest.mark.parametrize("given", [1, None, "", "a\x00b"])
async def test_an_id_that_is_not_a_usable_string_is_invalid_input(loaded: Corp, given: Any) -> None:
    with pytest.raises(InvalidInput):
        await loaded.get_dept(given)
    with pytest.raises(InvalidInput):
        await loaded.get_member(given)


async def test_bulk_register_refuses_the_data_of_another_corp(hq: Corp) -> None:
    with pytest.raises(InvalidInput) as caught:
        await hq.bulk_register(CorpData("corps.Other", "wwOther", ORG))
    assert caught.value.field == "corpData"


async def test_corp_page_lists_configured_corps_and_suite_tenants(hq: Corp, pool: asyncpg.Pool) -> None:
    app = config(wecom("HQ", "wwHQ"), wecom("Other", "wwOther"))
    await pool.execute(
        "INSERT INTO corps (name, platform, type, corp_id, auth_name, title) "
        "VALUES ('Suite/wxT', 'wecom', 'corps.QywxProxyType', 'wxT', 'Suite', 'Tenant'), "
        "('Stale', 'wecom', 'corps.QywxInnerType', 'wwStale', NULL, NULL)"
    )
    first = await corp_page(pool, app, limit=2)
    assert ([c.name for c in first.items], first.total) == (["HQ", "Other"], 3)
    rest = await corp_page(pool, app, limit=2, cursor=first.next_cursor)
    assert ([c.name for c in rest.items], rest.next_cursor) == (["Suite/wxT"], None)
    assert rest.items[0].auth_full_name == "auths.Suite"


async def test_a_suite_tenant_opens_by_name_and_knows_its_agent_id(pool: asyncpg.Pool) -> None:
    app = config()
    await pool.execute(
        "INSERT INTO corps (name, platform, type, corp_id, auth_name, title) "
        "VALUES ('Suite/wxT', 'wecom', 'corps.QywxProxyType', 'wxT', 'Suite', 'Tenant')"
    )
    await credentials.store_tenant(pool, "Suite", "wxT", Secret("perm"), "1000009", {})
    tenant = await Corp.open(pool, app, "Suite/wxT")
    assert (tenant.title, tenant.full_name, tenant.auth_full_name) == ("Tenant", "corps.Suite/wxT", "auths.Suite")
    assert tenant.auth_config["suiteSecret"] == "***"
    assert await tenant.get_agent_id() == "1000009"
    assert await get_agent_id(pool, app, "wxT", "dk0001") == "1000009"
    with pytest.raises(UnknownCorp, match=r"^corp wxOther has not authorized suite dk0001"):
        await tenant.get_agent_id("wxOther", "dk0001")
    with pytest.raises(UnknownRecord, match=r"^unknown suite: dk-unknown$"):
        await get_agent_id(pool, app, "wxT", "dk-unknown")


async def test_third_corp_data_reads_the_platform_and_init_corp_writes_it(pool: asyncpg.Pool) -> None:
    sim = Simulator(seed=5)
    org = generate_org(5, members=12, departments=4, depth=2, tags=1)
    account = sim.add_wecom_corp(org, contact_new_ip=False, privacy=False)
    async with run_simulator(sim), aiohttp.ClientSession() as session:
        corp_config = WecomInnerCorp(
            name="HQ", title="HQ", corp_id=account.corp_id, agent_id=str(account.agent_id),
            secret=Secret(account.secret), contact_secret=Secret(account.contact_secret or ""),
            callback=CallbackKeys(Secret(account.token), Secret(account.aes_key), frozenset({account.corp_id})),
            api_base=sim.wecom_api_base,
        )  # fmt: skip
        app = config(corp_config)
        corp = await Corp.open(pool, app, "HQ", session)
        data = await corp.get_third_corp_data()
        assert len(data.snapshot.members) == 12
        assert len(data.to_json()["userList"]) == 12
        assert await pool.fetchval("SELECT count(*) FROM members") == 0
        first = await corp.init_corp()
        assert (first.status, first.trigger) == (RunStatus.SUCCEEDED, "first")
        assert len(await corp.get_members()) == 12
        again = await corp.init_corp()
        assert (again.trigger, again.changes) == ("manual", 0)
        assert (await corp.get_root_dept()).dept_id == data.snapshot.root_dept_id
