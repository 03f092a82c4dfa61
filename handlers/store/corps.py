"""The ``corps`` rows: one per configured corp (and per suite tenant authorized at run time)."""

from __future__ import annotations

import asyncpg

from handlers.config import AppConfig, CorpConfig, WecomProxyCorp
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
        row_id = await conn.fetchval(q("corp_id_by_name"), corp.name)
    if row_id is None:
        raise RuntimeError(f"corp {corp.name} could not be registered")
    return row_id


async def ensure_corps(conn: asyncpg.Connection, config: AppConfig) -> dict[str, int]:
    """Register every configured corp; return their row ids by name."""
    return {name: await ensure_corp(conn, corp) for name, corp in sorted(config.corps.items())}


async def request_sync(conn: asyncpg.Connection, corp_row: int, reason: str) -> None:
    """Ask for a full sync of a corp (debounced: an open request is kept as it is)."""
    await conn.execute(q("request_sync"), corp_row, reason)


async def runtime_tenants(pool: asyncpg.Pool, config: AppConfig) -> dict[str, WecomProxyCorp]:
    """Suite tenants authorized at run time (by create_auth), as corps the app dir did not configure."""
    rows = await pool.fetch(q("active_tenants_of"), sorted(config.auths), sorted(config.corps))
    return {
        r["name"]: WecomProxyCorp(
            name=r["name"], title=r["title"] or r["corp_id"], corp_id=r["corp_id"], auth=config.auths[r["auth_name"]]
        )
        for r in rows
    }
