"""DingTalk Stream connections: when each process's connection of a corp was last known live (``stream.sql``)."""

from __future__ import annotations

import asyncpg

from handlers.store.queries import q


async def link_connected(conn: asyncpg.Connection, corp: int, process: str, now: float) -> float | None:
    """Mark ``process`` connected at ``now`` (epoch seconds); seconds since any connection of ``corp`` was last
    live before this one, None when there never was one."""
    blind: float | None = await conn.fetchval(q("stream_link_connected"), corp, process, now)
    return blind


async def link_live(conn: asyncpg.Connection, corp: int, process: str, now: float) -> None:
    """``process``'s connection of ``corp`` was live at ``now`` (epoch seconds)."""
    await conn.execute(q("stream_link_live"), corp, process, now)
