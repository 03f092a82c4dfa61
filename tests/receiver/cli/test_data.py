"""``corpsync purge [--dry-run]`` and ``corpsync forget CORP MEMBER`` as users run them, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import asyncpg

from tests.support.processes import corpsync_env


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def _sql(url: str, statement: str, *params: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(statement, *params)
    finally:
        await conn.close()


def sql(url: str, statement: str, *params: Any) -> Any:
    return asyncio.run(_sql(url, statement, *params))


OLD_ROWS = (
    "INSERT INTO inbox (stream, platform, route, dedupe_key, query, body, plaintext, status, received_at)"
    " SELECT 'HQ', 'wecom', 'wecom', 'k' || n, '{}', 'raw', '<xml/>', 'done',"
    " now() - make_interval(days => n, hours => 12)"
    " FROM generate_series(1, 40) n"
)


def test_purge_dry_run_counts_then_purge_does_it(db_url: str) -> None:
    sql(db_url, OLD_ROWS)
    env = corpsync_env(CORPSYNC_DATABASE_URL=db_url, CORPSYNC_RETAIN_CHANGE_LOG="never")
    dry = run("purge", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "inbox payloads to strip (older than 7d): 34" in dry.stdout  # days 7..40
    assert "inbox rows to delete (older than 30d): 11" in dry.stdout  # days 30..40
    assert "change_log: kept forever" in dry.stdout
    assert sql(db_url, "SELECT count(*) FROM inbox WHERE plaintext IS NULL") == 0
    done = run("purge", env=env)
    assert done.returncode == 0, done.stderr
    assert "inbox payloads stripped (older than 7d): 34" in done.stdout
    assert "inbox rows deleted (older than 30d): 11" in done.stdout
    assert sql(db_url, "SELECT count(*) FROM inbox") == 29
    assert sql(db_url, "SELECT count(*) FROM inbox WHERE plaintext IS NULL") == 23


def test_forget_erases_a_departed_member_and_refuses_an_active_one(db_url: str) -> None:
    corp = sql(
        db_url,
        "INSERT INTO corps (name, platform, type, corp_id) VALUES ('HQ', 'wecom', 'corps.QywxInnerType', 'ww')"
        " RETURNING id",
    )
    for user_id, status in (("gone", "offline"), ("here", "active")):
        sql(
            db_url,
            "INSERT INTO members (corp, user_id, name, mobile, status) VALUES ($1, $2, 'Name', '138', $3)",
            corp,
            user_id,
            status,
        )
    sql(
        db_url,
        "INSERT INTO inbox (stream, platform, route, corp, dedupe_key, query, body, plaintext, status)"
        " VALUES ('HQ', 'wecom', 'wecom', $1, 'k', '{}', 'raw', '<xml><UserID>gone</UserID></xml>', 'done')",
        corp,
    )
    env = corpsync_env(CORPSYNC_DATABASE_URL=db_url)
    done = run("forget", "HQ", "gone", env=env)
    assert done.returncode == 0, done.stderr
    assert "personal fields erased, 1 event messages erased" in done.stdout
    assert sql(db_url, "SELECT name FROM members WHERE user_id = 'gone'") is None
    assert sql(db_url, "SELECT plaintext FROM inbox") is None

    active = run("forget", "HQ", "here", env=env)
    assert active.returncode == 1 and active.stderr.count("\n") == 1 and "is active" in active.stderr
    assert sql(db_url, "SELECT name FROM members WHERE user_id = 'here'") == "Name"
    unknown = run("forget", "HQ", "nobody", env=env)
    assert unknown.returncode == 2 and "has no member 'nobody'" in unknown.stderr
    no_corp = run("forget", "Nope", "gone", env=env)
    assert no_corp.returncode == 2 and "no corp named 'Nope'" in no_corp.stderr
