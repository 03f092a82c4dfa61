"""Row-level directory writes of the event path."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from handlers.model import Department, Member, Membership
from handlers.store.directory import Change, Directory, MemberRaced, MemberWrite, Reactivate, Source
from handlers.store.queries import q


async def corp_row(pool: asyncpg.Pool) -> int:
    row: int = await pool.fetchval(
        "INSERT INTO corps (name, platform, type, corp_id) VALUES ('HQ', 'wecom', 'corps.QywxInnerType', 'ww1')"
        " RETURNING id"
    )
    return row


async def test_a_membership_only_change_moves_updated_at_and_is_logged(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        directory = Directory(conn, corp, Source("event"))
        await directory.upsert_member(Member("u1", "One", (Membership("1"),)))
        before = await conn.fetchval("SELECT updated_at FROM members WHERE user_id = 'u1'")
        change = await directory.upsert_member(Member("u1", departments=(Membership("2"),)))
        after = await conn.fetchval("SELECT updated_at FROM members WHERE user_id = 'u1'")
        depts = await conn.fetchval("SELECT array_agg(dept_id) FROM member_departments")
    assert change is not None and change.op == "update" and "departments" in change.fields
    assert depts == ["2"]
    assert after > before


async def test_an_unchanged_member_is_not_written(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        directory = Directory(conn, corp, Source("event"))
        await directory.upsert_member(Member("u1", "One", (Membership("1"),)))
        xmin = await conn.fetchval("SELECT xmin::text FROM members WHERE user_id = 'u1'")
        assert await directory.upsert_member(Member("u1", "One", (Membership("1"),))) is None
        assert await conn.fetchval("SELECT xmin::text FROM members WHERE user_id = 'u1'") == xmin


# -- several members in one statement ----------------------------------------------------------------

_VALUES = (None, "a", "b")
_STATES = "SELECT user_id, {} FROM members WHERE corp = $1 ORDER BY user_id"
_MEMBER_COLUMNS = (
    "name, alias, position, mobile, email, gender, direct_leaders, platform_status, extattr, main_dept_id, status,"
    " offline_reason, offline_at IS NULL AS online, created_at = updated_at AS untouched,"
    ' ARRAY(SELECT (dept_id, is_leader, "order")::text FROM member_departments d WHERE d.member = members.id'
    " ORDER BY dept_id) AS memberships"
)


def _random_write(rng: random.Random, user_id: str, inbox_id: int) -> MemberWrite:
    pick = rng.choice
    some = tuple(Membership(d, pick((None, True, False)), pick((None, 1, 2))) for d in rng.sample(["1", "2", "9"], 2))
    departments = pick((None, (), some))
    member = Member(
        user_id,
        name=pick(_VALUES),
        departments=departments,
        main_dept_id=pick((None, "1", "2")),
        alias=pick(_VALUES),
        position=pick(_VALUES),
        mobile=pick(_VALUES),
        email=pick(_VALUES),
        gender=pick((None, 1, 2)),
        direct_leaders=pick((None, (), ("x", "y"))),
        platform_status=pick((None, 1, 5)),
        extattr=pick((None, {}, {"k": pick(("v", "w"))})),
    )
    return MemberWrite(member, pick(list(Reactivate)), inbox_id)


async def _directory_state(conn: asyncpg.Connection, corp: int) -> list[tuple[object, ...]]:
    members = [tuple(r) for r in await conn.fetch(_STATES.format(_MEMBER_COLUMNS), corp)]
    log = await conn.fetch(
        "SELECT entity_id, op, fields, source, inbox_id, changes FROM change_log WHERE corp = $1 ORDER BY id", corp
    )
    return members + [tuple(r) for r in log]


async def test_upsert_members_checked_writes_what_upsert_member_checked_writes_one_by_one(
    pool: asyncpg.Pool,
) -> None:
    """Two corps with the same departments; corp `one` gets each round's writes one by one, corp `bulk` in one
    statement: same answers, same members and memberships, same change log, round after round (creates,
    updates, no-ops, offline members coming back or not, operator offlines, unknown departments)."""
    rng = random.Random(15)
    one = await corp_row(pool)
    bulk = await pool.fetchval(
        "INSERT INTO corps (name, platform, type, corp_id) VALUES ('B', 'wecom', 'corps.QywxInnerType', 'ww2')"
        " RETURNING id"
    )
    async with pool.acquire() as conn:
        for corp in (one, bulk):
            await conn.execute(
                "INSERT INTO departments (corp, dept_id, parent_id, name)"
                " VALUES ($1, '1', '0', 'r'), ($1, '2', '1', 's')",
                corp,
            )
        for round_ in range(12):
            writes = [
                _random_write(rng, user_id, round_ * 100 + k)
                for k, user_id in enumerate(rng.sample([f"u{n}" for n in range(10)], 6))
            ]
            answers = []
            for w in writes:
                directory = Directory(conn, one, Source("event", inbox_id=w.inbox_id))
                answers.append(await directory.upsert_member_checked(w.member, reactivate=w.reactivate))
            assert await Directory(conn, bulk, Source("event")).upsert_members_checked(writes) == answers
            assert await _directory_state(conn, bulk) == await _directory_state(conn, one)
            for user_id in rng.sample([f"u{n}" for n in range(10)], 2):  # some leave, some are taken off
                reason = rng.choice(("platform", "operator"))
                for corp in (one, bulk):
                    await conn.execute(
                        "UPDATE members SET status = 'offline', offline_reason = $3, offline_at = now()"
                        " WHERE corp = $1 AND user_id = $2",
                        corp,
                        user_id,
                        reason,
                    )


async def test_upsert_members_checked_sends_a_column_no_member_knows_as_null(pool: asyncpg.Pool) -> None:
    """A column (or membership field) none of the members carries goes as one NULL, not an array of NULLs; the
    members and change log are those the writes make one by one."""
    one = await corp_row(pool)
    bulk = await pool.fetchval(
        "INSERT INTO corps (name, platform, type, corp_id) VALUES ('B', 'wecom', 'corps.QywxInnerType', 'ww2')"
        " RETURNING id"
    )
    writes = [
        MemberWrite(Member(u, name=u, departments=(Membership("1"), Membership("2"))), Reactivate.JOIN, k)
        for k, u in enumerate(("u1", "u2", "u3"), start=1)
    ]
    sent: list[tuple[object, ...]] = []
    async with pool.acquire() as conn:
        for w in writes:
            await Directory(conn, one, Source("event", inbox_id=w.inbox_id)).upsert_member(
                w.member, reactivate=w.reactivate
            )

        def log(record: asyncpg.connection.LoggedQuery) -> None:
            if record.query == q("dir_upsert_members"):
                sent.append(record.args)

        conn.add_query_logger(log)
        await Directory(conn, bulk, Source("event")).upsert_members_checked(writes)
        conn.remove_query_logger(log)
        assert await _directory_state(conn, bulk) == await _directory_state(conn, one)
    [args] = sent
    assert args[1] == ["u1", "u2", "u3"] and args[2] is None and args[4] == args[1]  # user ids, no union id, names
    assert args[25] is None and args[26] is None  # memberships: neither leader flags nor orders known


async def test_upsert_members_checked_links_each_new_member_to_its_person_in_one_write(pool: asyncpg.Pool) -> None:
    """New members are inserted linked to their person (made unless they exist): no second write of the row."""
    corp = await corp_row(pool)
    corp_id = await pool.fetchval("SELECT corp_id FROM corps WHERE id = $1", corp)
    known = await pool.fetchval(
        "INSERT INTO local_users (platform, identity) VALUES ('wecom', $1) RETURNING id", f"userId:{corp_id}:u1"
    )
    writes = [MemberWrite(Member(u, name=u), Reactivate.JOIN) for u in ("u1", "u2")]
    async with pool.acquire() as conn, conn.transaction():
        results = await Directory(conn, corp, Source("event")).upsert_members_checked(writes)
        written = await conn.fetchrow(
            "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'members'"
        )
    assert [change.op for change, _ in results if change is not None] == ["create", "create"]
    assert (written["n_tup_ins"], written["n_tup_upd"]) == (2, 0)
    linked = await pool.fetch(
        "SELECT m.user_id, m.local_user, u.identity FROM members m JOIN local_users u ON u.id = m.local_user"
        " WHERE m.corp = $1 ORDER BY m.user_id",
        corp,
    )
    assert [(r["user_id"], r["identity"]) for r in linked] == [
        ("u1", f"userId:{corp_id}:u1"),
        ("u2", f"userId:{corp_id}:u2"),
    ]
    assert linked[0]["local_user"] == known


async def test_upsert_members_checked_raises_when_another_transaction_inserted_a_member(
    pool: asyncpg.Pool,
) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as theirs, pool.acquire() as ours:
        async with theirs.transaction():
            await Directory(theirs, corp, Source("api")).upsert_member(Member("u2", "Theirs"))
            writes = [MemberWrite(Member("u1", "One")), MemberWrite(Member("u2", "Ours"))]
            ours_tx = ours.transaction()
            await ours_tx.start()
            write = asyncio.create_task(Directory(ours, corp, Source("event")).upsert_members_checked(writes))
            await asyncio.sleep(0.2)  # ours now waits for theirs to settle u2's insert
            assert not write.done()
        with pytest.raises(MemberRaced):
            await write
        await ours_tx.rollback()
    assert await pool.fetchval("SELECT array_agg(name ORDER BY user_id) FROM members") == ["Theirs"]


async def test_department_writes_and_offlines_log_their_change_with_their_source(pool: asyncpg.Pool) -> None:
    corp = await corp_row(pool)
    async with pool.acquire() as conn:
        directory = Directory(conn, corp, Source("event", inbox_id=42))
        await directory.upsert_member(Member("u1", "One"))
        created = await directory.upsert_department(Department("7", "1", "Seven"))
        renamed = await directory.upsert_department(Department("7", None, "Sieben"))
        unchanged = await directory.upsert_department(Department("7", "1"))
        offlined = await directory.offline_member("u1", "platform")
        again = await directory.offline_member("u1", "platform")
        log = await conn.fetch("SELECT entity, entity_id, op, fields, source, inbox_id FROM change_log ORDER BY id")
    assert (created, renamed, unchanged) == (
        Change("department", "7", "create", ("parent_id", "name")),
        Change("department", "7", "update", ("name",)),
        None,
    )
    assert (offlined, again) == (True, False)
    assert [tuple(r) for r in log][1:] == [
        ("department", "7", "create", ["parent_id", "name"], "event", 42),
        ("department", "7", "update", ["name"], "event", 42),
        ("member", "u1", "offline", ["status", "offline_reason", "offline_at"], "event", 42),
    ]
    assert [c.op for c in directory.changes] == ["create", "create", "update", "offline"]


async def _upsert_racing_an_insert(pool: asyncpg.Pool, corp: int, theirs: Member, ours: Member) -> Change | None:
    """Ours upserts a member another transaction inserted and commits after ours began its statement (a first full
    sync committing while an event of the member is applied): ours waits for theirs to settle the insert."""
    async with pool.acquire() as their_conn, pool.acquire() as our_conn:
        async with their_conn.transaction():
            await Directory(their_conn, corp, Source("full_sync")).upsert_member(theirs, reactivate=Reactivate.JOIN)
            our_tx = our_conn.transaction()
            await our_tx.start()
            write = asyncio.create_task(Directory(our_conn, corp, Source("event", inbox_id=7)).upsert_member(ours))
            await asyncio.sleep(0.2)  # ours now waits for theirs to settle the insert
            assert not write.done()
        try:
            change = await write
        except BaseException:
            await our_tx.rollback()
            raise
        await our_tx.commit()
    return change


async def test_upsert_member_inserted_meanwhile_with_the_same_values_writes_nothing(pool: asyncpg.Pool) -> None:
    """The member another transaction inserted meanwhile is not in the statement's snapshot and the upsert's
    update finds nothing to change: no row with a NULL member for its memberships (NotNullViolationError)."""
    corp = await corp_row(pool)
    same = Member("u1", "One", (Membership("2"),), alias="a0")
    change = await _upsert_racing_an_insert(pool, corp, same, same)
    assert change is None
    assert await pool.fetchval("SELECT array_agg(dept_id) FROM member_departments") == ["2"]
    assert [tuple(r) for r in await pool.fetch("SELECT op, source FROM change_log ORDER BY id")] == [
        ("create", "full_sync")
    ]


async def test_upsert_member_inserted_meanwhile_logs_an_update_from_the_stored_values(pool: asyncpg.Pool) -> None:
    """The update of a member another transaction inserted meanwhile is logged against the values it had (as an
    update, not a second create) and its memberships are replaced."""
    corp = await corp_row(pool)
    theirs = Member("u1", "One", (Membership("2"),), alias="a0")
    ours = Member("u1", "One", (Membership("3"),), alias="a1")
    change = await _upsert_racing_an_insert(pool, corp, theirs, ours)
    assert change == Change("member", "u1", "update", ("alias", "departments"))
    assert await pool.fetchval("SELECT array_agg(dept_id) FROM member_departments") == ["3"]
    logged = await pool.fetch("SELECT op, source, inbox_id, changes FROM change_log ORDER BY id")
    assert [(r["op"], r["source"], r["inbox_id"]) for r in logged] == [
        ("create", "full_sync", None),
        ("update", "event", 7),
    ]
    assert logged[1]["changes"] == {
        "alias": {"before": "a0", "after": "a1"},
        "departments": {"before": ["2"], "after": ["3"]},
    }
