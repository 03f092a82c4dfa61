"""The ``corps`` rows: one per configured corp (and per suite tenant authorized at run time)."""

from __future__ import annotations

import asyncpg

from handlers.config import AppConfig, CorpConfig, WecomProxyCorp
from handlers.store.pool import Db, Row
from handlers.store.queries import q


def tenant_name(auth_name: str, corp_id: str) -> str:
    """The corp name of a suite tenant that is not configured in the app dir."""
    return f"{auth_name}/{corp_id}"


async def ensure_corp(conn: asyncpg.Connection, corp: CorpConfig) -> int:
    auth = corp.auth.name if isinstance(corp, WecomProxyCorp) else None
    root = corp.sync.root_dept_id
    row_id: int | None = await conn.fetchval(
        q("upsert_corp"), corp.name, corp.platform.value, corp.type.value, corp.corp_id, auth, corp.title, root
    )
    if row_id is None:  # unchanged: the upsert's WHERE skipped the update
        row_id = await corp_id_by_name(conn, corp.name)
    if row_id is None:
        raise RuntimeError(f"corp {corp.name} could not be registered")
    return row_id


async def ensure_corps(conn: asyncpg.Connection, config: AppConfig) -> dict[str, int]:
    """Register every configured corp; return their row ids by name."""
    return {name: await ensure_corp(conn, corp) for name, corp in sorted(config.corps.items())}


# Requests that run at once, past a failed-sync backoff and the drift debounce (handlers.sync.scheduler.due): the
# suite instruction that just gave a tenant its (new) permanent code, without which every earlier run failed.
URGENT_REASONS = frozenset({"create_auth", "reset_permanent_code"})


async def request_sync(conn: asyncpg.Connection, corp_row: int, reason: str) -> None:
    """Ask for a full sync of a corp (debounced: an open request is kept as it is, unless this one is urgent)."""
    await conn.execute(q("request_sync"), corp_row, reason, reason in URGENT_REASONS)


async def runtime_tenants(pool: asyncpg.Pool, config: AppConfig) -> dict[str, WecomProxyCorp]:
    """Suite tenants authorized at run time (by create_auth), as corps the app dir did not configure."""
    rows = await pool.fetch(q("active_tenants_of"), sorted(config.auths), sorted(config.corps))
    return {
        r["name"]: WecomProxyCorp(
            name=r["name"], title=r["title"] or r["corp_id"], corp_id=r["corp_id"], auth=config.auths[r["auth_name"]]
        )
        for r in rows
    }


async def corp_id_by_name(db: Db, name: str) -> int | None:
    row_id: int | None = await db.fetchval(q("corp_id_by_name"), name)
    return row_id


async def corp_by_id(conn: asyncpg.Connection, corp_row: int) -> Row | None:
    row: Row | None = await conn.fetchrow(q("corp_by_id"), corp_row)
    return row


async def corp_by_name(conn: asyncpg.Connection, name: str) -> Row | None:
    """The corp's row, with its open full-sync request (sync_requested_at, sync_request_reason)."""
    row: Row | None = await conn.fetchrow(q("corp_by_name"), name)
    return row


async def corp_for_tenant(conn: asyncpg.Connection, auth_name: str, corp_id: str) -> Row | None:
    """The corps row of a suite tenant (the oldest, should the app dir also configure it)."""
    row: Row | None = await conn.fetchrow(q("corp_for_tenant"), auth_name, corp_id)
    return row


async def active_corps(db: Db) -> list[Row]:
    """Every active corp, by row id."""
    rows: list[Row] = await db.fetch(q("active_corps"))
    return rows


async def set_corp_status(conn: asyncpg.Connection, corp_row: int, status: str) -> None:
    """``active``, or ``disabled`` (an organization dissolved, a suite authorization cancelled)."""
    await conn.execute(q("set_corp_status"), corp_row, status)
