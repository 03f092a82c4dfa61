"""Database access: the asyncpg pool, and schema migrations that are safe when processes start together."""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

from handlers.errors import StoreUnavailable
from handlers.store.locks import MIGRATE_LOCK, holds_session_state, took_session_state
from handlers.store.queries import migrations

log = logging.getLogger("corpsync.db")

Db = asyncpg.Pool | asyncpg.Connection  # where a statement needs no transaction of its own
Row = Mapping[str, Any]  # an asyncpg Record, read by column name

# What a lost or broken database connection can raise; callers answer 503 / retry rather than crash.
# InternalClientError appears when a connection is terminated under asyncpg while it is idle.
DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)

# The part of DB_ERRORS that means "no database now" rather than "this statement failed": 503, retry later.
DB_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads
        )


# Every statement here is short. PostgreSQL compiles one with LLVM when its *estimated* cost passes jit_above_cost,
# and estimates on young tables are guesses: the probes' read (health_streams), under a millisecond to run, took
# 25 ms of JIT a call while inbox_streams had no statistics (bench/hostile.py: most of the database's CPU).
SERVER_SETTINGS = {"jit": "off"}


CONNECT_TIMEOUT = 10.0  # seconds to reach the server and log in (asyncpg's default is a minute)


async def _reset(conn: asyncpg.Connection) -> None:
    """Before a connection goes back to the pool, once asyncpg has rolled back a transaction left open: asyncpg's
    full reset (unlock all, close all, unlisten, reset all) for a connection that took session state, nothing
    for the others. The full reset on every release was a round trip per pooled statement."""
    if took_session_state(conn):
        await conn.execute(conn.get_reset_query())


def redacted(url: str) -> str:
    """``url`` without its password, to name a database in a message or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))


def _reason(exc: BaseException) -> str:
    """What went wrong while connecting, in words an operator can act on."""
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return f"{exc} (check the password in CORPSYNC_DATABASE_URL)"
    if isinstance(exc, asyncpg.InvalidCatalogNameError | asyncpg.InvalidAuthorizationSpecificationError):
        return f"{exc} (create it, or fix CORPSYNC_DATABASE_URL)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and (exc.errno == errno.ECONNREFUSED or "Connect call failed" in str(exc))
    ):
        return "connection refused (is PostgreSQL running and listening there?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


_CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 20, **kwargs: Any) -> asyncpg.Pool:
    """A pool whose connections encode and decode json/jsonb with orjson, and never JIT-compile a statement.

    A database that cannot be reached or logged into raises StoreUnavailable naming it and why, in one line."""
    kwargs["server_settings"] = {**SERVER_SETTINGS, **kwargs.get("server_settings", {})}
    kwargs.setdefault("timeout", CONNECT_TIMEOUT)
    try:
        pool = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, init=_init_connection, reset=_reset, **kwargs
        )
    except _CONNECT_ERRORS as exc:
        raise StoreUnavailable(f"database {redacted(url)}: {_reason(exc)}") from exc
    if pool is None:  # asyncpg types the result as Optional
        raise RuntimeError("asyncpg.create_pool returned no pool")
    return pool


async def connect(url: str) -> asyncpg.Connection:
    """One connection set up as the pool's are (json/jsonb through orjson, SERVER_SETTINGS); StoreUnavailable, in
    one line, when it cannot be made."""
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT, server_settings=SERVER_SETTINGS)
    except _CONNECT_ERRORS as exc:
        raise StoreUnavailable(f"database {redacted(url)}: {_reason(exc)}") from exc
    await _init_connection(conn)
    return conn


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply the migrations this database lacks, each in its own transaction; return the versions applied.

    Two processes that migrate at once (two ``corpsync migrate``, or two ``serve``) apply each migration exactly
    once: the second waits for MIGRATE_LOCK, then finds nothing to do.
    """
    applied: list[int] = []
    holds_session_state(conn)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATE_LOCK)
    try:
        await conn.execute(_MIGRATIONS_TABLE)
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            applied.append(migration.version)
            log.info(
                "migration applied",
                extra={"action": "migration_applied", "version": migration.version, "migration": migration.name},
            )
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATE_LOCK)
    return applied


async def schema_version(conn: asyncpg.Connection) -> int | None:
    """The newest applied migration, or None when the database has no corpsync schema."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return None
    version: int | None = await conn.fetchval("SELECT max(version) FROM schema_migrations")
    return version


def head_version() -> int:
    return migrations()[-1].version
