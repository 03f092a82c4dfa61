"""The operator's writes through the directory API: offline members, local roles, local admins, signatures.

The caller owns the transaction and writes the change_log rows (``Directory.log``, source 'api').
"""

from __future__ import annotations

import asyncpg

from handlers.store.pool import Row
from handlers.store.queries import q


async def lock_member(conn: asyncpg.Connection, corp: int, user_id: str) -> int | None:
    """The member's local id, its row locked until the transaction ends; None for an unknown user id."""
    local_id: int | None = await conn.fetchval(q("api_lock_member"), corp, user_id)
    return local_id


async def offline_members(conn: asyncpg.Connection, corp: int, user_ids: list[str]) -> list[Row]:
    """Take members offline by the operator; of each one changed: user_id, was (the status before), fields (the
    columns changed) and changes (their values, JSON text)."""
    rows: list[Row] = await conn.fetch(q("api_offline_members"), corp, user_ids)
    return rows


async def platform_roles_among(conn: asyncpg.Connection, corp: int, role_ids: list[str]) -> list[str]:
    """The platform roles (which follow the platform) among ``role_ids``."""
    return [r["role_id"] for r in await conn.fetch(q("api_platform_roles_among"), corp, role_ids)]


async def create_local_roles(conn: asyncpg.Connection, corp: int, role_ids: list[str]) -> list[str]:
    """Create the unknown roles among ``role_ids`` as local roles; the ones created."""
    return [r["role_id"] for r in await conn.fetch(q("api_create_local_roles"), corp, role_ids)]


async def set_member_local_roles(
    conn: asyncpg.Connection, corp: int, local_id: int, role_ids: list[str]
) -> list[tuple[str, bool]]:
    """Make the member's local roles exactly ``role_ids``; (role id, whether the member joined it) of each role whose
    member list changed: those it joined first."""
    rows = await conn.fetch(q("api_set_member_local_roles"), corp, local_id, role_ids)
    return [(r["role_id"], r["joined"]) for r in rows]


async def set_local_admins(conn: asyncpg.Connection, corp: int, local_ids: list[int]) -> list[tuple[str, str]]:
    """Make the local admins exactly the members ``local_ids``; (user_id, 'create' | 'delete') of each change."""
    return [(r["user_id"], r["op"]) for r in await conn.fetch(q("api_set_local_admins"), corp, local_ids)]


async def save_signature(conn: asyncpg.Connection, corp: int, local_id: int, signature: str) -> Row | None:
    """Store the member's signature: None when unchanged, else a row saying whether it is ``created`` and the
    signature ``before``."""
    row: Row | None = await conn.fetchrow(q("api_save_signature"), corp, local_id, signature)
    return row
