"""The retention purge and forget against real PostgreSQL: what is stripped, deleted and kept, batch by batch."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import asyncpg

from handlers.store import locks, retention
from handlers.worker.purge import Purger, Retention

DAY = timedelta(days=1)
OFF = Retention(payloads=None, inbox=None, change_log=None, sync_runs=None, pause=0.0)


async def corp_row(conn: asyncpg.Connection, name: str = "HQ") -> int:
    row: int = await conn.fetchval(
        "INSERT INTO corps (name, platform, type, corp_id) VALUES ($1, 'wecom', 'corps.QywxInnerType', $1)"
        " RETURNING id",
        name,
    )
    return row


async def inbox_row(
    conn: asyncpg.Connection, corp: int, *, age: timedelta, status: str = "done", plaintext: str = "<xml/>"
) -> int:
    row: int = await conn.fetchval(
        "INSERT INTO inbox (stream, platform, route, corp, dedupe_key, query, body, plaintext, status, received_at)"
        " VALUES ('HQ', 'wecom', 'wecom', $1, gen_random_uuid()::text, '{}', 'raw body', $2, $3, now() - $4::interval)"
        " RETURNING id",
        corp,
        plaintext,
        status,
        age,
    )
    return row


async def payloads(conn: asyncpg.Connection) -> dict[int, str | None]:
    rows = await conn.fetch("SELECT id, plaintext FROM inbox ORDER BY id")
    return {r["id"]: r["plaintext"] for r in rows}


async def test_applied_rows_past_the_period_lose_body_and_plaintext_others_keep_them(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        done = await inbox_row(conn, corp, age=8 * DAY)
        ignored = await inbox_row(conn, corp, age=8 * DAY, status="ignored")
        pending = await inbox_row(conn, corp, age=8 * DAY, status="pending")
        dead = await inbox_row(conn, corp, age=8 * DAY, status="dead")
        young = await inbox_row(conn, corp, age=DAY)
    report = await Purger(pool, Retention(payloads=7 * DAY, inbox=None, change_log=None, sync_runs=None)).purge()
    assert report.counts == {"inbox_payloads": 2}
    async with pool.acquire() as conn:
        kept = await payloads(conn)
        bodies = dict(await conn.fetch("SELECT id, body FROM inbox"))
    assert kept[done] is None and kept[ignored] is None and bodies[done] is None
    assert kept[pending] == kept[dead] == kept[young] == "<xml/>"
    assert bodies[young] == "raw body"


async def test_the_strip_mark_stops_before_the_first_young_row_and_later_passes_go_on_from_it(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        old = await inbox_row(conn, corp, age=8 * DAY)
        young = await inbox_row(conn, corp, age=DAY)
        assert (await retention.strip_inbox_payloads(conn, await retention.database_clock(conn) - 7 * DAY, 10)).purged
        assert await retention.mark(conn, retention.STRIP_MARK) == old
        # the young row ages past the period: the next pass starts at the mark and takes it
        await conn.execute("UPDATE inbox SET received_at = received_at - interval '7 days' WHERE id = $1", young)
        batch = await retention.strip_inbox_payloads(conn, await retention.database_clock(conn) - 7 * DAY, 10)
        assert batch.purged == 1 and await retention.mark(conn, retention.STRIP_MARK) == young


async def test_a_row_still_pending_holds_the_marks_until_it_settles_then_is_purged(pool: asyncpg.Pool) -> None:
    """A short retention (minutes) meets rows still waiting to be applied: the passes stop before the first one, so
    once applied it loses its payload and then its row like every other (passing it would keep both forever). A row
    pending for more than a day is stuck and holds nothing back."""
    minute = timedelta(minutes=1)
    periods = Retention(payloads=15 * minute, inbox=30 * minute, change_log=None, sync_runs=None)
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        stuck = await inbox_row(conn, corp, age=2 * DAY, status="pending")
        before = await inbox_row(conn, corp, age=40 * minute)
        waiting = await inbox_row(conn, corp, age=40 * minute, status="pending")
        await inbox_row(conn, corp, age=40 * minute)  # applied: purged with `before`
    assert (await Purger(pool, periods).purge()).counts == {"inbox_payloads": 2, "inbox": 2}
    async with pool.acquire() as conn:
        assert await payloads(conn) == {stuck: "<xml/>", waiting: "<xml/>"}
        assert await retention.mark(conn, retention.STRIP_MARK) == await retention.mark(conn, retention.DELETE_MARK)
        assert before <= await retention.mark(conn, retention.STRIP_MARK) < waiting
        await conn.execute("UPDATE inbox SET status = 'done' WHERE id = $1", waiting)
    assert (await Purger(pool, periods).purge()).counts == {"inbox_payloads": 1, "inbox": 1}
    async with pool.acquire() as conn:
        assert await payloads(conn) == {stuck: "<xml/>"}


async def test_many_rows_go_in_small_batches_until_none_is_due(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        for _ in range(35):
            await inbox_row(conn, corp, age=40 * DAY)
        await inbox_row(conn, corp, age=DAY)
    seen: list[int] = []
    purger = Purger(
        pool,
        Retention(payloads=7 * DAY, inbox=30 * DAY, change_log=None, sync_runs=None, batch_size=10, pause=0.0),
        on_purged=lambda kind, n: seen.append(n),
    )
    report = await purger.purge()
    assert report.counts == {"inbox_payloads": 35, "inbox": 35}
    assert max(seen) <= 10
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 1


async def test_settled_rows_past_the_inbox_period_are_deleted_a_pending_one_stays(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        await inbox_row(conn, corp, age=31 * DAY)
        await inbox_row(conn, corp, age=31 * DAY, status="dead")
        pending = await inbox_row(conn, corp, age=31 * DAY, status="pending")
        young = await inbox_row(conn, corp, age=29 * DAY)
    report = await Purger(pool, Retention(payloads=None, inbox=30 * DAY, change_log=None, sync_runs=None)).purge()
    assert report.counts == {"inbox": 2}
    async with pool.acquire() as conn:
        assert list(await payloads(conn)) == [pending, young]


async def test_change_log_rows_go_by_age_only(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        await conn.execute(
            "INSERT INTO change_log (corp, at, entity, entity_id, op, source)"
            " SELECT $1, now() - make_interval(days => d), 'member', 'u' || d, 'update', 'event'"
            " FROM generate_series(400, 360, -1) d",
            corp,
        )
    purger = Purger(pool, replace(OFF, change_log=365 * DAY, batch_size=4))
    report = await purger.purge()
    assert report.counts == {"change_log": 36}  # days 400..365: day 365 turned older than the cutoff meanwhile
    async with pool.acquire() as conn:
        left = await conn.fetchval("SELECT array_agg(entity_id ORDER BY id) FROM change_log")
    assert left == ["u364", "u363", "u362", "u361", "u360"]


async def test_old_sync_runs_go_but_each_corps_newest_and_newest_good_run_stay(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        hq, sales = await corp_row(conn), await corp_row(conn, "Sales")
        insert = (
            "INSERT INTO sync_runs (corp, trigger, status, started_at, finished_at)"
            " VALUES ($1, 'schedule', $2, now() - $3::interval,"
            " CASE WHEN $2 = 'running' THEN NULL ELSE now() - $3::interval END)"
            " RETURNING id"
        )
        await conn.fetchval(insert, hq, "succeeded", 200 * DAY)
        good = await conn.fetchval(insert, hq, "succeeded", 150 * DAY)
        last = await conn.fetchval(insert, hq, "failed", 120 * DAY)
        running = await conn.fetchval(insert, hq, "running", 100 * DAY)
        sales_last = await conn.fetchval(insert, sales, "quarantined", 300 * DAY)
        recent = await conn.fetchval(insert, sales, "failed", DAY)
    report = await Purger(pool, Retention(payloads=None, inbox=None, change_log=None, sync_runs=90 * DAY)).purge()
    assert report.counts == {"sync_runs": 1}
    async with pool.acquire() as conn:
        left = await conn.fetchval("SELECT array_agg(id ORDER BY id) FROM sync_runs")
    assert left == [good, last, running, sales_last, recent]


async def test_a_dry_run_counts_what_is_due_and_changes_nothing(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        for _ in range(3):
            await inbox_row(conn, corp, age=40 * DAY)
        await inbox_row(conn, corp, age=10 * DAY)
    purger = Purger(pool, Retention(payloads=7 * DAY, inbox=30 * DAY, change_log=None, sync_runs=None))
    due = await purger.purge(dry_run=True)
    assert due.counts == {"inbox_payloads": 4, "inbox": 3}
    async with pool.acquire() as conn:
        assert None not in (await payloads(conn)).values()
    assert (await purger.purge()).counts == due.counts


async def test_one_process_purges_at_a_time(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        await inbox_row(conn, corp, age=40 * DAY)
        assert await locks.try_lock_purge(conn)
        try:
            report = await Purger(pool).purge()
        finally:
            await locks.unlock_purge(conn)
    assert report.skipped and report.total == 0
    assert (await Purger(pool).purge()).counts["inbox"] == 1


async def test_the_background_purge_runs_every_interval_until_stopped(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        await inbox_row(conn, corp, age=10 * DAY)
    stop = asyncio.Event()
    purger = Purger(pool, Retention(interval=0.05, pause=0.0))
    task = asyncio.create_task(purger.run(stop))
    async with pool.acquire() as conn:
        await inbox_row(conn, corp, age=9 * DAY)  # written while it runs: a later pass takes it
        for _ in range(100):
            stripped = list((await payloads(conn)).values())
            if stripped == [None, None]:
                break
            await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert stripped == [None, None]


async def test_table_stats_name_sizes_and_the_oldest_rows_age(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        await inbox_row(conn, corp, age=3 * DAY)
        rows = {r["name"]: r for r in await retention.table_stats(conn)}
    assert rows["inbox"]["bytes"] > 0
    assert 3 * 86400 - 60 < rows["inbox"]["oldest_age"] < 3 * 86400 + 60
    assert rows["inbox_payload"]["oldest_age"] == rows["inbox"]["oldest_age"]
    assert rows["change_log"]["oldest_age"] is None


# -- forget -------------------------------------------------------------------------------------------------


async def member(conn: asyncpg.Connection, corp: int, user_id: str, status: str) -> int:
    row: int = await conn.fetchval(
        "INSERT INTO members (corp, user_id, name, mobile, email, union_id, extattr, status)"
        " VALUES ($1, $2, 'Zhang San', '13800000000', 'z@example.com', 'union-1', '{\"a\": 1}', $3) RETURNING id",
        corp,
        user_id,
        status,
    )
    await conn.execute("INSERT INTO signatures (corp, member, signature) VALUES ($1, $2, 'hi')", corp, row)
    return row


async def test_forget_erases_an_offline_members_personal_fields_and_signature_and_says_so(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        row = await member(conn, corp, "zhangsan", "offline")
        assert await retention.forget_member(conn, corp, "zhangsan") == "offline"
        erased = await conn.fetchrow("SELECT * FROM members WHERE id = $1", row)
        assert erased["user_id"] == "zhangsan" and erased["status"] == "offline"
        assert erased["name"] is erased["mobile"] is erased["email"] is erased["union_id"] is erased["extattr"] is None
        assert await conn.fetchval("SELECT count(*) FROM signatures") == 0
        logged = await conn.fetchrow("SELECT entity_id, op, source FROM change_log")
        assert dict(logged) == {"entity_id": "zhangsan", "op": "erase", "source": "api"}


async def test_forget_erases_the_before_and_after_values_the_change_feed_kept(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        await member(conn, corp, "zhangsan", "offline")
        await member(conn, corp, "lisi", "offline")
        for user_id in ("zhangsan", "lisi"):
            await conn.execute(
                "INSERT INTO change_log (corp, entity, entity_id, op, fields, source, changes)"
                " VALUES ($1, 'member', $2, 'update', ARRAY['mobile'], 'event', $3)",
                corp,
                user_id,
                {"mobile": {"before": "13800000000", "after": "13900000000"}},
            )
        await retention.forget_member(conn, corp, "zhangsan")
        kept = await conn.fetch("SELECT entity_id, fields, changes FROM change_log WHERE op = 'update' ORDER BY id")
        assert [(r["entity_id"], r["fields"], r["changes"]) for r in kept] == [
            ("zhangsan", ["mobile"], None),  # which fields changed stays; their values go
            ("lisi", ["mobile"], {"mobile": {"before": "13800000000", "after": "13900000000"}}),
        ]


async def test_forget_leaves_an_active_member_and_knows_no_stranger(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp = await corp_row(conn)
        await member(conn, corp, "lisi", "active")
        assert await retention.forget_member(conn, corp, "lisi") == "active"
        assert await retention.forget_member(conn, corp, "nobody") is None
        assert await conn.fetchval("SELECT name FROM members WHERE user_id = 'lisi'") == "Zhang San"
        assert await conn.fetchval("SELECT count(*) FROM change_log") == 0


async def test_forget_erases_the_settled_messages_that_name_the_member_and_no_others(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        corp, other = await corp_row(conn), await corp_row(conn, "Other")
        named = [
            await inbox_row(conn, corp, age=DAY, plaintext="<xml><UserID><![CDATA[u1]]></UserID></xml>"),
            await inbox_row(conn, corp, age=DAY, plaintext='{"EventType": "user_leave_org", "UserId": ["u2", "u1"]}'),
            await inbox_row(conn, corp, age=DAY, status="dead", plaintext="<xml><UserID>u1</UserID></xml>"),
        ]
        kept = [
            await inbox_row(conn, corp, age=DAY, plaintext="<xml><UserID>u10</UserID></xml>"),
            await inbox_row(conn, corp, age=DAY, plaintext='{"UserId": ["xu1"]}'),
            await inbox_row(conn, corp, age=DAY, status="pending", plaintext="<xml><UserID>u1</UserID></xml>"),
            await inbox_row(conn, other, age=DAY, plaintext="<xml><UserID>u1</UserID></xml>"),
        ]
        after, erased = 0, 0
        while True:
            after, count = await retention.forget_events(conn, corp, "u1", after, 2)
            erased += count
            if not after:
                break
        left = await payloads(conn)
        assert erased == 3
        assert [left[i] for i in named] == [None, None, None]
        assert None not in [left[i] for i in kept]
        assert await conn.fetchval("SELECT last_error FROM inbox WHERE id = $1", named[2]) == (
            "payload erased by corpsync forget"
        )
        assert await retention.pending_events_naming(conn, corp, "u1") == 1


def test_the_member_pattern_escapes_every_character_but_letters_and_digits() -> None:
    assert retention.member_pattern("a.b*c") == r"(^|[^A-Za-z0-9_.@-])a\.b\*c($|[^A-Za-z0-9_.@-])"
