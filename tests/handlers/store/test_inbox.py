"""The worker's reads of the inbox: which streams have work, and when."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson

from handlers.store import inbox
from handlers.store.queries import q
from tests.support.eventkit import push


def _relations(plan: Any) -> Iterator[str]:
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            yield plan["Relation Name"]
        for value in plan.values():
            yield from _relations(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from _relations(value)


async def test_due_streams_are_the_heads_of_streams_with_pending_rows(pool: asyncpg.Pool) -> None:
    for i in range(40):  # registered streams whose rows are all applied
        await push(pool, f"<xml>{i}</xml>", stream=f"idle-{i:02}")
    await pool.execute("UPDATE inbox SET status = 'done'")
    soon = await push(pool, "<xml>a1</xml>", stream="a")
    await push(pool, "<xml>a2</xml>", stream="a")
    later = await push(pool, "<xml>b1</xml>", stream="b")
    await pool.execute("UPDATE inbox SET next_attempt_at = now() + interval '1 minute' WHERE id = $1", later)
    await pool.execute("UPDATE inbox SET next_attempt_at = now() - interval '1 minute' WHERE id = $1", soon)
    await push(pool, "<xml>c1</xml>", stream="unregistered")  # a foreign intake's row, its stream never registered
    await pool.execute("DELETE FROM inbox_streams WHERE stream = 'unregistered'")

    rows = await inbox.due_streams(pool, 10)

    assert [(r["stream"], r["due"]) for r in rows] == [("a", True), ("unregistered", True), ("b", False)]
    assert 55 < rows[2]["wait_seconds"] <= 60
    assert [r["stream"] for r in await inbox.due_streams(pool, 2)] == ["a", "unregistered"]


async def test_due_streams_never_visit_idle_streams(pool: asyncpg.Pool) -> None:
    # A suite provider has a stream per tenant, nearly all idle: the poll, run on every commit, must cost by the
    # streams with work, not by every stream there is.
    await push(pool, "<xml>1</xml>", stream="busy")
    explained = await pool.fetchval(
        "EXPLAIN (FORMAT JSON) " + q("worker_due_streams").rstrip().rstrip(";").replace("$1", "10")
    )
    plan = orjson.loads(explained) if isinstance(explained, str) else explained
    assert set(_relations(plan)) == {"inbox"}
