"""The directory tables a full sync writes, and a fingerprint of their rows that any write changes."""

from __future__ import annotations

import asyncpg

TABLES = (
    "departments",
    "members",
    "member_departments",
    "tags",
    "tag_members",
    "tag_departments",
    "roles",
    "role_members",
    "admins",
    "change_log",
)


async def fingerprint(pool: asyncpg.Pool) -> dict[str, tuple[int, str]]:
    """Row count and (xmin, ctid) of every row per directory table: any write changes it."""
    found = {}
    for table in TABLES:
        sql = f"SELECT count(*), coalesce(string_agg(xmin::text || ctid::text, ',' ORDER BY ctid), '') FROM {table}"  # noqa: S608 - fixed names
        found[table] = tuple(await pool.fetchrow(sql))
    return found
