"""What drift detection keeps and reads: the receivers' heartbeats, and the local side of the member-count check."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from handlers.store.queries import q


async def since_last_beat(conn: asyncpg.Connection) -> timedelta | None:
    """How long ago any process last beat, on the database clock; None when none ever did."""
    since: timedelta | None = await conn.fetchval(q("heartbeat_since_last"))
    return since


async def record_beat(conn: asyncpg.Connection, process: str) -> None:
    await conn.execute(q("heartbeat_beat"), process)


async def forget_beats(conn: asyncpg.Connection, process: str) -> None:
    """Remove the process's heartbeat, and every heartbeat older than a week."""
    await conn.execute(q("heartbeat_forget"), process)


async def active_and_pending(conn: asyncpg.Connection, corp: int, stream: str) -> tuple[int, bool]:
    """The corp's active member count, and whether inbox rows of the corp are still pending."""
    row = await conn.fetchrow(q("drift_count_check"), corp, stream)
    return int(row["active"]), bool(row["pending"])
