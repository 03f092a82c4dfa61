"""The local user pool: one person per platform identity (DingTalk unionid; WeCom userid, or open_userid for a
代开发 / suite tenant), and the link of each member to its person (``users.sql``).

The caller owns the transaction. A member keeps its person once linked: a userid change or a return under a new
userid (DingTalk: same unionid) keeps ``members.id`` and so the link.
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
    """Register the corp's members (``user_ids``, or all of them) into the pool: unlinked members are linked to
    the person of their identity, made when there is none."""
    ids = None if user_ids is None else list(user_ids)
    row = await conn.fetchrow(q("users_register"), corp, ids)
    linked = await conn.fetch(q("users_link"), corp, ids)
    return Registered(int(row["created"]), len(linked))


async def of_corp(db: Db, corp: int) -> list[Row]:
    """The people the corp's members are linked to: id, platform, identity, name, created_at, updated_at,
    member_ids."""
    rows: list[Row] = await db.fetch(q("users_of_corp"), corp)
    return rows
