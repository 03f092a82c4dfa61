"""Finding a corp by name (configured, or a suite tenant authorized at run time), and its masked config."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from handlers.config import AppConfig, CorpConfig, DingTalkCorp, WecomInnerCorp, WecomProxyCorp
from handlers.errors import UnknownCorp, UnknownRecord
from handlers.store import credentials, reads
from handlers.store.corps import corp_id_by_name, ensure_corp

MASK = "***"


async def resolve(pool: asyncpg.Pool, config: AppConfig, name: str) -> tuple[CorpConfig, int]:
    """A configured corp, or a suite tenant authorized at run time (a corps row of a configured auth)."""
    corp = config.corps.get(name)
    if corp is not None:
        row_id = await corp_id_by_name(pool, name)
        if row_id is None:
            async with pool.acquire() as conn:
                row_id = await ensure_corp(conn, corp)
        return corp, row_id
    row = await reads.corp_row(pool, name)
    auth = None if row is None or row["auth_name"] is None else config.auths.get(row["auth_name"])
    if row is None or auth is None:
        raise UnknownCorp(name)
    return WecomProxyCorp(name=name, title=row["title"] or row["corp_id"], corp_id=row["corp_id"], auth=auth), row["id"]


async def get_agent_id(pool: asyncpg.Pool, config: AppConfig, corp_id: str, suite_id: str) -> str | None:
    """JitAI ``QywxProxyCorp.getAgentId``: the agent id a tenant's authorization gave the suite's app.

    An unknown suite raises ``UnknownRecord('suite')``; a corp that never authorized the suite ``UnknownCorp``,
    each with one line saying which. None only for a tenant whose authorization named no agent (yet)."""
    auth = next((a for a in config.auths.values() if a.suite_id == suite_id), None)
    if auth is None:
        raise UnknownRecord("suite", suite_id)
    if await credentials.load_tenant(pool, auth.name, corp_id) is None:
        raise UnknownCorp(f"corp {corp_id} has not authorized suite {suite_id} (no create_auth received)")
    return await credentials.get_agent_id(pool, auth.name, corp_id)


def masked_auth_config(c: CorpConfig) -> Mapping[str, str | None]:
    """JitAI ``authConfig`` with every secret shown as ``***``."""
    if isinstance(c, WecomInnerCorp):
        contact = MASK if c.contact_secret else None
        return {"corpId": c.corp_id, "agentId": c.agent_id, "secret": MASK, "contactSecret": contact,
                "apiBase": c.api_base}  # fmt: skip
    if isinstance(c, DingTalkCorp):
        return {"corpId": c.corp_id, "agentId": c.agent_id, "appKey": c.app_key, "appSecret": MASK,
                "apiBase": c.api_base}  # fmt: skip
    return {"corpId": c.corp_id, "authFullName": f"auths.{c.auth.name}", "suiteId": c.auth.suite_id,
            "suiteSecret": MASK, "apiBase": c.api_base}  # fmt: skip
