"""Every advisory-lock key of corpsync, and the statements that take and release them.

A key is the first of PostgreSQL's two int4 lock keys (the second is a corps row id or a hashed name), except
MIGRATE_LOCK, one bigint. A session lock is held until it is released or the connection closes, a transaction
lock until the transaction ends. Keys must stay unique and unchanged: processes of different versions share a
database.
"""

from __future__ import annotations

import asyncpg

from handlers.store.queries import q

MIGRATE_LOCK = 0x636F7270_73796E63  # "corpsync", session: one process applies the migrations at a time
INBOX_INSERT_LOCK = 0x63690001  # per stream, transaction: writers of one inbox stream commit one after the other
STREAM_LOCK = 0x696E6278  # "inbx", per stream, session: one worker connection drains an inbox stream at a time
FAILED_LIST_LOCK = 0x64746661  # "dtfa", per corp, session: one drain of its DingTalk failed list at a time
FULL_SYNC_LOCK = 0x63730001  # per corps row, session: one full sync of a corp at a time, across processes
ADMINS_LOCK = 0x61646D73  # "adms", per corps row, transaction: setAdmin calls of one corp queue up
CREDENTIAL_LOCK = 0x434F4C44  # per credential key, transaction: one process renews a cached credential at a time
FEED_FANOUT_LOCK = 0x66656564  # "feed", row 0, transaction: one process moves change_log into the outbox at a time
FEED_STREAM_LOCK = 0x66647374  # "fdst", per (subscriber, corp) hashed, session: one process sends a stream at a time
# change_log_hold (migration 0006) takes bigint-form keys below 2^62, one per writing transaction: see feed_horizon
PURGE_LOCK = 0x70757267  # "purg", session: one process purges old rows at a time (handlers.worker.purge)


# Server process ids of connections that took session state: a session advisory lock or a session setting.
_session_state: set[int] = set()

# The named statements that leave state in the session. Each runs only through a function that calls
# holds_session_state first (tests/handlers/store/test_pool.py finds every such statement in the SQL files).
SESSION_STATEMENTS = frozenset({"try_lock_name", "try_lock_row", "worker_own_stream", "housekeeping_lock_timeout"})


def holds_session_state(conn: asyncpg.Connection) -> None:
    """Note that ``conn`` is about to take session state (a session lock or setting): back in the pool, its session
    is reset (handlers.store.pool)."""
    _session_state.add(conn.get_server_pid())


def took_session_state(conn: asyncpg.Connection) -> bool:
    """Whether ``conn`` took session state since this was last asked (its reset must then undo it)."""
    pid = conn.get_server_pid()
    if pid not in _session_state:
        return False
    _session_state.discard(pid)
    return True


async def _try_session_lock(conn: asyncpg.Connection, statement: str, key: int, thing: str | int) -> bool:
    """Take a session lock (``try_lock_name`` or ``try_lock_row``) without waiting; False when another session holds
    it. Noted as session state first, so the pool's reset gives it up if nothing else does."""
    holds_session_state(conn)
    locked: bool = await conn.fetchval(q(statement), key, thing)
    return locked


async def try_lock_failed_list(conn: asyncpg.Connection, corp_name: str) -> bool:
    """Own the drain of the corp's DingTalk failed-events list (each fetch deletes the batch before it); False
    when another connection owns it."""
    return await _try_session_lock(conn, "try_lock_name", FAILED_LIST_LOCK, corp_name)


async def unlock_failed_list(conn: asyncpg.Connection, corp_name: str) -> None:
    await conn.fetchval(q("unlock_name"), FAILED_LIST_LOCK, corp_name)


async def try_lock_full_sync(conn: asyncpg.Connection, corp_row: int) -> bool:
    """Own the corp's full sync on this connection; False when a run holds it anywhere."""
    return await _try_session_lock(conn, "try_lock_row", FULL_SYNC_LOCK, corp_row)


async def unlock_full_sync(conn: asyncpg.Connection, corp_row: int) -> None:
    await conn.execute(q("unlock_row"), FULL_SYNC_LOCK, corp_row)


async def lock_admins(conn: asyncpg.Connection, corp_row: int) -> None:
    """Inside a transaction: wait until no other setAdmin of the corp is under way."""
    await conn.execute(q("xact_lock_row"), ADMINS_LOCK, corp_row)


async def lock_credential(conn: asyncpg.Connection, key: str) -> None:
    """Inside a transaction: wait until no other process is renewing the credential ``key``."""
    await conn.execute(q("xact_lock_name"), CREDENTIAL_LOCK, key)


async def try_lock_feed_fanout(conn: asyncpg.Connection) -> bool:
    """Inside a transaction: own the fan-out of change_log into the outbox; False when another process has it."""
    locked: bool = await conn.fetchval(q("xact_try_lock_row"), FEED_FANOUT_LOCK, 0)
    return locked


def _stream_name(subscriber: str, corp_row: int) -> str:
    return f"{subscriber}:{corp_row}"


async def try_lock_feed_stream(conn: asyncpg.Connection, subscriber: str, corp_row: int) -> bool:
    """Own the delivery of one (subscriber, corp) stream on this connection; False when another connection has it."""
    return await _try_session_lock(conn, "try_lock_name", FEED_STREAM_LOCK, _stream_name(subscriber, corp_row))


async def unlock_feed_stream(conn: asyncpg.Connection, subscriber: str, corp_row: int) -> None:
    await conn.fetchval(q("unlock_name"), FEED_STREAM_LOCK, _stream_name(subscriber, corp_row))


async def try_lock_purge(conn: asyncpg.Connection) -> bool:
    """Own the retention purge on this connection; False when another process is purging."""
    return await _try_session_lock(conn, "try_lock_name", PURGE_LOCK, "purge")


async def unlock_purge(conn: asyncpg.Connection) -> None:
    await conn.fetchval(q("unlock_name"), PURGE_LOCK, "purge")
