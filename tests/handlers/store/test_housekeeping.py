"""Housekeeping VACUUMs a change_log the retention purge thinned, so its space is reused (autovacuum may be off), and
ANALYZEs it too only when its statistics lag."""

from __future__ import annotations

import asyncpg

from handlers.store.housekeeping import ANALYZED_COLUMNS, Maintained, maintain_tables


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


async def test_a_grown_change_log_is_analyzed_without_its_payload_columns(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp = await conn.fetchval(
            "INSERT INTO corps (name, platform, type, corp_id) VALUES ('HQ', 'wecom', 'corps.QywxInnerType', 'ww')"
            " RETURNING id"
        )
        await conn.execute(
            "INSERT INTO change_log (corp, entity, entity_id, op, source, fields, changes)"
            " SELECT $1, 'member', 'u' || n, 'update', 'event', ARRAY['name'], jsonb_build_object('name', n)"
            " FROM generate_series(1, 8000) n",
            corp,
        )
        await conn.execute("SELECT pg_stat_force_next_flush()")
    async with pool.acquire() as conn:
        done = [m async for m in maintain_tables(conn)]
        assert Maintained("change_log", vacuum=False, analyze=True) in done
        analyzed = {
            r["attname"] for r in await conn.fetch("SELECT attname FROM pg_stats WHERE tablename = 'change_log'")
        }
    assert analyzed == set(ANALYZED_COLUMNS["change_log"])


async def test_every_change_log_column_but_the_payload_is_analyzed(pool: asyncpg.Pool) -> None:
    # A new column of change_log is analyzed only once it is listed: decide for each whether plans need it.
    columns = {
        r["column_name"]
        for r in await pool.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = 'change_log'")
    }
    assert columns - set(ANALYZED_COLUMNS["change_log"]) == {"changes", "fields"}
