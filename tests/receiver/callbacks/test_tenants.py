"""The suite tenants the data URL accepts, kept in memory: the store is asked only about corps not read yet."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from receiver.callbacks.tenants import ActiveTenants


class Counted:
    """The pool, counting the statements asked of it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.asked = 0

    async def fetch(self, *args: Any) -> list[asyncpg.Record]:
        self.asked += 1
        rows: list[asyncpg.Record] = await self.pool.fetch(*args)
        return rows

    async def fetchval(self, *args: Any) -> Any:
        self.asked += 1
        return await self.pool.fetchval(*args)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def authorize(pool: asyncpg.Pool, corp_id: str, status: str = "active") -> None:
    await pool.execute(
        "INSERT INTO suite_tenants (auth_name, corp_id, permanent_code, status) VALUES ('Suite', $1, 'p', $2) "
        "ON CONFLICT (auth_name, corp_id) DO UPDATE SET status = EXCLUDED.status",
        corp_id,
        status,
    )


async def settled(tenants: ActiveTenants) -> None:
    """Wait for the background read of the set, if one is under way."""
    for _ in range(200):
        if tenants._reading is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the tenants were never read")


async def test_read_tenants_are_answered_without_the_store(pool: asyncpg.Pool) -> None:
    for corp_id in ("ww1", "ww2"):
        await authorize(pool, corp_id)
    await authorize(pool, "ww3", status="cancelled")
    db = Counted(pool)
    tenants = ActiveTenants(db, ["Suite"], gap=0.0)
    try:
        assert await tenants.is_active("Suite", "ww1")  # the store answers while the set is read
        await settled(tenants)
        asked = db.asked
        for _ in range(3):
            assert await tenants.is_active("Suite", "ww1")
            assert await tenants.is_active("Suite", "ww2")
        assert db.asked == asked
        assert not await tenants.is_active("Suite", "ww3")  # not in the set: the store says no
        assert not await tenants.is_active("Other", "ww1")
        assert db.asked == asked + 2
    finally:
        await tenants.close()


async def test_a_tenant_authorized_elsewhere_is_asked_for_and_kept_for_the_ttl(pool: asyncpg.Pool) -> None:
    clock, db = Clock(), Counted(pool)
    tenants = ActiveTenants(db, ["Suite"], ttl=30.0, max_age=600.0, gap=0.0, clock=clock)
    try:
        assert not await tenants.is_active("Suite", "ww9")
        await settled(tenants)
        assert not await tenants.is_active("Suite", "ww9")  # a no is not kept
        await authorize(pool, "ww9")
        assert await tenants.is_active("Suite", "ww9")
        asked = db.asked
        clock.now += 29
        assert await tenants.is_active("Suite", "ww9")
        assert db.asked == asked
        clock.now += 2
        await pool.execute("UPDATE suite_tenants SET status = 'cancelled'")
        assert not await tenants.is_active("Suite", "ww9")
    finally:
        await tenants.close()


async def test_a_cancel_applied_here_is_seen_at_once_and_an_old_set_is_read_again(pool: asyncpg.Pool) -> None:
    await authorize(pool, "ww1")
    await authorize(pool, "ww2")
    clock = Clock()
    tenants = ActiveTenants(pool, ["Suite"], max_age=30.0, gap=0.0, clock=clock)
    try:
        await tenants.is_active("Suite", "ww1")
        await settled(tenants)
        await pool.execute("UPDATE suite_tenants SET status = 'cancelled' WHERE corp_id = 'ww1'")
        tenants.changed(removed=True)
        assert not await tenants.is_active("Suite", "ww1")
        await settled(tenants)
        assert not await tenants.is_active("Suite", "ww1")
        await pool.execute("UPDATE suite_tenants SET status = 'cancelled' WHERE corp_id = 'ww2'")  # elsewhere
        assert await tenants.is_active("Suite", "ww2")  # the set read a moment ago still holds it
        clock.now += 31
        assert await tenants.is_active("Suite", "ww2")  # answered from the old set while it is read again
        await settled(tenants)
        assert not await tenants.is_active("Suite", "ww2")
    finally:
        await tenants.close()


async def test_a_store_that_is_away_is_read_again_later(pool: asyncpg.Pool) -> None:
    await authorize(pool, "ww1")
    tenants = ActiveTenants(pool, ["Suite"], gap=0.0)
    try:
        await pool.execute("ALTER TABLE suite_tenants RENAME TO suite_tenants_away")
        with pytest.raises(asyncpg.UndefinedTableError):
            await tenants.is_active("Suite", "ww1")
        await settled(tenants)
        await pool.execute("ALTER TABLE suite_tenants_away RENAME TO suite_tenants")
        assert await tenants.is_active("Suite", "ww1")
        await settled(tenants)
        await pool.execute("ALTER TABLE suite_tenants RENAME TO suite_tenants_away")
        assert await tenants.is_active("Suite", "ww1")  # from memory
    finally:
        await pool.execute("ALTER TABLE IF EXISTS suite_tenants_away RENAME TO suite_tenants")
        await tenants.close()
