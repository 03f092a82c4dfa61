"""What /readyz and /metrics read: each active corp's full syncs and each inbox stream's pending rows, and the
full sync runs of every corp."""

from __future__ import annotations

import asyncpg

from handlers.store.pool import Row
from handlers.store.queries import q


async def stream_states(conn: asyncpg.Connection) -> list[Row]:
    """One row per active corp and per stream of no active corp with pending rows (``is_corp`` says which):
    name, last_sync_status, last_sync_age, good_sync_age, pending, oldest_pending_age (ages in seconds)."""
    rows: list[Row] = await conn.fetch(q("health_streams"))
    return rows


async def sync_run_counts(conn: asyncpg.Connection, bounds: list[float]) -> list[Row]:
    """Every finished full sync in the database (any process's), per corp name, status and duration bucket (the
    number of ``bounds`` below its duration): name, status, bucket, runs, seconds (their summed durations)."""
    rows: list[Row] = await conn.fetch(q("health_sync_runs"), bounds)
    return rows
