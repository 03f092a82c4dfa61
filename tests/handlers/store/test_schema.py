"""Migrations against real PostgreSQL."""

from __future__ import annotations

import asyncio
import re

import asyncpg

from handlers.store import pool as db
from handlers.store.queries import migrations, queries


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


def _is_script(sql: str) -> bool:
    code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return bool(code.rstrip().rstrip(";").count(";"))


async def test_every_named_query_prepares(pool: asyncpg.Pool) -> None:
    """Scripts (several statements, e.g. the staging tables full sync creates) run first, then every
    single statement is prepared against them, all in one transaction that is rolled back."""
    named = queries()
    ordered = sorted(named.items(), key=lambda item: not _is_script(item[1]))
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            for name, sql in ordered:
                try:
                    if _is_script(sql):
                        await conn.execute(sql)
                    else:
                        await conn.prepare(sql)
                except asyncpg.PostgresError as exc:
                    raise AssertionError(f"query {name} does not prepare: {exc}") from exc
        finally:
            await tx.rollback()


ASYNCPG_CACHEABLE = 15 * 1024  # asyncpg's max_cacheable_statement_size, which create_pool leaves as it is


def test_every_named_query_fits_the_statement_cache() -> None:
    """asyncpg prepares a longer statement (its comments count) unnamed, every time: PostgreSQL parses and plans it
    at each call and never settles on a generic plan (bench/README.md, "Applying events")."""
    sizes = {name: len(sql) for name, sql in queries().items()}
    assert {name: size for name, size in sizes.items() if size > ASYNCPG_CACHEABLE} == {}


def test_every_named_query_with_parameters_names_them_first() -> None:
    """The comment line right under ``-- name:`` says what $1, $2, ... are."""
    unnamed = []
    for name, sql in queries().items():
        code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
        if re.search(r"\$\d", code) and not sql.startswith("-- $"):
            unnamed.append(name)
    assert unnamed == []


async def test_tests_get_isolated_databases(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO corps (name, platform, type, corp_id) VALUES ('iso', 'wecom', 'corps.QywxInnerType', 'x')"
    )
    assert await pool.fetchval("SELECT count(*) FROM corps") == 1


async def test_tests_get_isolated_databases_again(pool: asyncpg.Pool) -> None:
    assert await pool.fetchval("SELECT count(*) FROM corps") == 0


async def test_the_inbox_time_index_is_a_brin_summary(pool: asyncpg.Pool) -> None:
    """received_at only grows with the inbox, and a btree on it cost every callback an index insertion: migration
    0004 makes it a BRIN index. The intake's hot path keeps the btrees it needs (primary key, dedupe, pending); the
    console's dead-letter index (0010) holds dead rows only, so an insert (a pending row) adds nothing to it."""
    kinds = dict(
        await pool.fetch(
            "SELECT c.relname, a.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = 'inbox'::regclass"
        )
    )
    assert kinds == {
        "inbox_pkey": "btree",
        "inbox_stream_dedupe_key_key": "btree",
        "inbox_pending": "btree",
        "inbox_received": "brin",
        "inbox_dead": "btree",
    }
    predicate = await pool.fetchval(
        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = 'inbox_dead'::regclass"
    )
    assert predicate == "(status = 'dead'::text)"


MEMBER_ROWS = ("member_departments", "tag_members", "role_members", "admins", "signatures")


async def test_a_member_row_checks_one_foreign_key_and_goes_with_its_corp(pool: asyncpg.Pool) -> None:
    keys = await pool.fetch(
        "SELECT conrelid::regclass::text AS tbl, array_agg(confrelid::regclass::text) AS refs FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid::regclass::text = ANY($1::text[]) GROUP BY 1",
        list(MEMBER_ROWS),
    )
    assert {k["tbl"]: k["refs"] for k in keys} == {table: ["members"] for table in MEMBER_ROWS}
    corp = await pool.fetchval(
        "INSERT INTO corps (name, platform, type, corp_id) VALUES ('HQ', 'wecom', 'corps.QywxType', 'ww1') RETURNING id"
    )
    member = await pool.fetchval("INSERT INTO members (corp, user_id) VALUES ($1, 'u1') RETURNING id", corp)
    await pool.execute("INSERT INTO member_departments (corp, member, dept_id) VALUES ($1, $2, '1')", corp, member)
    await pool.execute("INSERT INTO tag_members (corp, tag_id, member) VALUES ($1, 't1', $2)", corp, member)
    await pool.execute("INSERT INTO role_members (corp, role_id, member) VALUES ($1, 'r1', $2)", corp, member)
    await pool.execute("INSERT INTO admins (corp, member, level, source) VALUES ($1, $2, 1, 'platform')", corp, member)
    await pool.execute("DELETE FROM corps WHERE id = $1", corp)
    for table in MEMBER_ROWS:
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 0  # noqa: S608 - fixed names
