"""The local user pool: who a person is on each platform, and that a member keeps its person."""

from __future__ import annotations

import asyncpg

from handlers.model import Department, Member, Membership, Snapshot
from handlers.store import users
from handlers.store.directory import Directory, Source
from handlers.sync.reconcile import apply_snapshot


async def corp_row(pool: asyncpg.Pool, name: str, platform: str, kind: str, corp_id: str) -> int:
    row: int = await pool.fetchval(
        "INSERT INTO corps (name, platform, type, corp_id) VALUES ($1, $2, $3, $4) RETURNING id",
        name, platform, kind, corp_id,
    )  # fmt: skip
    return row


async def identities(pool: asyncpg.Pool, corp: int) -> dict[str, str]:
    rows = await users.of_corp(pool, corp)
    return {m: r["identity"] for r in rows for m in r["member_ids"]}


async def test_each_platform_names_a_person_its_own_way(pool: asyncpg.Pool) -> None:
    inner = await corp_row(pool, "HQ", "wecom", "corps.QywxInnerType", "ww1")
    proxy = await corp_row(pool, "T1", "wecom", "corps.QywxProxyType", "ww2")
    ding = await corp_row(pool, "Sales", "dingtalk", "corps.DDInnerType", "ding1")
    async with pool.acquire() as conn, conn.transaction():
        await Directory(conn, inner, Source("event")).upsert_member(Member("zhang", "Zhang", open_user_id="wo1"))
        await Directory(conn, proxy, Source("event")).upsert_member(Member("enc1", "Li", open_user_id="wo2"))
        await Directory(conn, proxy, Source("event")).upsert_member(Member("enc2", "Wang"))
        await Directory(conn, ding, Source("event")).upsert_member(Member("d1", "Zhao", union_id="U1"))
        await Directory(conn, ding, Source("event")).upsert_member(Member("d2", "Qian"))
    assert await identities(pool, inner) == {"zhang": "userId:ww1:zhang"}  # self-built: the userid
    assert await identities(pool, proxy) == {"enc1": "openUserId:ww2:wo2", "enc2": "userId:ww2:enc2"}
    assert await identities(pool, ding) == {"d1": "unionId:U1", "d2": "userId:ding1:d2"}  # unionid withheld


async def test_the_same_unionid_in_two_dingtalk_orgs_is_one_person(pool: asyncpg.Pool) -> None:
    """dingtalk.md §6: one developer account gives a person one unionid in every org."""
    first = await corp_row(pool, "A", "dingtalk", "corps.DDInnerType", "dingA")
    second = await corp_row(pool, "B", "dingtalk", "corps.DDInnerType", "dingB")
    async with pool.acquire() as conn, conn.transaction():
        await Directory(conn, first, Source("event")).upsert_member(Member("a1", "Sun", union_id="U9"))
        await Directory(conn, second, Source("event")).upsert_member(Member("b7", "Sun", union_id="U9"))
    people = await pool.fetch("SELECT DISTINCT local_user FROM members")
    assert len(people) == 1 and people[0]["local_user"] is not None


async def test_a_member_keeps_its_person_when_its_userid_changes(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool, "HQ", "wecom", "corps.QywxInnerType", "ww1")
    async with pool.acquire() as conn, conn.transaction():
        directory = Directory(conn, corp, Source("event"))
        await directory.upsert_member(Member("old.id", "Zhou"))
        person = await conn.fetchval("SELECT local_user FROM members")
        assert await directory.rename_member("old.id", "new.id")
        assert await users.register(conn, corp) == users.Registered(created=0, linked=0)
        await directory.upsert_member(Member("new.id", "Zhou Renamed"))
        await users.register(conn, corp)
        await directory.upsert_member(Member("old.id", "Someone Else"))  # the freed userid, given to a new hire
    rows = await users.of_corp(pool, corp)
    assert [(r["identity"], r["name"], r["member_ids"]) for r in rows] == [
        ("userId:ww1:new.id", "Zhou Renamed", ["new.id"]),  # the same person: name and userid identity follow
        ("userId:ww1:old.id", "Someone Else", ["old.id"]),
    ]
    assert rows[0]["id"] == person


async def test_adopting_by_unionid_takes_only_a_single_match(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool, "Sales", "dingtalk", "corps.DDInnerType", "ding1")
    async with pool.acquire() as conn, conn.transaction():
        directory = Directory(conn, corp, Source("event"))
        await conn.execute(
            "INSERT INTO members (corp, user_id, union_id) VALUES ($1, 'x1', 'DUP'), ($1, 'x2', 'DUP')", corp
        )
        assert await directory.adopt_union("x3", "DUP") is None  # two candidates: nobody is guessed
        await directory.upsert_member(Member("y1", union_id="ONE"))
        assert await directory.adopt_union("y1", "ONE") is None  # already stored under this userid
        assert await directory.adopt_union("y2", "ONE") == "y1"
        assert await conn.fetchval("SELECT user_id FROM members WHERE union_id = 'ONE'") == "y2"


async def test_full_sync_links_new_members_and_a_rename_moves_a_userid_identity(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool, "HQ", "wecom", "corps.QywxInnerType", "ww1")
    root = (Department("1", None, "HQ"),)

    async def sync(*members: Member) -> None:
        async with pool.acquire() as conn, conn.transaction():
            run = await conn.fetchval("INSERT INTO sync_runs (corp, trigger) VALUES ($1, 'manual') RETURNING id", corp)
            await apply_snapshot(conn, corp, run, Snapshot("1", root, members), threshold=1.0, allow_deletes=True)

    await sync(Member("old.id", "Wu", (Membership("1"),), open_user_id="wo1"))
    person = await pool.fetchval("SELECT local_user FROM members WHERE user_id = 'old.id'")
    assert person is not None  # linked as it was created
    await sync(Member("new.id", "Wu", (Membership("1"),), open_user_id="wo1"))  # the same open_userid: a rename
    await sync(
        Member("new.id", "Wu", (Membership("1"),), open_user_id="wo1"),
        Member("old.id", "Zheng", (Membership("1"),), open_user_id="wo9"),  # the freed userid, someone else now
    )
    rows = await pool.fetch("SELECT user_id, local_user FROM members ORDER BY id")
    assert [(r["user_id"], r["local_user"] == person) for r in rows] == [("new.id", True), ("old.id", False)]
    assert await identities(pool, corp) == {"new.id": "userId:ww1:new.id", "old.id": "userId:ww1:old.id"}
