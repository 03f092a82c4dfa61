"""Full sync against real PostgreSQL: diff, bulk apply, deletion guard, honest run records, coalescing."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import asyncpg
import orjson
import pytest

from handlers.config import CallbackKeys, Secret, SyncSettings, WecomInnerCorp
from handlers.errors import UpstreamError
from handlers.model import Admin, Department, Member, Membership, Role, Snapshot, Tag
from handlers.store import merge
from handlers.store import pool as db
from handlers.store.corps import ensure_corp, request_sync
from handlers.store.queries import q, queries
from handlers.sync.fullsync import RunStatus, SyncResult, format_summary, run_full_sync
from tests.support.directory import fingerprint


def corp_config(name: str = "HQ", threshold: float = 0.2) -> WecomInnerCorp:
    keys = CallbackKeys(Secret("token"), Secret("k" * 43), frozenset({"ww1"}))
    return WecomInnerCorp(
        name=name,
        title=name,
        corp_id="ww1",
        agent_id="1000002",
        secret=Secret("s"),
        contact_secret=None,
        callback=keys,
        sync=SyncSettings(delete_threshold=threshold),
    )


class Source:
    """Stands in for a platform client: hands out prepared snapshots (or raises), optionally waits first."""

    def __init__(self, *results: Snapshot | Exception, gate: asyncio.Event | None = None) -> None:
        self.results = list(results)
        self.gate = gate
        self.entered = asyncio.Event()
        self.calls = 0

    async def fetch_snapshot(self, progress: Any = None) -> Snapshot:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if isinstance(result, Exception):
            raise result
        return result


def member(user_id: str, *dept_ids: str, **fields: Any) -> Member:
    memberships = tuple(Membership(d, is_leader=False, order=i) for i, d in enumerate(dept_ids))
    main = dept_ids[0] if dept_ids else None
    return Member(
        user_id, name=fields.pop("name", f"name-{user_id}"), departments=memberships, main_dept_id=main, **fields
    )


def org(members: int = 10, **extra: Any) -> Snapshot:
    """Root 1 with departments 2 and 3 (3 under 2); members spread over 2 and 3."""
    depts = (Department("1", None, "HQ"), Department("2", "1", "R&D", order=1), Department("3", "2", "QA", order=2))
    people = tuple(member(f"u{i}", "2" if i % 2 else "3", mobile=f"138{i:08d}") for i in range(members))
    return Snapshot("1", depts, people, api_calls=7, **extra)


async def sync(pool: asyncpg.Pool, snapshot: Snapshot | Exception, **kwargs: Any) -> SyncResult:
    corp = kwargs.pop("corp", corp_config())
    async with pool.acquire() as conn:
        row = await ensure_corp(conn, corp)
    return await run_full_sync(pool, row, corp, Source(snapshot), trigger=kwargs.pop("trigger", "manual"), **kwargs)


async def members_by_id(pool: asyncpg.Pool) -> dict[str, asyncpg.Record]:
    return {r["user_id"]: r for r in await pool.fetch("SELECT * FROM members")}


async def test_first_sync_creates_the_directory_and_records_a_succeeded_run(pool: asyncpg.Pool) -> None:
    result = await sync(pool, org(10))
    assert result.status is RunStatus.SUCCEEDED
    assert result.counts["departments"]["created"] == 3
    assert result.counts["members"]["created"] == 10
    run = await pool.fetchrow("SELECT * FROM sync_runs WHERE id = $1", result.run_id)
    assert run["status"] == "succeeded"
    assert run["trigger"] == "manual"
    assert run["api_calls"] == 7
    assert run["finished_at"] is not None
    assert run["error"] is None
    assert run["held"] is None
    assert run["counts"]["members"]["created"] == 10
    assert await pool.fetchval("SELECT root_dept_id FROM corps") == "1"
    assert await pool.fetchval("SELECT count(*) FROM member_departments") == 10
    logged = await pool.fetch(
        "SELECT entity, op, count(*) AS n, min(source) AS source, min(sync_run_id) AS run FROM change_log GROUP BY 1, 2"
    )
    assert {(r["entity"], r["op"], r["n"]) for r in logged} == {("department", "create", 3), ("member", "create", 10)}
    assert {(r["source"], r["run"]) for r in logged} == {("full_sync", result.run_id)}


async def test_resync_of_an_unchanged_org_writes_nothing(pool: asyncpg.Pool) -> None:
    tags = (Tag("t1", "Tag", ("u1", "u2"), ("2",)),)
    snapshot = org(
        20, tags=tags, roles=(Role("r1", "Boss", "G"),), role_members=(("r1", "u3"),), admins=(Admin("u0", 1),)
    )
    await sync(pool, snapshot)
    before = await fingerprint(pool)
    again = await sync(pool, snapshot)
    assert again.status is RunStatus.SUCCEEDED
    assert again.changes == 0
    assert all(n == 0 for group in again.counts.values() for n in group.values())
    assert await fingerprint(pool) == before
    assert "no changes" in format_summary(again)


async def test_moves_renames_and_removals_are_applied_and_logged(pool: asyncpg.Pool) -> None:
    await sync(pool, org(10))
    base = org(10)
    depts = (base.departments[0], replace(base.departments[1], name="Research"), Department("4", "1", "Ops"))
    people = [m for m in base.members if m.user_id != "u9"]
    people[0] = member("u0", "4", mobile=people[0].mobile)  # moved from 3 to 4
    result = await sync(pool, replace(base, departments=depts, members=tuple(people)))
    assert result.status is RunStatus.SUCCEEDED
    assert result.counts["departments"] == {"created": 1, "updated": 1, "deleted": 1, "held": 0}
    assert result.counts["members"]["updated"] == 1
    assert result.counts["members"]["offlined"] == 1
    assert await pool.fetchval("SELECT name FROM departments WHERE dept_id = '2'") == "Research"
    assert await pool.fetchval("SELECT count(*) FROM departments WHERE dept_id = '3'") == 0
    u0 = await pool.fetchrow(
        "SELECT main_dept_id, array_agg(md.dept_id) AS depts FROM members m "
        "JOIN member_departments md ON md.member = m.id WHERE user_id = 'u0' GROUP BY 1"
    )
    assert u0["main_dept_id"] == "4"
    assert u0["depts"] == ["4"]
    u9 = (await members_by_id(pool))["u9"]
    assert (u9["status"], u9["offline_reason"]) == ("offline", "platform")
    assert u9["offline_at"] is not None
    fields = await pool.fetchval("SELECT fields FROM change_log WHERE entity = 'member' AND op = 'update'")
    assert set(fields) == {"main_dept_id", "departments", "dept_orders"}  # orders {"3": 0} became {"4": 0}
    assert await pool.fetchval("SELECT fields FROM change_log WHERE entity = 'department' AND op = 'update'") == [
        "name"
    ]


async def test_member_in_several_departments_keeps_every_membership(pool: asyncpg.Pool) -> None:
    snapshot = replace(org(2), members=(member("multi", "2", "3", "1"), member("solo", "3")))
    await sync(pool, snapshot)
    rows = await pool.fetch(
        'SELECT dept_id, "order" FROM member_departments md JOIN members m ON m.id = md.member '
        "WHERE m.user_id = 'multi' ORDER BY dept_id"
    )
    assert [(r["dept_id"], r["order"]) for r in rows] == [("1", 2), ("2", 0), ("3", 1)]
    fewer = replace(snapshot, members=(member("multi", "2", "1"), member("solo", "3")))
    before = await pool.fetchval("SELECT xmin::text FROM member_departments WHERE dept_id = '2'")
    result = await sync(pool, fewer)
    assert result.counts["members"]["updated"] == 1
    rows = await pool.fetch(
        "SELECT dept_id FROM member_departments md JOIN members m ON m.id = md.member "
        "WHERE m.user_id = 'multi' ORDER BY dept_id"
    )
    assert [r["dept_id"] for r in rows] == ["1", "2"]
    assert await pool.fetchval("SELECT xmin::text FROM member_departments WHERE dept_id = '2'") == before


async def test_non_root_scope_stores_the_visible_top_as_root(pool: asyncpg.Pool) -> None:
    depts = (Department("50", "7", "Branch"), Department("51", "50", "Team"))
    snapshot = Snapshot("50", depts, (member("a", "51"), member("b", "50")))
    result = await sync(pool, snapshot)
    assert result.status is RunStatus.SUCCEEDED
    assert await pool.fetchval("SELECT root_dept_id FROM corps") == "50"
    assert await pool.fetchval("SELECT parent_id FROM departments WHERE dept_id = '50'") == "7"
    assert await pool.fetchval("SELECT count(*) FROM departments WHERE dept_id = '1'") == 0


async def test_failed_department_fetch_quarantines_removals(pool: asyncpg.Pool) -> None:
    await sync(pool, org(10))
    base = org(10)
    people = (*(m for m in base.members if m.user_id != "u2"), member("new", "2"))
    renamed = (base.departments[0], replace(base.departments[1], name="Renamed"))  # 3 is gone too
    snapshot = replace(base, departments=renamed, members=people, failed_departments=("2",))
    result = await sync(pool, snapshot)
    assert result.status is RunStatus.QUARANTINED
    assert result.counts["members"]["created"] == 1
    assert result.counts["departments"]["updated"] == 1
    assert result.counts["members"]["held"] == 1
    assert result.counts["departments"]["held"] == 1
    assert (await members_by_id(pool))["u2"]["status"] == "active"
    assert await pool.fetchval("SELECT count(*) FROM departments WHERE dept_id = '3'") == 1
    run = await pool.fetchrow("SELECT status, held, error FROM sync_runs WHERE id = $1", result.run_id)
    assert run["status"] == "quarantined"
    assert run["held"] == {
        "reason": "failed_departments",
        "departments": ["3"],
        "members": ["u2"],
        "failed_departments": ["2"],
    }
    assert "department fetch(es) failed" in run["error"]


async def test_a_failed_department_alone_never_makes_a_succeeded_run(pool: asyncpg.Pool) -> None:
    result = await sync(pool, org(4, failed_departments=("3",)))
    assert result.status is RunStatus.QUARANTINED
    assert result.counts["members"]["created"] == 4  # a first sync into an empty corp still applies everything


async def test_offlining_more_than_threshold_is_held_until_allow_deletes(pool: asyncpg.Pool) -> None:
    await sync(pool, org(10))
    shrunk = replace(org(10), members=org(10).members[:7])  # 3 of 10 leave: 30% > 20%
    held = await sync(pool, shrunk)
    assert held.status is RunStatus.QUARANTINED
    assert held.held is not None
    assert held.held.members == ("u7", "u8", "u9")
    assert held.held.reason == "threshold"
    assert await pool.fetchval("SELECT count(*) FROM members WHERE status = 'active'") == 10
    assert "--allow-deletes" in format_summary(held)

    confirmed = await sync(pool, shrunk, allow_deletes=True)
    assert confirmed.status is RunStatus.SUCCEEDED
    assert confirmed.counts["members"]["offlined"] == 3
    assert await pool.fetchval("SELECT count(*) FROM members WHERE status = 'active'") == 7
    assert await pool.fetchval("SELECT confirmed_at IS NOT NULL FROM sync_runs WHERE id = $1", held.run_id)


async def test_offlining_up_to_the_threshold_is_applied(pool: asyncpg.Pool) -> None:
    await sync(pool, org(10))
    result = await sync(pool, replace(org(10), members=org(10).members[:8]))  # exactly 20%
    assert result.status is RunStatus.SUCCEEDED
    assert result.counts["members"]["offlined"] == 2


async def test_allow_deletes_keeps_members_of_failed_departments_held(pool: asyncpg.Pool) -> None:
    await sync(pool, org(10))
    base = org(10)
    people = tuple(m for m in base.members if m.user_id not in {"u0", "u1"})  # u0 in 3, u1 in 2
    result = await sync(pool, replace(base, members=people, failed_departments=("3",)), allow_deletes=True)
    assert result.status is RunStatus.QUARANTINED
    assert result.counts["members"]["offlined"] == 1
    assert result.held is not None
    assert result.held.members == ("u0",)
    state = {u: r["status"] for u, r in (await members_by_id(pool)).items()}
    assert state["u0"] == "active"
    assert state["u1"] == "offline"


async def test_leaver_who_returns_keeps_the_same_local_id(pool: asyncpg.Pool) -> None:
    await sync(pool, org(10))
    first_id = (await members_by_id(pool))["u4"]["id"]
    await sync(pool, replace(org(10), members=tuple(m for m in org(10).members if m.user_id != "u4")))
    assert (await members_by_id(pool))["u4"]["status"] == "offline"
    back = await sync(pool, org(10))
    assert back.counts["members"]["reactivated"] == 1
    assert back.counts["members"]["created"] == 0
    row = (await members_by_id(pool))["u4"]
    assert (row["id"], row["status"], row["offline_reason"], row["offline_at"]) == (first_id, "active", None, None)
    assert await pool.fetchval("SELECT count(*) FROM change_log WHERE op = 'reactivate' AND entity_id = 'u4'") == 1


async def test_operator_offlined_member_stays_offline_but_is_updated(pool: asyncpg.Pool) -> None:
    await sync(pool, org(10))
    await pool.execute("UPDATE members SET status = 'offline', offline_reason = 'operator' WHERE user_id = 'u5'")
    people = tuple(replace(m, position="Chief") if m.user_id == "u5" else m for m in org(10).members)
    result = await sync(pool, replace(org(10), members=people))
    assert result.counts["members"]["reactivated"] == 0
    assert result.counts["members"]["updated"] == 1
    row = (await members_by_id(pool))["u5"]
    assert (row["status"], row["offline_reason"], row["position"]) == ("offline", "operator", "Chief")


async def test_a_column_withheld_for_everyone_keeps_stored_values_and_unfetched_collections_stay(
    pool: asyncpg.Pool,
) -> None:
    await sync(pool, org(4, tags=(Tag("t1", "Tag", ("u1",), None),), admins=(Admin("u0", 1),)))
    people = tuple(replace(m, mobile=None, departments=None) for m in org(4).members)
    before = await fingerprint(pool)
    result = await sync(pool, replace(org(4), members=people))  # tags and admins not fetched this time
    assert result.changes == 0
    assert await fingerprint(pool) == before
    assert await pool.fetchval("SELECT count(*) FROM members WHERE mobile IS NOT NULL") == 4


async def test_none_in_a_fetched_column_clears_the_stored_value(pool: asyncpg.Pool) -> None:
    await sync(pool, org(4))
    people = tuple(replace(m, mobile=None) if m.user_id == "u1" else m for m in org(4).members)
    result = await sync(pool, replace(org(4), members=people))
    assert result.counts["members"]["updated"] == 1
    assert await pool.fetchval("SELECT mobile FROM members WHERE user_id = 'u1'") is None
    assert await pool.fetchval("SELECT fields FROM change_log WHERE op = 'update'") == ["mobile"]


async def test_department_names_withheld_keep_the_stored_names(pool: asyncpg.Pool) -> None:
    await sync(pool, org(2))
    nameless = tuple(replace(d, name=None) for d in org(2).departments)
    result = await sync(pool, replace(org(2), departments=nameless))
    assert result.changes == 0
    assert await pool.fetchval("SELECT name FROM departments WHERE dept_id = '2'") == "R&D"


async def test_tags_roles_and_admins_follow_the_snapshot_and_local_ones_survive(pool: asyncpg.Pool) -> None:
    labels = {
        "tags": (Tag("t1", "One", ("u1", "u2"), ("2",)), Tag("t2", "Two", ("u3",), ())),
        "roles": (Role("r1", "Boss", "Jobs"), Role("r2", "Clerk", "Jobs")),
        "role_members": (("r1", "u1"), ("r2", "u2"), ("r2", "u3")),
        "admins": (Admin("u0", 1), Admin("u1", 2)),
    }
    await sync(pool, org(6, **labels))
    corp = await pool.fetchval("SELECT id FROM corps")
    u5 = (await members_by_id(pool))["u5"]["id"]
    await pool.execute("INSERT INTO roles (corp, role_id, name, source) VALUES ($1, 'mine', 'Mine', 'local')", corp)
    await pool.execute("INSERT INTO role_members (corp, role_id, member) VALUES ($1, 'mine', $2)", corp, u5)
    await pool.execute("INSERT INTO admins (corp, member, level, source) VALUES ($1, $2, 2, 'local')", corp, u5)

    changed = {
        "tags": (Tag("t1", "Uno", ("u1",), ("2", "3")),),
        "roles": (Role("r1", "Boss", "Jobs"), Role("r3", "New", None)),
        "role_members": (("r1", "u1"), ("r1", "u4"), ("r3", "u2")),
        "admins": (Admin("u0", 2),),
    }
    result = await sync(pool, org(6, **changed))
    assert result.counts["tags"] == {
        "created": 0,
        "updated": 1,
        "deleted": 1,
        "members_added": 0,
        "members_removed": 1,
        "departments_added": 1,
        "departments_removed": 0,
    }
    assert result.counts["roles"] == {
        "created": 1,
        "updated": 0,
        "deleted": 1,
        "members_added": 2,
        "members_removed": 0,
    }
    assert result.counts["admins"] == {"created": 0, "updated": 1, "deleted": 1}
    assert await pool.fetchval("SELECT count(*) FROM tag_members WHERE tag_id = 't2'") == 0
    roles = await pool.fetch("SELECT role_id, source FROM roles ORDER BY role_id")
    assert [(r["role_id"], r["source"]) for r in roles] == [("mine", "local"), ("r1", "platform"), ("r3", "platform")]
    assert await pool.fetchval("SELECT count(*) FROM role_members WHERE role_id = 'mine'") == 1
    admins = await pool.fetch(
        "SELECT m.user_id, a.level, a.source FROM admins a JOIN members m ON m.id = a.member ORDER BY 1"
    )
    assert [tuple(r) for r in admins] == [("u0", 2, "platform"), ("u5", 2, "local")]


async def test_failed_fetch_records_a_failed_run_and_applies_nothing(pool: asyncpg.Pool) -> None:
    result = await sync(pool, UpstreamError("department/list", 45009, "api freq out of limit"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "45009" in result.error
    run = await pool.fetchrow("SELECT status, error, finished_at FROM sync_runs WHERE id = $1", result.run_id)
    assert run["status"] == "failed"
    assert "api freq out of limit" in run["error"]
    assert run["finished_at"]
    assert await pool.fetchval("SELECT count(*) FROM members") == 0
    assert "failed" in format_summary(result)


async def test_bad_snapshot_rolls_back_and_records_a_failed_run(pool: asyncpg.Pool) -> None:
    await sync(pool, org(3))
    before = await fingerprint(pool)
    broken = replace(org(3), members=(member("x", "2", gender=70000),))  # out of smallint range
    result = await sync(pool, broken)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.startswith("apply failed")
    assert await fingerprint(pool) == before


async def test_concurrent_sync_requests_are_coalesced(pool: asyncpg.Pool) -> None:
    corp = corp_config()
    async with pool.acquire() as conn:
        row = await ensure_corp(conn, corp)
    gate = asyncio.Event()
    slow = Source(org(5), gate=gate)
    first = asyncio.create_task(run_full_sync(pool, row, corp, slow, trigger="schedule"))
    await slow.entered.wait()
    second = await run_full_sync(pool, row, corp, Source(org(5)), trigger="api")
    gate.set()
    done = await first
    assert second.status is RunStatus.ALREADY_RUNNING
    assert second.run_id == done.run_id
    assert "under way" in format_summary(second)
    assert done.status is RunStatus.SUCCEEDED
    assert await pool.fetchval("SELECT count(*) FROM sync_runs") == 1


async def test_a_run_clears_the_sync_request_and_fails_runs_left_running(pool: asyncpg.Pool) -> None:
    corp = corp_config()
    async with pool.acquire() as conn:
        row = await ensure_corp(conn, corp)
        await request_sync(conn, row, "unknown event")
        stale = await conn.fetchval("INSERT INTO sync_runs (corp, trigger) VALUES ($1, 'startup') RETURNING id", row)
    await run_full_sync(pool, row, corp, Source(org(2)), trigger="drift")
    assert await pool.fetchval("SELECT sync_requested_at FROM corps") is None
    assert await pool.fetchval("SELECT status FROM sync_runs WHERE id = $1", stale) == "failed"


@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.QUARANTINED, RunStatus.FAILED])
def test_summary_names_status_and_nonzero_counts(status: RunStatus) -> None:
    from handlers.sync.reconcile import empty_counts

    counts = empty_counts()
    counts["members"]["created"] = 5
    text = format_summary(SyncResult("HQ", "manual", status, 3, counts, api_calls=9, seconds=1.5))
    assert text.startswith(f"HQ: {status.value} in 1.5 s (run 3, trigger manual, 9 API calls)")
    assert "members      created 5" in text
    assert "departments" not in text


async def test_a_renamed_userid_keeps_the_local_identity(pool: asyncpg.Pool) -> None:
    people = tuple(replace(m, open_user_id=f"wo-{m.user_id}") for m in org(10).members)
    await sync(pool, replace(org(10), members=people))
    first_id = (await members_by_id(pool))["u3"]["id"]
    renamed = tuple(replace(m, user_id="u3-new") if m.user_id == "u3" else m for m in people)
    result = await sync(pool, replace(org(10), members=renamed))
    assert result.counts["members"]["renamed"] == 1
    assert result.counts["members"]["created"] == 0
    assert result.counts["members"]["offlined"] == 0
    rows = await members_by_id(pool)
    assert "u3" not in rows
    assert rows["u3-new"]["id"] == first_id
    assert await pool.fetchval("SELECT op FROM change_log WHERE entity_id = 'u3-new'") == "rename"


async def test_every_fullsync_query_prepares(pool: asyncpg.Pool) -> None:
    names = [n for n in queries() if n.startswith("fs_") and n != "fs_create_staging"]  # that one is a script
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(q("fs_create_staging"))
        for name in names:
            await conn.prepare(q(name))
    assert len(names) > 20


def _scans(plan: Any, relation: str) -> list[dict[str, Any]]:
    if isinstance(plan, list):
        return [n for p in plan for n in _scans(p, relation)]
    if not isinstance(plan, dict):
        return []
    found = [plan] if plan.get("Relation Name") == relation else []
    return found + [n for value in plan.values() for n in _scans(value, relation)]


async def test_the_diff_reads_a_stored_members_memberships_by_its_key(pool: asyncpg.Pool) -> None:
    # Aggregated for the whole corp and joined instead, the memberships of a young member_departments (no statistics:
    # the planner expects a handful of rows) were aggregated again for every staged member: a no-op resync of 999
    # members took 1.2 s in that one statement (bench/fullsync.py --members 999).
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(q("fs_create_staging"))
        sql = q("fs_diff_members").replace("$1", "1")
        plan = await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql)
    scans = _scans(plan if not isinstance(plan, str) else orjson.loads(plan), "member_departments")
    assert scans
    conditions = [scan.get("Index Cond") or scan.get("Recheck Cond") or "" for scan in scans]
    assert all("member = m.id" in c for c in conditions), conditions


async def test_staging_tables_are_made_once_per_connection_and_empty_after_each_run(db_url: str) -> None:
    one = await db.create_pool(db_url, min_size=1, max_size=1)
    try:
        made = []
        for members in (5, 7):
            assert (await sync(one, org(members))).status is RunStatus.SUCCEEDED
            made.append(await one.fetchval("SELECT to_regclass('pg_temp.fs_members')::oid"))
            assert await one.fetchval("SELECT count(*) FROM pg_temp.fs_members") == 0
        assert made[0] is not None
        assert made[0] == made[1]
        assert await one.fetchval("SELECT count(*) FROM members") == 7
    finally:
        await one.close()


async def test_staging_tables_are_emptied_by_the_run_and_truncated_only_now_and_then(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Truncating the staging tables at every commit (ON COMMIT DELETE ROWS) cost 4 ms of PostgreSQL's CPU a run: a
    # run deletes its rows instead, and the space its dead rows hold goes back every TRUNCATE_STAGING_EVERY runs.
    monkeypatch.setattr(merge, "TRUNCATE_STAGING_EVERY", 3)
    monkeypatch.setattr(merge, "_runs_since_truncate", {})
    one = await db.create_pool(db_url, min_size=1, max_size=1)
    try:
        pages = []
        for members in (5, 6, 7, 8):
            assert (await sync(one, org(members))).status is RunStatus.SUCCEEDED
            assert await one.fetchval("SELECT count(*) FROM pg_temp.fs_members") == 0
            pages.append(await one.fetchval("SELECT pg_relation_size('pg_temp.fs_members')"))
        assert pages[0] > 0 and pages[1] > 0  # emptied, not truncated
        assert pages[2] == 0  # the third run on this connection truncated them
        assert pages[3] > 0
        assert await one.fetchval("SELECT count(*) FROM members") == 8
    finally:
        await one.close()


async def test_a_created_members_changes_hold_every_value_it_has_and_nothing_else(pool: asyncpg.Pool) -> None:
    odd = 'Zoë "Q" \\ 张三\n\t'
    rich = member(
        "u1", "3", "2", name=odd, mobile="138", gender=2, hired_date=1_700_000_000_000, direct_leaders=("u2", "u9"),
        extattr={"爱好": 'x"y', "a": "1"}, platform_status=1, open_user_id="wo1", position="",
    )  # fmt: skip
    bare = Member("u3", name=None, departments=None)  # no value at all: no changes
    nowhere = member("u4", direct_leaders=())  # in no department: no departments field
    depts = (Department("1", None, "HQ"), Department("2", "1", "R&D"), Department("3", "1", "QA"))
    assert (await sync(pool, Snapshot("1", depts, (rich, bare, nowhere), api_calls=1))).status is RunStatus.SUCCEEDED
    rows = await pool.fetch("SELECT entity_id, changes FROM change_log WHERE entity = 'member' AND op = 'create'")
    changes = {r["entity_id"]: r["changes"] for r in rows}
    created = {
        "name": odd, "mobile": "138", "gender": 2, "hired_date": 1_700_000_000_000, "direct_leaders": ["u2", "u9"],
        "extattr": {"爱好": 'x"y', "a": "1"}, "platform_status": 1, "open_user_id": "wo1", "position": "",
        "main_dept_id": "3", "departments": ["2", "3"],
    }  # fmt: skip
    assert changes["u1"] == {k: {"before": None, "after": v} for k, v in created.items()}
    assert changes["u3"] is None
    assert changes["u4"] == {
        "name": {"before": None, "after": "name-u4"},
        "direct_leaders": {"before": None, "after": []},
    }
    # the same as the feed's own function makes of the stored row
    same = await pool.fetchval(
        "SELECT c.changes = feed_changes(NULL, to_jsonb(m) || jsonb_build_object('departments', "
        "(SELECT array_agg(dept_id ORDER BY dept_id) FROM member_departments WHERE member = m.id)), "
        "ARRAY(SELECT jsonb_object_keys(c.changes))) FROM change_log c JOIN members m ON m.user_id = c.entity_id "
        "WHERE c.entity_id = 'u1' AND c.op = 'create'"
    )
    assert same is True


async def test_a_first_sync_skips_what_an_empty_corp_cannot_need(db_url: str) -> None:
    # Nothing stored: no rename to find, no member to update, nothing the snapshot could lack. The second sync
    # (one member gone, one changed) runs them all.
    one = await db.create_pool(db_url, min_size=1, max_size=1)
    sent: list[str] = []
    names = {sql: name for name, sql in queries().items()}
    skipped = {"fs_rename_members", "fs_update_members", "fs_removal_plan"}
    try:
        async with one.acquire() as conn:
            conn.add_query_logger(lambda record: sent.append(names.get(record.query, "")))
        assert (await sync(one, org(5))).status is RunStatus.SUCCEEDED
        assert "fs_diff_members" in sent
        assert skipped.isdisjoint(sent)
        sent.clear()
        people = [replace(m, mobile="139") if m.user_id == "u1" else m for m in org(5).members if m.user_id != "u4"]
        result = await sync(one, replace(org(5), members=tuple(people)))
        assert skipped <= set(sent)
        assert (result.counts["members"]["updated"], result.counts["members"]["offlined"]) == (1, 1)
    finally:
        await one.close()


async def test_failure_text_never_shows_secrets_from_urls(pool: asyncpg.Pool) -> None:
    leak = RuntimeError("GET https://x/cgi-bin/gettoken?corpid=ww1&corpsecret=TOPSECRET failed")
    result = await sync(pool, leak)
    assert result.error is not None
    assert "TOPSECRET" not in result.error
    assert "corpsecret=***" in result.error
