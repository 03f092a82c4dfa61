"""Scenarios end to end: the simulator changes its orgs and pushes their callbacks to the real app (signed, encrypted,
HTTP); the app's worker applies them and, where the incremental path noticed drift, a full sync repairs it. Each
scenario ends with the local directory equal to the simulator's."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from receiver.keys import CORP_ROWS, POOL, WORKER
from receiver.testing import Callbacks, SimOrg, mutations
from tests.support.eventkit import until
from tests.support.world import APPLY_WITHIN, Corp, World, running_world


@pytest.fixture
async def world(tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]) -> AsyncIterator[World]:
    async with running_world(tmp_path, db_url, aiohttp_client) as running:
        yield running


def some_changes(org: SimOrg, rng: random.Random) -> list[Callbacks]:
    """A day of HR work: hires, renames, moves, a leaver, a new team, a renamed department."""
    depts = sorted(d for d in org.departments if d != org.root_id)
    people = sorted(org.members)
    hire = mutations.add_member(org, departments=[rng.choice(depts)])
    team = mutations.add_department(org, parent_id=rng.choice(depts), name="新团队")
    return [
        hire,
        mutations.update_member(org, str(hire.subject), name="改名一"),
        mutations.update_member(org, str(hire.subject), name="改名二"),
        team,
        mutations.move_member(org, people[3], [int(str(team.subject)), org.root_id]),
        mutations.update_member(org, people[4], name="另一个名字"),
        mutations.remove_member(org, people[5]),
        mutations.rename_department(org, depts[1], "改名的部门"),
    ]


def plaintexts(corp: Corp, changes: Sequence[Callbacks]) -> list[bytes]:
    return [p for c in changes for p in (c.wecom if corp == "HQ" else c.dingtalk)]


# -- duplicates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("corp", ["HQ", "Sales"])
async def test_duplicate_callbacks_are_applied_once(world: World, corp: Corp) -> None:
    pushed = plaintexts(corp, some_changes(world.org(corp), random.Random(1)))
    for plaintext in pushed:
        await world.replay(corp, plaintext, times=2)  # the same request twice: a retry after a lost answer
    await world.push(corp, pushed)  # each again, re-signed with a new nonce and timestamp
    await world.push(corp, pushed[:2])  # and a late duplicate of the first name change, after the second
    await world.drained()
    stored = await world.app[POOL].fetchval("SELECT count(*) FROM inbox WHERE stream = $1", corp)
    assert stored == len(pushed)
    await world.settle(corp)


# -- reordering ------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
@pytest.mark.parametrize("corp", ["HQ", "Sales"])
async def test_reordered_callbacks_converge(world: World, corp: Corp, order: str) -> None:
    org = world.org(corp)
    team = mutations.add_department(org, parent_id=org.root_id, name="后建的部门")
    hire = mutations.add_member(org, departments=[int(str(team.subject))])
    changes = [
        team,
        hire,  # a member into a department whose create arrives later
        mutations.update_member(org, str(hire.subject), name="入职后改名"),  # an update before its create
        mutations.add_department(org, parent_id=int(str(team.subject)), name="子部门"),
        mutations.move_member(org, sorted(org.members)[7], [int(str(team.subject))]),
        mutations.rename_department(org, int(str(team.subject)), "改名后的部门"),
    ]
    pushed = plaintexts(corp, changes)
    if order == "reversed":
        pushed.reverse()
    else:
        random.Random(7).shuffle(pushed)
    await world.push(corp, pushed)
    await world.drained()
    await world.assert_in_sync(corp)  # creates arriving after their updates read the member / department back
    await world.settle(corp)  # a reference to a department not created yet asked for a full sync: it agrees


# -- thin events -----------------------------------------------------------------------------------


async def test_thin_wecom_events_are_completed_from_the_platform(world: World) -> None:
    org = world.hq.org
    people = sorted(org.members)
    team = mutations.add_department(org, parent_id=org.root_id, name="只有编号的部门")
    target = int(str(team.subject))
    moved = next(d for d in sorted(org.departments) if org.departments[d].parentid == org.root_id and d != target)
    changes = [
        team,
        mutations.add_member(org, name="只有编号的新人", departments=[target]),
        mutations.move_member(org, people[2], [target, org.root_id]),
        mutations.move_department(org, moved, target),
        mutations.remove_member(org, people[6]),
    ]
    thin = [p for c in changes for p in c.wecom_thin]
    assert len(thin) == len(changes) and all(b"<Name>" not in p for p in thin)  # IDs only
    reads = world.sim.calls["wecom:user/get"] + world.sim.calls["wecom:department/get"]
    await world.push("HQ", thin)
    await world.drained()
    assert world.sim.calls["wecom:user/get"] + world.sim.calls["wecom:department/get"] > reads
    await world.assert_in_sync("HQ")  # no full sync needed
    assert await world.sync_request("HQ") is None


# -- a userid changed (WeCom NewUserID) ---------------------------------------------------------------


@pytest.mark.parametrize("form", ["full", "thin"])
async def test_a_renamed_userid_keeps_its_local_member(world: World, form: str) -> None:
    org, pool, corp = world.hq.org, world.app[POOL], world.app[CORP_ROWS]["HQ"]
    old = sorted(org.members)[9]
    local_id = await pool.fetchval("SELECT id FROM members WHERE corp = $1 AND user_id = $2", corp, old)
    change = mutations.rename_member(org, old, "renamed.user")
    await world.push("HQ", change.wecom if form == "full" else change.wecom_thin)
    await world.drained()
    await world.assert_in_sync("HQ")
    rows = await pool.fetch("SELECT id, user_id FROM members WHERE corp = $1 AND id = $2", corp, local_id)
    assert [tuple(r) for r in rows] == [(local_id, "renamed.user")]
    assert await pool.fetchval("SELECT count(*) FROM members WHERE corp = $1 AND user_id = $2", corp, old) == 0
    assert await world.sync_request("HQ") is None


# -- a department moved under a new parent ---------------------------------------------------------


@pytest.mark.parametrize("corp", ["HQ", "Sales"])
async def test_a_department_moves_under_a_new_parent(world: World, corp: Corp) -> None:
    org = world.org(corp)
    parent = mutations.add_department(org, parent_id=org.root_id, name="新的上级")
    moved = max(
        (d for d in org.departments if org.children[d] and d != org.root_id), key=lambda d: len(org.children[d])
    )
    changes = [parent, mutations.move_department(org, moved, int(str(parent.subject)))]
    await world.push(corp, plaintexts(corp, changes))
    await world.drained()
    await world.assert_in_sync(corp)
    local = await world.local(corp)
    assert local.departments[str(moved)][0] == str(parent.subject)
    assert await world.sync_request(corp) is None


# -- dropped callbacks, caught by drift detection ----------------------------------------------------


async def test_dropped_dingtalk_callbacks_are_recovered_from_the_failed_list(world: World) -> None:
    org, app = world.sales.org, world.app
    dropped = plaintexts("Sales", some_changes(org, random.Random(3)))
    for plaintext in dropped:
        world.sim.drop(world.sales.app_key, plaintext)  # never delivered: DingTalk keeps it in the failed list
    # Entries hold ids only; two changes of one member in the same millisecond leave equal entries, stored once.
    distinct = {orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in world.sales.failed}

    async def drain_failed_list() -> bool:  # one drain at a time: retried should the start-up drain hold the lock
        await app[WORKER].duties.check_corps(failed_lists=True, counts=False)
        found: int = await app[POOL].fetchval("SELECT count(*) FROM inbox WHERE stream = 'Sales'")
        return found > 0

    await until(drain_failed_list, within=APPLY_WITHIN)
    await world.drained()
    routes = await app[POOL].fetch("SELECT route FROM inbox WHERE stream = 'Sales'")
    assert [r["route"] for r in routes] == ["dingtalk-failed"] * len(distinct)
    await world.assert_in_sync("Sales")  # the failed-list events alone repair it
    await app[WORKER].duties.check_corps(failed_lists=True, counts=False)  # its first call deletes the last batch
    assert world.sales.failed == []
    assert await app[POOL].fetchval("SELECT count(*) FROM inbox WHERE stream = 'Sales'") == len(distinct)
    assert await world.sync_request("Sales") == "failed_events"  # and the corp is marked as drifted
    assert (await world.full_syncs())["Sales"].trigger == "drift"
    await world.assert_in_sync("Sales")


async def test_a_wecom_change_without_callback_is_caught_by_the_member_count(world: World) -> None:
    worker = world.app[WORKER]
    await worker.duties.check_corps(failed_lists=False, counts=True)
    assert (await world.sync_request("HQ"), await world.sync_request("Sales")) == (None, None)  # no false alarm
    org = world.hq.org
    mutations.add_member(org, name="没有回调的新人", departments=[org.root_id])  # its callback is never pushed
    await worker.duties.check_corps(failed_lists=False, counts=True)
    assert await world.sync_request("HQ") == "member_count"
    assert await world.sync_request("Sales") is None
    assert (await world.full_syncs())["HQ"].trigger == "drift"
    await world.assert_in_sync("HQ")
    assert await world.sync_request("HQ") is None


# -- WeCom payloads applied in arrival order ---------------------------------------------------------
# WeCom events carry field values, applied as they arrive; delivery is unordered. A create arriving after an
# update of the same member or department reads it back (so it cannot undo the update); a delete of a member or
# department never known here asks for a full sync, which removes what its late create brings back. Two
# updates of one field delivered in reverse still leave the older value, silently, until the hourly
# member-count check or the scheduled full sync: fixing that needs per-entity event ordering (CreateTime has
# one-second resolution), which is beyond the handlers today.

STALE = "WeCom full-form payload applied out of order with no drift request (see the comment above)"


@pytest.mark.xfail(strict=True, reason=f"{STALE}: the older of two renames, arriving last, wins")
async def test_two_wecom_renames_of_a_member_delivered_in_reverse(world: World) -> None:
    org = world.hq.org
    user_id = sorted(org.members)[4]
    first = mutations.update_member(org, user_id, name="第一次改名")
    second = mutations.update_member(org, user_id, name="第二次改名")
    await world.push("HQ", second.wecom + first.wecom)
    await world.settle("HQ")


async def test_a_wecom_member_added_and_removed_with_callbacks_reversed(world: World) -> None:
    org = world.hq.org
    hire = mutations.add_member(org, name="来去匆匆", departments=[org.root_id])
    leave = mutations.remove_member(org, str(hire.subject))
    await world.push("HQ", leave.wecom + hire.wecom)
    await world.settle("HQ")


async def test_a_wecom_department_added_and_removed_with_callbacks_reversed(world: World) -> None:
    org = world.hq.org
    team = mutations.add_department(org, parent_id=org.root_id, name="临时项目组")
    removed = mutations.remove_department(org, int(str(team.subject)))
    await world.push("HQ", removed.wecom + team.wecom)
    await world.settle("HQ")
