"""Full-sync runs: the ``sync_runs`` record of each run, and the scheduler's view of every corp's runs.

The caller holds the corp's FULL_SYNC_LOCK (``handlers.store.locks``) while it writes a run.
"""

from __future__ import annotations

import asyncpg

from handlers.store.locks import FULL_SYNC_LOCK
from handlers.store.pool import Row
from handlers.store.queries import q


async def running_run(conn: asyncpg.Connection, corp_row: int) -> int | None:
    """The newest run of the corp still marked running."""
    run_id: int | None = await conn.fetchval(q("fs_running_run"), corp_row)
    return run_id


async def fail_interrupted_runs(conn: asyncpg.Connection, corp_row: int) -> None:
    """Mark runs left running by a process that died as failed."""
    await conn.execute(q("fs_fail_interrupted_runs"), corp_row)


async def start_run(conn: asyncpg.Connection, corp_row: int, trigger: str) -> int:
    run_id: int = await conn.fetchval(q("fs_start_run"), corp_row, trigger)
    return run_id


async def clear_sync_request(conn: asyncpg.Connection, corp_row: int) -> None:
    """Close the corp's open full-sync request: requests made from now on ask for another run."""
    await conn.execute(q("fs_clear_sync_request"), corp_row)


async def finish_run(
    conn: asyncpg.Connection,
    run_id: int | None,
    status: str,
    counts: str,
    api_calls: int,
    error: str | None,
    held: str | None,
) -> None:
    """Record how a run ended; ``counts`` and ``held`` are JSON text."""
    await conn.execute(q("fs_finish_run"), run_id, status, counts, api_calls, error, held)


async def confirm_quarantined(conn: asyncpg.Connection, corp_row: int, run_id: int) -> None:
    """Mark the quarantined runs before ``run_id`` confirmed: its removals superseded theirs."""
    await conn.execute(q("fs_confirm_quarantined"), corp_row, run_id)


async def sync_states(pool: asyncpg.Pool, corp_names: list[str]) -> list[Row]:
    """Per active corp among ``corp_names``, on the database clock: now, whether a run holds its lock, the
    newest run (last_started_at, last_status), the newest good one (last_good_at), failed runs since
    (failures), and the open request (sync_requested_at, sync_request_reason); with its id and name."""
    rows: list[Row] = await pool.fetch(q("fs_sync_state"), corp_names, FULL_SYNC_LOCK)
    return rows
