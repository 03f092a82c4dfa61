"""Early housekeeping: ANALYZE the tables a fresh database grows from empty, VACUUM an inbox or change_log of dead
rows (ANALYZE with it only when the statistics lag too)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from handlers.store.locks import holds_session_state
from handlers.store.queries import q


@dataclass(frozen=True, slots=True)
class Maintained:
    table: str
    vacuum: bool  # VACUUMed
    analyze: bool = True  # ANALYZEd (with the VACUUM, or alone)


def _statement(table: str, vacuum: bool, analyze: bool) -> str:
    """An inbox VACUUMed for its dead rows needs no new statistics each time: ANALYZE reads a 30,000-row sample
    of ~1 kB rows, most of the cost of ``VACUUM (ANALYZE)`` there (bench/README.md, "Applying events")."""
    if vacuum:
        return f"VACUUM (ANALYZE) {table}" if analyze else f"VACUUM {table}"
    return f"ANALYZE {table}"


async def maintain_tables(conn: asyncpg.Connection) -> AsyncIterator[Maintained]:
    """ANALYZE (or VACUUM) each table that needs it now; a table someone else holds locked is skipped.

    On a fresh database the directory tables grow from empty, and plans made on empty tables scan a whole corp
    per event until statistics exist (autovacuum looks once a minute); a busy inbox collects dead rows the
    pending index then walks, and the retention purge leaves dead rows in inbox and change_log whose space only
    VACUUM makes reusable. Yields each table once it is maintained.
    """
    for row in await conn.fetch(q("housekeeping_tables")):
        table = '"' + row["relname"] + '"'  # a name from the query's fixed list
        vacuum, analyze = bool(row["vacuum"]), bool(row["analyze"])
        statement = _statement(table, vacuum, analyze)
        holds_session_state(conn)
        await conn.execute(q("housekeeping_lock_timeout"))
        try:
            await conn.execute(statement)
        except asyncpg.LockNotAvailableError:
            continue
        finally:
            await conn.execute(q("housekeeping_reset_lock_timeout"))
        yield Maintained(row["relname"], vacuum, analyze)
