"""Row-level directory writes of the event path."""

from __future__ import annotations

import asyncpg

from handlers.model import Member, Membership
from handlers.store.directory import Directory, Source


async def corp_row(pool: asyncpg.Pool) -> int:
    row: int = await pool.fetchval(
        "INSERT INTO corps (name, platform, type, corp_id) VALUES ('HQ', 'wecom', 'corps.QywxInnerType', 'ww1')"
        " RETURNING id"
    )
    return row


async def test_a_membership_only_change_moves_updated_at_and_is_logged(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        directory = Directory(conn, corp, Source("event"))
        await directory.upsert_member(Member("u1", "One", (Membership("1"),)))
        before = await conn.fetchval("SELECT updated_at FROM members WHERE user_id = 'u1'")
        change = await directory.upsert_member(Member("u1", departments=(Membership("2"),)))
        after = await conn.fetchval("SELECT updated_at FROM members WHERE user_id = 'u1'")
        depts = await conn.fetchval("SELECT array_agg(dept_id) FROM member_departments")
    assert change is not None and change.op == "update" and "departments" in change.fields
    assert depts == ["2"]
    assert after > before


async def test_an_unchanged_member_is_not_written(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        directory = Directory(conn, corp, Source("event"))
        await directory.upsert_member(Member("u1", "One", (Membership("1"),)))
        xmin = await conn.fetchval("SELECT xmin::text FROM members WHERE user_id = 'u1'")
        assert await directory.upsert_member(Member("u1", "One", (Membership("1"),))) is None
        assert await conn.fetchval("SELECT xmin::text FROM members WHERE user_id = 'u1'") == xmin
