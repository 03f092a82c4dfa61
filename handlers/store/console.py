"""The web console's reads and operator actions: corps overview, department tree, member search and history,
sync runs with the removals they held, dead letters, recent callbacks (metadata only).

Every list is bounded: a keyset page of at most ``limit`` rows (callers ask one more to learn whether there is
more). Reads need no transaction: ``db`` is a pool or a connection.
"""

from __future__ import annotations

from handlers.store.pool import Db, Row
from handlers.store.queries import q


def like_pattern(text: str) -> str:
    """An ILIKE pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def corps(db: Db, names: list[str], auths: list[str], after: str | None, limit: int) -> list[Row]:
    rows: list[Row] = await db.fetch(q("console_corps"), names, auths, after, limit)
    return rows


async def dept_children(db: Db, corp: int, parent: str, limit: int, skip: int = 0) -> list[Row]:
    rows: list[Row] = await db.fetch(q("console_dept_children"), corp, parent, limit, skip)
    return rows


async def dept_path(db: Db, corp: int, dept_id: str) -> list[Row]:
    """The department and its ancestors, root first; empty for an unknown department."""
    rows: list[Row] = await db.fetch(q("console_dept_path"), corp, dept_id)
    return rows


async def search_members(db: Db, corp: int, text: str, after: str | None, limit: int) -> list[Row]:
    rows: list[Row] = await db.fetch(q("console_member_search"), corp, like_pattern(text), after, limit)
    return rows


async def member_history(db: Db, corp: int, user_id: str, before: int | None, limit: int) -> list[Row]:
    rows: list[Row] = await db.fetch(q("console_member_history"), corp, user_id, before, limit)
    return rows


async def sync_run(db: Db, corp: int, run_id: int) -> Row | None:
    row: Row | None = await db.fetchrow(q("console_sync_run"), corp, run_id)
    return row


async def held_members(db: Db, corp: int, run_id: int, after: int, limit: int) -> list[Row]:
    rows: list[Row] = await db.fetch(q("console_held_members"), corp, run_id, after, limit)
    return rows


async def held_departments(db: Db, corp: int, run_id: int, after: int, limit: int) -> list[Row]:
    rows: list[Row] = await db.fetch(q("console_held_departments"), corp, run_id, after, limit)
    return rows


async def discard_run(db: Db, corp: int, run_id: int) -> bool:
    """Set aside a quarantined run's held removals; False when the run awaits no decision."""
    return await db.fetchval(q("console_discard_run"), corp, run_id) is not None


async def dead_letters(db: Db, before: int | None, limit: int) -> list[Row]:
    rows: list[Row] = await db.fetch(q("console_dead_letters"), before, limit)
    return rows


async def dead_count(db: Db) -> int:
    count: int = await db.fetchval(q("console_dead_count"))
    return count


async def retry_dead(db: Db, inbox_id: int) -> str | None:
    """Put a dead letter back in its stream with fresh attempts; its stream, None when the row is not dead."""
    stream: str | None = await db.fetchval(q("console_retry_dead"), inbox_id)
    return stream


async def discard_dead(db: Db, inbox_id: int) -> bool:
    """Settle a dead letter without applying it; False when the row is not dead."""
    return await db.fetchval(q("console_discard_dead"), inbox_id) is not None


async def recent_callbacks(db: Db, before: int | None, limit: int) -> list[Row]:
    rows: list[Row] = await db.fetch(q("console_recent_callbacks"), before, limit)
    return rows


async def sign_out(db: Db, nonce: str, until: float, now: float) -> None:
    """Refuse the session of ``nonce`` in every process (until ``until``, when it would end anyway)."""
    await db.execute(q("console_sign_out"), nonce, until, now)


async def signed_out(db: Db, nonce: str) -> bool:
    found: bool = await db.fetchval(q("console_signed_out"), nonce)
    return found


async def sign_in_failed(db: Db, now: float, window: float) -> None:
    await db.execute(q("console_sign_in_failed"), now, window)


async def sign_in_failures(db: Db, now: float, window: float) -> int:
    """Wrong sign-in tokens given to any process in the last ``window`` seconds."""
    count: int = await db.fetchval(q("console_sign_in_failures"), now, window)
    return count
