"""Every changed field of every event carries its values: what a full sync, the directory writes the callbacks use,
and the operator's writes produce (the captured callbacks are walked in tests/e2e/test_captured_events.py).

Membership lists (a tag's ``members`` and ``deptIds``, a role's ``members``) list only the ids that changed:
``before`` the ids that left, ``after`` the ids that joined."""

from __future__ import annotations

from typing import Any

import asyncpg

from handlers.api import writes
from handlers.api.register import GivenSnapshot
from handlers.config import CallbackKeys, Secret, WecomInnerCorp
from handlers.model import Admin, Department, Member, Membership, Role, Snapshot, Tag
from handlers.store.corps import ensure_corp
from handlers.store.directory import Directory, Source
from handlers.sync.fullsync import run_full_sync
from tests.support.feed import all_events, corp_row, unchanged_fields

DEPTS = (Department("1", "0", "Root"), Department("2", "1", "Two"), Department("3", "1", "Three"))


def change(found: list[dict[str, Any]], kind: str, object_id: str) -> dict[str, Any]:
    """The changes of the last event of that type and object."""
    changes: dict[str, Any] = next(e for e in reversed(found) if e["type"] == kind and e["objectId"] == object_id)[
        "changes"
    ]
    return changes


def member(user_id: str, *depts: str, **values: Any) -> Member:
    return Member(user_id, values.pop("name", user_id), tuple(Membership(d) for d in depts), **values)


async def test_a_full_sync_gives_every_changed_field_its_values(pool: asyncpg.Pool) -> None:
    corp = WecomInnerCorp("HQ", "HQ", "ww1", "1", Secret("s"), None,
                          CallbackKeys(Secret("t"), Secret("a" * 43), frozenset({"ww1"})))  # fmt: skip
    async with pool.acquire() as conn:
        row = await ensure_corp(conn, corp)
    first = Snapshot(
        "1", DEPTS, (member("u1", "2", mobile="138"), member("u2", "2"), member("u3", "3")),
        tags=(Tag("t1", "Tag", ("u1", "u2"), ("2",)),),
        roles=(Role("r1", "Role", "G"),), role_members=(("r1", "u1"),),
        admins=(Admin("u1", 1), Admin("u2", 2)),
    )  # fmt: skip
    second = Snapshot(
        "1", DEPTS[:2], (member("u1", "2", mobile="139"), member("u2", "2")),  # u3 left, department 3 gone
        tags=(Tag("t1", "Tags", ("u2",), ("1",)),),
        roles=(Role("r1", "Role", "G"),), role_members=(("r1", "u2"),),
        admins=(Admin("u1", 2),),
    )  # fmt: skip
    third = Snapshot("1", DEPTS[:2], (member("u1", "2", mobile="139"), member("u2", "2"), member("u3", "2")))
    for snapshot in (first, second, third):
        await run_full_sync(pool, row, corp, GivenSnapshot(snapshot), trigger="test", allow_deletes=True)
    assert await unchanged_fields(pool) == []
    found = await all_events(pool)
    assert [e["changes"] for e in found if e["type"] == "tag.updated" and e["objectId"] == "t1"][-3:] == [
        {"name": {"before": "Tag", "after": "Tags"}},
        {"members": {"before": ["u1"], "after": []}},
        {"deptIds": {"before": ["2"], "after": ["1"]}},
    ]
    assert change(found, "role.updated", "r1") == {"members": {"before": ["u1"], "after": ["u2"]}}
    assert change(found, "admin.updated", "u1") == {"level": {"before": 1, "after": 2}}
    assert change(found, "admin.deleted", "u2") == {"level": {"before": 2, "after": None}}
    assert change(found, "admin.created", "u2") == {"level": {"before": None, "after": 2}}
    offlined = change(found, "member.offlined", "u3")
    assert offlined["status"] == {"before": "active", "after": "offline"}
    assert offlined["offlineReason"] == {"before": None, "after": "platform"}
    assert offlined["offlineAt"]["before"] is None and offlined["offlineAt"]["after"] is not None
    back = change(found, "member.reactivated", "u3")
    assert back["status"] == {"before": "offline", "after": "active"}


async def test_incremental_writes_give_every_changed_field_its_values(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        directory = Directory(conn, corp, Source("event", inbox_id=1))
        for dept in DEPTS:
            await directory.upsert_department(dept)
        for user_id in ("u1", "u2", "u3"):
            await directory.upsert_member(member(user_id, "3"))
        await directory.upsert_tag("t1", "Tag")
        await directory.change_tag_links("t1", add_users=["u1", "u2"], add_depts=["2", "3"])
        await directory.change_tag_links("t1", remove_users=["u1", "nobody"])
        await directory.upsert_role("r1", "Role")
        await directory.change_role_members("r1", add=["u1", "u2"])
        await directory.change_role_members("r1", remove=["u2"])
        await directory.add_admin("u1", 1)
        await directory.remove_admin("u1")
        await directory.delete_department("3")  # u1..u3 lose it, so does tag t1
        await directory.offline_member("u3", "platform")
        await directory.upsert_member(Member("u4", "Four", union_id="x"))
        await directory.offline_member("u4", "platform")
        await directory.upsert_member(Member("u5", "Five", union_id="x"))  # u4 back under a new userid
    assert await unchanged_fields(pool) == []
    found = await all_events(pool)
    events = [e for e in found if e["objectId"] == "t1" and e["type"] == "tag.updated"]
    assert [e["changes"] for e in events] == [
        {"members": {"before": [], "after": ["u1", "u2"]}, "deptIds": {"before": [], "after": ["2", "3"]}},
        {"members": {"before": ["u1"], "after": []}},
        {"deptIds": {"before": ["3"], "after": []}},
    ]
    assert [e["changes"] for e in found if e["objectId"] == "r1"][1:] == [
        {"members": {"before": [], "after": ["u1", "u2"]}},
        {"members": {"before": ["u2"], "after": []}},
    ]
    assert change(found, "admin.created", "u1") == {"level": {"before": None, "after": 1}}
    assert change(found, "admin.deleted", "u1") == {"level": {"before": 1, "after": None}}
    assert change(found, "member.moved", "u2") == {"deptIds": {"before": ["3"], "after": []}}
    assert change(found, "member.offlined", "u3")["offlineAt"]["after"] is not None
    renamed = next(e for e in found if e["objectId"] == "u5")
    assert renamed["changes"] == {"memberId": {"before": "u4", "after": "u5"}}


async def test_the_operator_s_writes_give_every_changed_field_its_values(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        directory = Directory(conn, corp, Source("event"))
        for user_id in ("u1", "u2", "u3"):
            await directory.upsert_member(member(user_id, "1"))
        await directory.add_admin("u3", 1)  # a platform admin: the operator's setAdmin leaves it alone
        await directory.offline_member("u2", "platform")
        async with conn.transaction():
            await writes.offline_members(conn, corp, ["u1", "u2"])
            await writes.set_member_roles(conn, corp, "u1", ["local1", "local2"])
            await writes.set_member_roles(conn, corp, "u1", ["local2"])
            await writes.set_local_admins(conn, corp, ["u1"])
            await writes.set_local_admins(conn, corp, [])
            await writes.save_signature(conn, corp, "u1", "https://example.com/a.png")
            await writes.save_signature(conn, corp, "u1", "https://example.com/b.png")
    assert await unchanged_fields(pool) == []
    found = [e for e in await all_events(pool) if e["source"] == "operator"]
    active = change(found, "member.offlined", "u1")
    assert active["status"] == {"before": "active", "after": "offline"}
    assert active["offlineReason"] == {"before": None, "after": "operator"}
    assert active["offlineAt"]["before"] is None and active["offlineAt"]["after"] is not None
    assert change(found, "member.offlined", "u2") == {"offlineReason": {"before": "platform", "after": "operator"}}
    roles = [(e["type"], e["objectId"], e["changes"]) for e in found if e["type"].startswith("role.")]
    assert roles == [
        ("role.created", "local1", {}),
        ("role.created", "local2", {}),
        ("role.updated", "local1", {"members": {"before": [], "after": ["u1"]}}),
        ("role.updated", "local2", {"members": {"before": [], "after": ["u1"]}}),
        ("role.updated", "local1", {"members": {"before": ["u1"], "after": []}}),
    ]
    signatures = [e["changes"] for e in found if "signature" in e["changes"]]
    assert signatures == [
        {"signature": {"before": None, "after": "https://example.com/a.png"}},
        {"signature": {"before": "https://example.com/a.png", "after": "https://example.com/b.png"}},
    ]
