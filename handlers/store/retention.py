"""Bounded data: the purge passes over inbox, change_log and sync_runs, ``forget``'s erasure, and the table sizes
/metrics reports (``sql/retention.sql``).

Each pass function runs one small batch in its own short transaction and says whether more is due now; the
caller (``handlers.worker.purge``) loops, pausing between batches. The inbox passes walk in id order from a mark
saved in ``purge_marks``, so a pass never rereads what earlier passes settled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from handlers.store.pool import Row
from handlers.store.queries import q

STRIP_MARK = "inbox_strip"
DELETE_MARK = "inbox_delete"
# A pending inbox row younger than this holds the inbox passes' marks until it settles (else the mark would pass it
# and it would keep its payload, and its row, forever); an older one is stuck, and the purge goes past it.
PENDING_HOLD_SECONDS = 86400.0


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch of a pass: rows purged, rows looked at, and whether more may be due now."""

    purged: int
    seen: int
    more: bool


async def mark(conn: asyncpg.Connection, name: str) -> int:
    """The last inbox id pass ``name`` settled (0: none yet)."""
    last: int | None = await conn.fetchval(q("retention_mark"), name)
    return last or 0


async def _inbox_pass(conn: asyncpg.Connection, query: str, name: str, cutoff: datetime, size: int) -> Batch:
    async with conn.transaction():
        start = await mark(conn, name)
        row = await conn.fetchrow(q(query), start, cutoff, size, PENDING_HOLD_SECONDS)
        assert row is not None  # an aggregate query always answers one row
        if row["mark"] > start:
            await conn.execute(q("retention_set_mark"), name, row["mark"])
    return Batch(row["purged"], row["seen"], more=row["seen"] == size and not row["reached_cutoff"])


async def strip_inbox_payloads(conn: asyncpg.Connection, cutoff: datetime, size: int) -> Batch:
    """Drop body and plaintext of the next applied inbox rows received before ``cutoff``."""
    return await _inbox_pass(conn, "retention_strip_inbox", STRIP_MARK, cutoff, size)


async def delete_inbox_rows(conn: asyncpg.Connection, cutoff: datetime, size: int) -> Batch:
    """Delete the next settled inbox rows received before ``cutoff``."""
    return await _inbox_pass(conn, "retention_delete_inbox", DELETE_MARK, cutoff, size)


async def _plain_pass(conn: asyncpg.Connection, query: str, cutoff: datetime, size: int) -> Batch:
    row = await conn.fetchrow(q(query), cutoff, size)
    assert row is not None
    return Batch(row["purged"], row["seen"], more=row["purged"] > 0 and row["seen"] == size)


async def delete_change_log(conn: asyncpg.Connection, cutoff: datetime, size: int) -> Batch:
    """Delete the oldest change_log rows (by id) written before ``cutoff``."""
    return await _plain_pass(conn, "retention_delete_change_log", cutoff, size)


async def delete_sync_runs(conn: asyncpg.Connection, cutoff: datetime, size: int) -> Batch:
    """Delete finished sync runs older than ``cutoff``, keeping each corp's newest and newest good run."""
    return await _plain_pass(conn, "retention_delete_sync_runs", cutoff, size)


async def count_inbox_payloads(conn: asyncpg.Connection, cutoff: datetime) -> int:
    count: int = await conn.fetchval(q("retention_count_inbox_payloads"), await mark(conn, STRIP_MARK), cutoff)
    return count


async def count_inbox_rows(conn: asyncpg.Connection, cutoff: datetime) -> int:
    count: int = await conn.fetchval(q("retention_count_inbox_rows"), await mark(conn, DELETE_MARK), cutoff)
    return count


async def count_change_log(conn: asyncpg.Connection, cutoff: datetime) -> int:
    count: int = await conn.fetchval(q("retention_count_change_log"), cutoff)
    return count


async def count_sync_runs(conn: asyncpg.Connection, cutoff: datetime) -> int:
    count: int = await conn.fetchval(q("retention_count_sync_runs"), cutoff)
    return count


async def table_stats(conn: asyncpg.Connection) -> list[Row]:
    """name, bytes (None for inbox_payload), oldest_age (seconds; None: empty or not tracked)."""
    rows: list[Row] = await conn.fetch(q("retention_table_stats"))
    return rows


def member_pattern(user_id: str) -> str:
    """A PostgreSQL regular expression that finds ``user_id`` as a whole value in XML or JSON text: not as part
    of a longer id. Every character but a letter or digit is escaped (in PostgreSQL's syntax, a backslash before
    one of those is always that character)."""
    escaped = "".join(c if c.isalnum() else "\\" + c for c in user_id)
    return f"(^|[^A-Za-z0-9_.@-]){escaped}($|[^A-Za-z0-9_.@-])"


async def forget_member(conn: asyncpg.Connection, corp_row: int, user_id: str) -> str | None:
    """Erase an offline member's personal fields and signature, in the caller's transaction.

    Returns the member's status (``offline``: erased; ``active``: left as it is), None for an unknown member.
    """
    row = await conn.fetchrow(q("forget_member"), corp_row, user_id)
    return None if row is None else str(row["status"])


async def forget_events(
    conn: asyncpg.Connection, corp_row: int, user_id: str, after: int, size: int
) -> tuple[int, int]:
    """Erase the payloads of the corp's settled inbox rows past id ``after`` (one batch) whose message names the
    member. Returns (the last id looked at, 0 when none was left; rows erased)."""
    row = await conn.fetchrow(q("forget_events"), corp_row, after, user_id, member_pattern(user_id), size)
    assert row is not None
    return (row["mark"] or 0), row["erased"]


async def pending_events_naming(conn: asyncpg.Connection, corp_row: int, user_id: str) -> int:
    """Pending inbox rows of the corp whose message names the member (forget leaves them for the worker)."""
    count: int = await conn.fetchval(q("forget_pending_events"), corp_row, user_id, member_pattern(user_id))
    return count


async def database_clock(conn: asyncpg.Connection) -> datetime:
    now: datetime = await conn.fetchval(q("retention_clock"))
    return now
