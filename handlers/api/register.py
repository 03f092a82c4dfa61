"""bulkRegister's own path: write chosen members of a directory read before, without a full sync run."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from handlers.api.writes import API
from handlers.clients.protocol import Progress
from handlers.errors import UnknownRecord
from handlers.model import Snapshot
from handlers.store import users
from handlers.store.directory import Directory, Reactivate
from handlers.sync.reconcile import Counts, empty_counts

_COUNTED = {"create": "created", "update": "updated", "reactivate": "reactivated"}


class GivenSnapshot:
    """A snapshot source that answers with a snapshot already in hand (bulk_register as a full sync)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    async def fetch_snapshot(self, progress: Progress | None = None) -> Snapshot:
        return self._snapshot


async def register_members(pool: asyncpg.Pool, corp: int, snapshot: Snapshot, member_ids: Sequence[str]) -> Counts:
    """Create or update exactly ``member_ids`` from ``snapshot``, in one transaction; no removals, no run
    record. A member the operator took offline stays offline (``Reactivate.CONFIRMED``). The members end registered
    in the local user pool."""
    by_id = {m.user_id: m for m in snapshot.members}
    missing = [m for m in member_ids if m not in by_id]
    if missing:
        raise UnknownRecord("member", *missing)
    counts = empty_counts()
    async with pool.acquire() as conn, conn.transaction():
        directory = Directory(conn, corp, API)
        for user_id in member_ids:
            change = await directory.upsert_member(by_id[user_id], reactivate=Reactivate.CONFIRMED)
            if change is not None:
                counts["members"][_COUNTED[change.op]] += 1
        await users.register(conn, corp, member_ids)
    return counts
