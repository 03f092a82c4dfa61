"""Housekeeping VACUUMs a change_log the retention purge thinned, so its space is reused (autovacuum may be off), and
ANALYZEs it too only when its statistics lag."""

from __future__ import annotations

import asyncpg

from handlers.store.housekeeping import Maintained, maintain_tables


async def _change_log_of_8000(conn: asyncpg.Connection) -> None:
    corp = await conn.fetchval(
        "INSERT INTO corps (name, platform, type, corp_id) VALUES ('HQ', 'wecom', 'corps.QywxInnerType', 'ww')"
        " RETURNING id"
    )
    await conn.execute(
        "INSERT INTO change_log (corp, entity, entity_id, op, source)"
        " SELECT $1, 'member', 'u' || n, 'create', 'event' FROM generate_series(1, 8000) n",
        corp,
    )


async def test_a_change_log_of_dead_rows_is_vacuumed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await _change_log_of_8000(conn)
        await conn.execute("SELECT pg_stat_force_next_flush()")  # the inserts counted before ANALYZE resets them
        await conn.execute("ANALYZE change_log")
        await conn.execute("DELETE FROM change_log WHERE id % 8 <> 0")
        await conn.execute("SELECT pg_stat_force_next_flush()")
    async with pool.acquire() as conn:
        done = [m async for m in maintain_tables(conn)]
        assert Maintained("change_log", vacuum=True, analyze=False) in done
        assert await conn.fetchval("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'change_log'") == 0
        analyzed = await conn.fetchval("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'change_log'")
        assert analyzed == 1  # the test's own: 7,000 deleted of 8,000 is no reason for new statistics


async def test_a_table_both_dead_and_grown_is_vacuumed_and_analyzed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await _change_log_of_8000(conn)
        await conn.execute("DELETE FROM change_log WHERE id % 8 <> 0")
        await conn.execute("SELECT pg_stat_force_next_flush()")
    async with pool.acquire() as conn:
        done = [m async for m in maintain_tables(conn)]
        assert Maintained("change_log", vacuum=True, analyze=True) in done
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        assert await conn.fetchval("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'change_log'") == 1


async def test_a_table_analyzed_once_is_left_alone_until_it_grows_again(pool: asyncpg.Pool) -> None:
    # ANALYZE of some columns only does not reset the table's count of changes since the last ANALYZE, so a pass
    # that analyzed so would find the table due again at every tick (bench/tenants.py: 24 of them, 5 s of CPU).
    async with pool.acquire() as conn:
        await _change_log_of_8000(conn)
        await conn.execute("SELECT pg_stat_force_next_flush()")
    async with pool.acquire() as conn:
        assert Maintained("change_log", vacuum=False, analyze=True) in [m async for m in maintain_tables(conn)]
        await conn.execute(
            "INSERT INTO change_log (corp, entity, entity_id, op, source)"
            " SELECT c.id, 'member', 'more' || n, 'create', 'event' FROM corps c, generate_series(1, 100) n"
        )
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        assert [m async for m in maintain_tables(conn) if m.table == "change_log"] == []  # 100 new of 8,100
