"""A member's memberships in its events: ``deptIds`` (and ``member.moved``) only when the set of department ids
changed; ``leaderDeptIds`` when the departments it leads changed; ``deptOrders`` when its order in a department
changed. The callback path's single and batched upserts and the full sync say the same."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from handlers.api.register import GivenSnapshot
from handlers.config import CallbackKeys, Secret, WecomInnerCorp
from handlers.model import Department, Member, Membership, Snapshot
from handlers.store.corps import ensure_corp
from handlers.store.directory import Directory, MemberWrite, Source
from handlers.sync.fullsync import run_full_sync
from tests.support.feed import all_events, unchanged_fields

DEPTS = (Department("1", "0", "Root"), Department("2", "1", "Two"), Department("3", "1", "Three"))
CORP = WecomInnerCorp("HQ", "HQ", "ww1", "1", Secret("s"), None,
                      CallbackKeys(Secret("t"), Secret("a" * 43), frozenset({"ww1"})))  # fmt: skip

Write = Callable[[Member], Awaitable[None]]


def u1(*memberships: tuple[str, bool | None, int | None]) -> Member:
    return Member("u1", "One", tuple(Membership(d, leader, order) for d, leader, order in memberships))


# Each step: the memberships written, then the event it must make (None: no event at all).
STEPS: list[tuple[Member, tuple[str, dict[str, Any]] | None]] = [
    (u1(("2", False, 10), ("3", False, 20)), None),  # the member as created (checked on its own below)
    (u1(("2", False, 10), ("3", False, 20)), None),  # the same again: nothing changed
    (u1(("3", False, 20), ("2", True, 10)), ("member.updated", {"leaderDeptIds": {"before": [], "after": ["2"]}})),
    (
        u1(("2", True, 10), ("3", False, 30)),
        ("member.updated", {"deptOrders": {"before": {"2": 10, "3": 20}, "after": {"2": 10, "3": 30}}}),
    ),
    (
        u1(("2", False, 5), ("3", True, 30)),
        (
            "member.updated",
            {
                "leaderDeptIds": {"before": ["2"], "after": ["3"]},
                "deptOrders": {"before": {"2": 10, "3": 30}, "after": {"2": 5, "3": 30}},
            },
        ),
    ),
    (
        u1(("2", False, 5)),
        (
            "member.moved",
            {
                "deptIds": {"before": ["2", "3"], "after": ["2"]},
                "leaderDeptIds": {"before": ["3"], "after": []},
                "deptOrders": {"before": {"2": 5, "3": 30}, "after": {"2": 5}},
            },
        ),
    ),
    (
        u1(("2", True, 5), ("3", False, 1)),  # a move that also makes it a leader
        (
            "member.moved",
            {
                "deptIds": {"before": ["2"], "after": ["2", "3"]},
                "leaderDeptIds": {"before": [], "after": ["2"]},
                "deptOrders": {"before": {"2": 5}, "after": {"2": 5, "3": 1}},
            },
        ),
    ),
]


async def check_steps(pool: asyncpg.Pool, write: Write) -> None:
    seen = 0
    for k, (written, expected) in enumerate(STEPS):
        await write(written)
        found = [e for e in await all_events(pool) if e["objectId"] == "u1"]
        new, seen = found[seen:], len(found)
        if k == 0:
            assert [e["type"] for e in new] == ["member.created"]
            continue
        assert [(e["type"], e["changes"]) for e in new] == ([] if expected is None else [expected]), f"step {k}"
    assert await unchanged_fields(pool) == []


async def callback_writes(pool: asyncpg.Pool, batched: bool) -> Write:
    async with pool.acquire() as conn:
        corp = await ensure_corp(conn, CORP)
        for dept in DEPTS:
            await Directory(conn, corp, Source("event", inbox_id=1)).upsert_department(dept)

    async def write(member: Member) -> None:
        async with pool.acquire() as conn, conn.transaction():
            directory = Directory(conn, corp, Source("event", inbox_id=1))
            if batched:
                await directory.upsert_members_checked([MemberWrite(member), MemberWrite(Member("other", "Other"))])
            else:
                await directory.upsert_member(member)

    return write


@pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
async def test_a_callback_lists_only_the_membership_fields_that_changed(pool: asyncpg.Pool, batched: bool) -> None:
    await check_steps(pool, await callback_writes(pool, batched))


@pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
async def test_a_thin_member_keeps_its_leader_flags_and_orders_and_logs_nothing(
    pool: asyncpg.Pool, batched: bool
) -> None:
    write = await callback_writes(pool, batched)
    await write(u1(("2", True, 10)))
    before = len(await all_events(pool))
    await write(u1(("2", None, None)))  # a callback that names the department only
    await write(Member("u1", "One"))  # nor any department
    assert len(await all_events(pool)) == before
    assert await pool.fetchrow("SELECT is_leader, \"order\" FROM member_departments WHERE dept_id = '2'") == (True, 10)


async def test_a_full_sync_lists_only_the_membership_fields_that_changed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp = await ensure_corp(conn, CORP)

    async def write(member: Member) -> None:
        snapshot = Snapshot("1", DEPTS, (member,))
        await run_full_sync(pool, corp, CORP, GivenSnapshot(snapshot), trigger="test", allow_deletes=True)
        rows = await pool.fetch(
            'SELECT dept_id, is_leader, "order" FROM member_departments md JOIN members m ON m.id = md.member'
            " WHERE m.user_id = 'u1' ORDER BY dept_id"
        )
        assert [tuple(r) for r in rows] == sorted((d.dept_id, d.is_leader, d.order) for d in member.departments or ())

    await check_steps(pool, write)


@pytest.mark.parametrize("how", ["single", "batched", "full_sync"])
async def test_a_created_member_lists_the_departments_it_leads(pool: asyncpg.Pool, how: str) -> None:
    leader = Member("u1", "One", (Membership("3", False, 2), Membership("2", True, 1)))
    plain = Member("u2", "Two", (Membership("2", False, 1),))
    async with pool.acquire() as conn:
        corp = await ensure_corp(conn, CORP)
        directory = Directory(conn, corp, Source("event", inbox_id=1))
        if how == "full_sync":
            snapshot = GivenSnapshot(Snapshot("1", DEPTS, (leader, plain)))
            await run_full_sync(pool, corp, CORP, snapshot, trigger="test", allow_deletes=True)
        else:
            for dept in DEPTS:
                await directory.upsert_department(dept)
            if how == "batched":
                await directory.upsert_members_checked([MemberWrite(leader), MemberWrite(plain)])
            else:
                await directory.upsert_member(leader)
                await directory.upsert_member(plain)
    created = {e["objectId"]: e["changes"] for e in await all_events(pool) if e["type"] == "member.created"}
    assert created["u1"]["deptIds"] == {"before": None, "after": ["2", "3"]}
    assert created["u1"]["leaderDeptIds"] == {"before": None, "after": ["2"]}
    assert "leaderDeptIds" not in created["u2"]
    assert "deptOrders" not in created["u1"]
