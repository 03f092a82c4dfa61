"""Migrations against real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg

from handlers.sql import migrations, queries
from receiver import db


async def test_migrate_creates_schema_and_records_versions(empty_db_url: str) -> None:
    conn = await db.connect(empty_db_url)
    try:
        assert await db.schema_version(conn) is None
        applied = await db.migrate(conn)
        assert applied == [m.version for m in migrations()]
        assert await db.schema_version(conn) == db.head_version()
        assert await db.migrate(conn) == []
    finally:
        await conn.close()


async def test_two_concurrent_migrations_both_succeed_and_apply_once(empty_db_url: str) -> None:
    conns = [await db.connect(empty_db_url) for _ in range(2)]
    try:
        results = await asyncio.gather(*(db.migrate(c) for c in conns))
        assert sorted(len(r) for r in results) == [0, len(migrations())]
        rows = await conns[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [m.version for m in migrations()]
    finally:
        for c in conns:
            await c.close()


async def test_every_named_query_prepares(pool: asyncpg.Pool) -> None:
    """Single statements are prepared; scripts (several statements) run in a transaction that is rolled back."""
    async with pool.acquire() as conn:
        for name, sql in queries().items():
            try:
                code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
                if code.rstrip().rstrip(";").count(";"):
                    tx = conn.transaction()
                    await tx.start()
                    try:
                        await conn.execute(sql)
                    finally:
                        await tx.rollback()
                else:
                    await conn.prepare(sql)
            except asyncpg.PostgresError as exc:
                raise AssertionError(f"query {name} does not prepare: {exc}") from exc


async def test_tests_get_isolated_databases(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO corps (name, platform, type, corp_id) VALUES ('iso', 'wecom', 'corps.QywxInnerType', 'x')"
    )
    assert await pool.fetchval("SELECT count(*) FROM corps") == 1


async def test_tests_get_isolated_databases_again(pool: asyncpg.Pool) -> None:
    assert await pool.fetchval("SELECT count(*) FROM corps") == 0
