"""One person, one identity: a DingTalk employee who leaves and comes back under a new userid with the same unionid
keeps their local member (localId) and their person in the local user pool, through callbacks and through full
sync; bulkRegister and full sync register people into the pool (DDInnerType seed, "用户身份绑定")."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from receiver.api import get_corp
from receiver.keys import CORP_ROWS, POOL
from receiver.testing import mutations
from tests.support.world import World, running_world

IDENTITY_SQL = "SELECT id, user_id, status, local_user FROM members WHERE corp = $1 AND union_id = $2"


@pytest.fixture
async def world(tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]) -> AsyncIterator[World]:
    async with running_world(tmp_path, db_url, aiohttp_client) as running:
        yield running


async def _person(world: World, unionid: str) -> list[tuple[object, ...]]:
    rows = await world.app[POOL].fetch(IDENTITY_SQL, world.app[CORP_ROWS]["Sales"], unionid)
    return [tuple(r) for r in rows]


async def test_a_dingtalk_person_back_under_a_new_userid_keeps_their_identity_through_callbacks(world: World) -> None:
    org = world.sales.org
    leaver = sorted(org.members)[5]
    unionid = org.members[leaver].unionid
    [(local_id, _, status, local_user)] = await _person(world, unionid)
    assert (status, local_user is not None) == ("active", True)  # registered by the first full sync
    corp = await get_corp(world.app, "Sales")
    await corp.set_user_role(leaver, ["reviewer"])
    await corp.save_user_signature(leaver, "https://example.com/s.png")

    await world.push("Sales", mutations.remove_member(org, leaver).dingtalk)
    await world.drained()
    assert await _person(world, unionid) == [(local_id, leaver, "offline", local_user)]

    back = mutations.add_member(org, "back.again", departments=[org.visible_root], unionid=unionid)
    await world.push("Sales", back.dingtalk)
    await world.drained()
    assert await _person(world, unionid) == [(local_id, "back.again", "active", local_user)]
    member = await corp.get_member("back.again")
    assert (member.local_id, member.local_user_id) == (str(local_id), str(local_user))
    assert [r.role_id for r in await corp.get_user_roles("back.again") if r.source == "local"] == ["reviewer"]
    assert (await corp.get_user_signature("back.again")).signature == "https://example.com/s.png"
    await world.assert_in_sync("Sales")
    assert await world.sync_request("Sales") is None
    log = await world.app[POOL].fetch(
        "SELECT entity_id, op FROM change_log WHERE corp = $1 AND entity = 'member' AND source = 'event' ORDER BY id",
        world.app[CORP_ROWS]["Sales"],
    )
    assert [tuple(r) for r in log][-3:] == [(leaver, "offline"), ("back.again", "rename"), ("back.again", "reactivate")]


async def test_a_dingtalk_person_back_under_a_new_userid_keeps_their_identity_through_full_sync(world: World) -> None:
    org = world.sales.org
    leaver = sorted(org.members)[6]
    unionid = org.members[leaver].unionid
    [(local_id, _, _, local_user)] = await _person(world, unionid)
    mutations.remove_member(org, leaver)  # no callback reaches corpsync: only a full sync sees it
    mutations.add_member(org, "rehired", departments=[org.visible_root], unionid=unionid)
    result = await (await get_corp(world.app, "Sales")).sync_corp()
    assert result.counts["members"]["renamed"] == 1
    assert result.counts["members"]["created"] == 0
    assert await _person(world, unionid) == [(local_id, "rehired", "active", local_user)]
    await world.assert_in_sync("Sales")


async def test_a_new_dingtalk_person_is_not_merged_with_someone_else(world: World) -> None:
    org = world.sales.org
    hire = mutations.add_member(org, "newcomer", departments=[org.visible_root])
    await world.push("Sales", hire.dingtalk)
    await world.drained()
    [(local_id, user_id, status, local_user)] = await _person(world, org.members["newcomer"].unionid)
    assert (user_id, status) == ("newcomer", "active")
    pool = world.app[POOL]
    assert await pool.fetchval("SELECT count(*) FROM members WHERE local_user = $1", local_user) == 1
    assert await pool.fetchval("SELECT max(id) FROM members") == local_id  # a new member, and its own person


async def test_local_corp_data_holds_the_local_user_pool(world: World) -> None:
    sales, hq = await get_corp(world.app, "Sales"), await get_corp(world.app, "HQ")
    data = (await sales.get_local_corp_data()).to_json()
    pool = {u["identity"]: u for u in data["localUserList"]}
    org = world.sales.org
    assert set(pool) == {f"unionId:{m.unionid}" for m in org.members.values()}
    some = sorted(org.members)[0]
    person = pool[f"unionId:{org.members[some].unionid}"]
    assert (person["memberIds"], person["platform"], person["name"]) == ([some], "dingtalk", org.members[some].name)
    member = next(u for u in data["userList"] if u["memberId"] == some)
    assert member["localUserId"] == person["localUserId"]
    # WeCom self-built: the person is the userid, under the corp's corpid.
    hq_pool = {u["identity"] for u in (await hq.get_local_corp_data()).to_json()["localUserList"]}
    assert hq_pool == {f"userId:{world.hq.corp_id}:{u}" for u in world.hq.org.members}


async def test_bulk_register_registers_chosen_members_into_the_pool(world: World) -> None:
    org, corp = world.sales.org, await get_corp(world.app, "Sales")
    mutations.add_member(org, "registered.one", departments=[org.visible_root])
    mutations.add_member(org, "left.alone", departments=[org.visible_root])
    data = await corp.get_third_corp_data()
    await corp.bulk_register(data, ["registered.one"])
    member = await corp.get_member("registered.one")
    assert member.local_user_id is not None
    pool = {u.identity: u for u in (await corp.get_local_corp_data()).users}
    person = pool[f"unionId:{org.members['registered.one'].unionid}"]
    assert (person.local_user_id, person.member_ids) == (member.local_user_id, ("registered.one",))
    assert f"unionId:{org.members['left.alone'].unionid}" not in pool  # not chosen: not written at all
    await corp.bulk_register(data)  # the whole directory: everyone is registered, no one twice
    pool = {u.identity: u for u in (await corp.get_local_corp_data()).users}
    assert len(pool) == len(org.members)
    assert pool[f"unionId:{org.members['registered.one'].unionid}"].local_user_id == member.local_user_id
