"""Blind time of DingTalk Stream corps: no live connection for longer than the gap asks for a full sync."""

from __future__ import annotations

import asyncpg

from handlers.sync import drift
from tests.support.eventkit import make_corp, sync_reason

GAP = 300.0
T0 = 1_800_000_000.0


async def test_the_first_connection_of_a_corp_is_not_a_gap(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    async with pool.acquire() as conn:
        assert not await drift.stream_connected(conn, corp, "p1", T0, GAP)
    assert await sync_reason(pool, corp) is None


async def test_ten_blind_minutes_request_a_full_sync_on_reconnect(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    async with pool.acquire() as conn:
        await drift.stream_connected(conn, corp, "p1", T0, GAP)
        await drift.stream_live(conn, corp, "p1", T0 + 30)  # the connection dropped here
        assert not await drift.stream_connected(conn, corp, "p1", T0 + 30 + GAP, GAP)  # exactly the gap: not past it
        await drift.stream_live(conn, corp, "p1", T0 + 40 + GAP)
        assert await drift.stream_connected(conn, corp, "p1", T0 + 40 + GAP + 600, GAP)
    assert await sync_reason(pool, corp) == "stream_gap"


async def test_another_process_connected_meanwhile_means_no_gap(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    async with pool.acquire() as conn:
        await drift.stream_connected(conn, corp, "p1", T0, GAP)
        await drift.stream_connected(conn, corp, "p2", T0, GAP)
        await drift.stream_live(conn, corp, "p2", T0 + 590)  # p2 stayed connected while p1 was blind
        assert not await drift.stream_connected(conn, corp, "p1", T0 + 600, GAP)
    assert await sync_reason(pool, corp) is None


async def test_blind_time_of_one_corp_is_not_anothers(pool: asyncpg.Pool) -> None:
    blind = await make_corp(pool)
    other = await make_corp(pool, "Other", corp_id="wwother")
    async with pool.acquire() as conn:
        await drift.stream_connected(conn, blind, "p1", T0, GAP)
        await drift.stream_connected(conn, other, "p1", T0 + 1000, GAP)
        assert await drift.stream_connected(conn, blind, "p1", T0 + 1000, GAP)
    assert (await sync_reason(pool, blind), await sync_reason(pool, other)) == ("stream_gap", None)
