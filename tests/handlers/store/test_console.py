"""The console's store: search takes the operator's text literally, actions touch only rows awaiting them, and a
discarded quarantined run is never marked confirmed afterwards."""

from __future__ import annotations

import asyncpg

from handlers.store import console, sync_runs
from tests.support.eventkit import make_corp, push, wecom_xml


async def _member(pool: asyncpg.Pool, corp: int, user_id: str, name: str) -> None:
    await pool.execute("INSERT INTO members (corp, user_id, name) VALUES ($1, $2, $3)", corp, user_id, name)


async def test_search_takes_wildcards_literally_and_pages_by_user_id(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    for i in range(5):
        await _member(pool, corp, f"u{i}", f"张{i}")
    await _member(pool, corp, "pct", "100%_done")
    assert [r["user_id"] for r in await console.search_members(pool, corp, "%", None, 10)] == ["pct"]
    assert [r["user_id"] for r in await console.search_members(pool, corp, "_", None, 10)] == ["pct"]
    first = await console.search_members(pool, corp, "张", None, 3)
    assert [r["user_id"] for r in first] == ["u0", "u1", "u2"]
    rest = await console.search_members(pool, corp, "张", first[-1]["user_id"], 3)
    assert [r["user_id"] for r in rest] == ["u3", "u4"]


async def test_retry_and_discard_touch_dead_letters_only(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    dead = await push(pool, wecom_xml("create_user", UserID="a"), corp=corp)
    pending = await push(pool, wecom_xml("create_user", UserID="b"), corp=corp)
    assert dead is not None and pending is not None
    await pool.execute("UPDATE inbox SET status = 'dead', attempts = 8, applied_at = now() WHERE id = $1", dead)
    assert [r["id"] for r in await console.dead_letters(pool, None, 10)] == [dead]
    assert await console.retry_dead(pool, pending) is None and not await console.discard_dead(pool, pending)
    assert await console.retry_dead(pool, dead) == "HQ"
    row = await pool.fetchrow("SELECT status, attempts, applied_at FROM inbox WHERE id = $1", dead)
    assert (row["status"], row["attempts"], row["applied_at"]) == ("pending", 0, None)
    assert await console.retry_dead(pool, dead) is None  # once
    await pool.execute("UPDATE inbox SET status = 'dead' WHERE id = $1", dead)
    assert await console.discard_dead(pool, dead)
    assert await pool.fetchval("SELECT status FROM inbox WHERE id = $1", dead) == "ignored"
    assert await console.dead_count(pool) == 0


async def test_a_discarded_run_stays_discarded_when_a_later_run_confirms_the_others(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    async with pool.acquire() as conn:
        runs = []
        for _ in range(2):
            run = await sync_runs.start_run(conn, corp, "manual")
            await conn.execute(
                "UPDATE sync_runs SET status = 'quarantined', finished_at = now(),"
                ' held = \'{"reason": "threshold", "members": ["a", "b"], "departments": []}\' WHERE id = $1',
                run,
            )
            runs.append(run)
        assert await console.discard_run(conn, corp, runs[0])
        assert not await console.discard_run(conn, corp, runs[0])  # once
        later = await sync_runs.start_run(conn, corp, "manual")
        await sync_runs.confirm_quarantined(conn, corp, later)
        rows = {r["id"]: r for r in await conn.fetch("SELECT id, confirmed_at, discarded_at FROM sync_runs")}
    assert rows[runs[0]]["confirmed_at"] is None and rows[runs[0]]["discarded_at"] is not None
    assert rows[runs[1]]["confirmed_at"] is not None
    assert not await console.discard_run(pool, corp, runs[1])  # confirmed: nothing to discard
    held = await console.held_members(pool, corp, runs[1], 1, 10)
    assert [(r["position"], r["user_id"]) for r in held] == [(2, "b")]


async def test_a_departments_children_come_a_page_at_a_time_with_their_member_counts(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await pool.execute("INSERT INTO departments (corp, dept_id, parent_id) VALUES ($1, '1', NULL)", corp)
    await pool.execute(
        'INSERT INTO departments (corp, dept_id, parent_id, "order")'
        " SELECT $1, g::text, '1', g FROM generate_series(2, 8) g",
        corp,
    )
    await _member(pool, corp, "m", "成员")
    await pool.execute(
        "INSERT INTO member_departments (corp, member, dept_id) SELECT $1, id, '3' FROM members WHERE corp = $1", corp
    )
    first = await console.dept_children(pool, corp, "1", 3)
    assert [(r["dept_id"], r["members"]) for r in first] == [("2", 0), ("3", 1), ("4", 0)]
    assert [r["dept_id"] for r in await console.dept_children(pool, corp, "1", 3, 6)] == ["8"]
    assert [r["dept_id"] for r in await console.dept_path(pool, corp, "3")] == ["1", "3"]
