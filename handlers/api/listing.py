"""The corps the app serves, as a keyset page of ``CorpInfo`` (configured corps and suite tenants)."""

from __future__ import annotations

import aiohttp
import asyncpg

from handlers.api.corp import Corp
from handlers.api.paging import DEFAULT_LIMIT, Page, check_limit, decode_cursor, encode_cursor
from handlers.api.views import CorpInfo
from handlers.config import AppConfig
from handlers.store import reads


async def corp_page(
    pool: asyncpg.Pool,
    config: AppConfig,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    session: aiohttp.ClientSession | None = None,
) -> Page[CorpInfo]:
    after = decode_cursor("corps", cursor, str)
    names, auths = sorted(config.corps), sorted(config.auths)
    rows = await reads.corps_page(pool, names, auths, after, check_limit(limit) + 1)
    total = await reads.corps_count(pool, names, auths)
    items = []
    for row in rows[:limit]:
        corp = await Corp.open(pool, config, row["name"], session)
        items.append(await corp.get_corp_info())
    more = len(rows) > limit
    return Page(tuple(items), total, encode_cursor("corps", items[-1].name) if more else None)
