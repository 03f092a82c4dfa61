"""The pool the app's statements run on."""

from __future__ import annotations

import asyncpg

from handlers.store.queries import q


async def test_statements_are_never_jit_compiled(pool: asyncpg.Pool) -> None:
    # The probes' read (health_streams) runs in well under a millisecond, but on a young inbox_streams (no
    # statistics: the planner guesses 1,200 streams) its estimated cost passed jit_above_cost, and compiling it
    # took 25 ms of PostgreSQL CPU a call: hostile traffic to /readyz and /metrics became most of the database's
    # work. A jit_above_cost of 0 stands in for such an estimate.
    async with pool.acquire() as conn:
        await conn.execute("SET jit_above_cost = 0")
        (plan,) = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + q("health_streams"))  # decoded json
        await conn.execute("RESET jit_above_cost")
    assert "JIT" not in plan
