"""The local user pool: one person per platform identity (DingTalk unionid; WeCom userid, or open_userid for a
代开发 / suite tenant), and the link of each member to its person (``users.sql``).

The caller owns the transaction. A member keeps its person once linked: a userid change or a return under a new
userid (DingTalk: same unionid) keeps ``members.id`` and so the link, and every rename calls ``follow_rename`` (full
sync's set-based rename does the same in ``fs_rename_members``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from handlers.store.pool import Db, Row
from handlers.store.queries import q


@dataclass(frozen=True, slots=True)
class Registered:
    created: int  # people new to the pool
    linked: int  # members linked to their person now


async def register(conn: asyncpg.Connection, corp: int, user_ids: Sequence[str] | None = None) -> Registered:
    """Register the corp's members (``user_ids``, or all of them) into the pool: each one not linked yet is linked
    to the person of its identity, made when there is none. Linked members are not read."""
    ids = None if user_ids is None else list(user_ids)
    created: int = await conn.fetchval(q("users_register"), corp, ids)
    linked: int = await conn.fetchval(q("users_link"), corp, ids)
    return Registered(created, linked)


async def follow_rename(conn: asyncpg.Connection, corp: int, old_user_id: str, new_user_id: str) -> None:
    """The member now called ``new_user_id``: its person's identity, when made of the old userid, takes the new one
    (the old userid may later be given to someone else)."""
    await conn.execute(q("users_follow_rename"), corp, old_user_id, new_user_id)


async def of_corp(db: Db, corp: int) -> list[Row]:
    """The people the corp's members are linked to: id, platform, identity, created_at, name (of the newest of its
    members), member_ids."""
    rows: list[Row] = await db.fetch(q("users_of_corp"), corp)
    return rows
