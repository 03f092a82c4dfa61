"""The pool the app's statements run on."""

from __future__ import annotations

import re

import asyncpg

from handlers.store import inbox
from handlers.store.locks import SESSION_STATEMENTS
from handlers.store.queries import q, queries


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


SESSION_COMMAND = re.compile(r"(SET\s+(?!LOCAL\b)|RESET\b|LISTEN\b)", re.IGNORECASE)
SESSION_LOCK = re.compile(r"pg_(try_)?advisory_lock(_shared)?\(|set_config\([^;]*,\s*false\s*\)", re.IGNORECASE)


def _leaves_session_state(sql: str) -> bool:
    code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return bool(SESSION_LOCK.search(code)) or any(SESSION_COMMAND.match(s.strip()) for s in code.split(";"))


def test_every_statement_that_leaves_session_state_is_known() -> None:
    # The pool resets a connection's session only when a function noted that it took session state: a new statement
    # of that kind must be run through such a function and named in SESSION_STATEMENTS.
    found = {name for name, sql in queries().items() if _leaves_session_state(sql)}
    assert found == SESSION_STATEMENTS | {"housekeeping_reset_lock_timeout"}


async def _last_statement(db_url: str, pid: int) -> str:
    other = await asyncpg.connect(db_url)
    try:
        return str(await other.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid))
    finally:
        await other.close()


async def test_a_connection_that_took_no_session_state_goes_back_without_a_reset(
    one_connection: asyncpg.Pool, db_url: str
) -> None:
    async with one_connection.acquire() as conn:
        pid = conn.get_server_pid()
        assert await conn.fetchval("SELECT 41 + 1") == 42
    assert await _last_statement(db_url, pid) == "SELECT 41 + 1"  # no round trip after it


async def test_session_locks_and_settings_left_behind_are_reset_on_release(
    one_connection: asyncpg.Pool, db_url: str
) -> None:
    async with one_connection.acquire() as conn:
        pid = conn.get_server_pid()
        assert await inbox.own_stream(conn, "HQ", True)  # a lock and a setting, left for the reset to undo
    async with one_connection.acquire() as conn:
        assert conn.get_server_pid() == pid  # the same session, reset
        assert await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1", pid) == 0
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
    async with one_connection.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
    assert await _last_statement(db_url, pid) == "SELECT 1"  # reset once, not at every release since
