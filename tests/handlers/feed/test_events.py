"""The event JSON of each kind of change, read back from change_log on real PostgreSQL."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from handlers.api.register import GivenSnapshot
from handlers.config import CallbackKeys, Secret, WecomInnerCorp
from handlers.feed.events import PERSONAL_FIELDS, personal_fields, type_pattern
from handlers.feed.pull import ChangeQuery, read_once
from handlers.model import Department, Member, Membership, Snapshot
from handlers.store.corps import ensure_corp
from handlers.store.directory import Directory, MemberWrite, Source
from handlers.sync.fullsync import run_full_sync
from tests.support.feed import corp_row

KEYS = ["id", "type", "corp", "objectId", "changes", "source", "at", "inboxId", "syncRunId"]


async def events(pool: asyncpg.Pool, **query: Any) -> list[dict[str, Any]]:
    return (await read_once(pool, ChangeQuery(limit=1000, **query))).items


async def test_a_member_created_updated_moved_and_offlined(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        directory = Directory(conn, corp, Source("event", inbox_id=7))
        await directory.upsert_member(Member("u1", "One", (Membership("1"),), mobile="13800000000"))
        await directory.upsert_member(Member("u1", "Uno"))
        await directory.upsert_member(Member("u1", departments=(Membership("2"), Membership("3"))))
        await directory.offline_member("u1", "platform")
    created, renamed, moved, offlined = await events(pool)
    assert list(created) == KEYS
    assert created["id"].isdigit() and int(created["id"]) < int(renamed["id"]) < int(moved["id"])
    assert (created["type"], created["corp"], created["objectId"]) == ("member.created", "HQ", "u1")
    assert (created["source"], created["inboxId"], created["syncRunId"]) == ("callback", "7", None)
    assert created["changes"]["name"] == {"before": None, "after": "One"}
    assert created["changes"]["deptIds"] == {"before": None, "after": ["1"]}
    assert "mobile" not in created["changes"]  # personal: only for consumers that ask
    assert renamed["type"] == "member.updated"
    assert renamed["changes"] == {"name": {"before": "One", "after": "Uno"}}
    assert moved["type"] == "member.moved"
    assert moved["changes"] == {"deptIds": {"before": ["1"], "after": ["2", "3"]}}
    assert offlined["type"] == "member.offlined"
    assert offlined["changes"]["status"] == {"before": "active", "after": "offline"}


async def test_personal_fields_show_only_when_asked_for(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        directory = Directory(conn, corp, Source("event"))
        await directory.upsert_member(Member("u1", "One", mobile="13800000000", email="one@example.com"))
        await directory.upsert_member(Member("u1", mobile="13900000000"))
    hidden = await events(pool)
    assert all("mobile" not in e["changes"] and "email" not in e["changes"] for e in hidden)
    assert hidden[1]["changes"] == {}  # the update still goes out: that something changed is not personal
    shown = await events(pool, personal_fields=frozenset({"mobile"}))
    assert shown[1]["changes"] == {"mobile": {"before": "13800000000", "after": "13900000000"}}
    assert "email" not in shown[0]["changes"]


async def test_a_department_created_moved_renamed_and_deleted(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        directory = Directory(conn, corp, Source("event"))
        await directory.upsert_department(Department("2", "1", "Two"))
        await directory.upsert_department(Department("2", "5"))
        await directory.upsert_department(Department("2", None, "Deux"))
        await directory.delete_department("2")
    created, moved, renamed, deleted = [e for e in await events(pool) if e["objectId"] == "2"]
    assert (created["type"], moved["type"], renamed["type"]) == ("department.created", "department.moved",
                                                                  "department.updated")  # fmt: skip
    assert moved["changes"] == {"parentId": {"before": "1", "after": "5"}}
    assert renamed["changes"] == {"name": {"before": "Two", "after": "Deux"}}
    assert deleted["type"] == "department.deleted"


async def test_operator_changes_say_operator(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        await Directory(conn, corp, Source("api")).log("admin", "u1", "create")
    (event,) = await events(pool)
    assert (event["type"], event["source"], event["changes"]) == ("admin.created", "operator", {})


async def test_filters_by_corp_and_type_pattern(pool: asyncpg.Pool) -> None:
    hq, other = await corp_row(pool), await corp_row(pool, "Other")
    for corp in (hq, other):
        async with pool.acquire() as conn:
            directory = Directory(conn, corp, Source("event"))
            await directory.upsert_department(Department("1", None, "Root"))
            await directory.upsert_member(Member("u1", "One"))
    assert [e["corp"] for e in await events(pool, corp="Other")] == ["Other", "Other"]
    assert {e["type"] for e in await events(pool, types=(type_pattern("member.*"),))} == {"member.created"}
    assert len(await events(pool, types=(type_pattern("*.created"),))) == 4


@pytest.mark.parametrize("bad", ["member", "member.", "Member.*", "member.created.x", "member_x.*", "%", ""])
def test_a_type_pattern_is_letters_and_stars(bad: str) -> None:
    if bad == "member":  # a bare entity is a valid pattern of exactly that type name
        assert type_pattern(bad) == "member"
        return
    with pytest.raises(ValueError, match="pattern"):
        type_pattern(bad)


def test_personal_fields_are_all_or_named() -> None:
    assert personal_fields(True) == PERSONAL_FIELDS
    assert personal_fields(["*"]) == PERSONAL_FIELDS
    assert personal_fields(["mobile"]) == {"mobile"}
    assert personal_fields(False) == frozenset()
    with pytest.raises(ValueError, match="not a personal field: name"):
        personal_fields(["name"])


async def test_a_run_of_members_in_one_statement_logs_their_values(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        directory = Directory(conn, corp, Source("event"))
        await directory.upsert_member(Member("u1", "One", (Membership("1"),)))
        await directory.upsert_members_checked([
            MemberWrite(Member("u1", "Uno", (Membership("2"),)), inbox_id=5),
            MemberWrite(Member("u2", "Two", (Membership("1"),)), inbox_id=6),
        ])  # fmt: skip
    _, moved, created = await events(pool)
    assert (moved["type"], moved["inboxId"]) == ("member.moved", "5")
    assert moved["changes"] == {
        "name": {"before": "One", "after": "Uno"},
        "deptIds": {"before": ["1"], "after": ["2"]},
    }
    assert (created["type"], created["changes"]["name"]) == ("member.created", {"before": None, "after": "Two"})


async def test_a_full_sync_logs_the_values_it_changed(pool: asyncpg.Pool) -> None:
    corp = WecomInnerCorp("HQ", "HQ", "ww1", "1", Secret("s"), None,
                          CallbackKeys(Secret("t"), Secret("a" * 43), frozenset({"ww1"})))  # fmt: skip
    async with pool.acquire() as conn:
        row = await ensure_corp(conn, corp)
    depts = (Department("1", "0", "Root"), Department("2", "1", "Two"), Department("3", "1", "Three"))
    first = Snapshot("1", depts, (Member("u1", "One", (Membership("2"),), mobile="138"),))
    second = Snapshot(
        "1",
        (*depts[:2], Department("3", "2", "Three")),
        (Member("u1", "Uno", (Membership("3"),), mobile="139"),),
    )
    for snapshot in (first, second):
        await run_full_sync(pool, row, corp, GivenSnapshot(snapshot), trigger="test")
    found = await events(pool, personal_fields=frozenset({"mobile"}))
    created = next(e for e in found if e["objectId"] == "u1")
    assert (created["type"], created["source"]) == ("member.created", "full_sync")
    assert created["changes"]["name"] == {"before": None, "after": "One"} and created["syncRunId"] is not None
    moved_member = next(e for e in found[::-1] if e["objectId"] == "u1")
    moved_dept = next(e for e in found[::-1] if e["objectId"] == "3")
    assert moved_member["type"] == "member.moved"
    assert moved_member["changes"] == {
        "name": {"before": "One", "after": "Uno"},
        "mobile": {"before": "138", "after": "139"},
        "deptIds": {"before": ["2"], "after": ["3"]},
    }
    assert (moved_dept["type"], moved_dept["changes"]) == (
        "department.moved",
        {"parentId": {"before": "1", "after": "2"}},
    )
