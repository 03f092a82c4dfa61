"""Applying a batch of one stream's rows: runs of member events together, the same result as one by one."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from handlers.model import Member
from handlers.store import inbox
from handlers.store.directory import Directory, MemberRaced
from tests.support.eventkit import FAST, StubPlatform, make_corp, push, wecom_xml, worker

# A stream's day: joins, updates (one member twice in a row), a rename, an update and a create that read the
# platform, a department created and joined, a leave, a join into a department nobody knows.
EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("create_user", {"UserID": "u1", "Name": "One", "Department": [1], "IsLeaderInDept": [1]}),
    ("create_user", {"UserID": "u2", "Name": "Two", "Department": [1, 2], "Position": "P"}),
    ("update_user", {"UserID": "u1", "Mobile": "130"}),
    ("update_user", {"UserID": "u1", "Alias": "uno"}),
    ("update_user", {"UserID": "u2", "Department": [2], "MainDepartment": 2}),
    ("update_user", {"UserID": "u3", "Position": "Q"}),  # not here, no name: read from the platform
    ("create_party", {"Id": 7, "ParentId": 1, "Name": "Seven"}),
    ("create_user", {"UserID": "u4", "Name": "Four", "Department": [7]}),
    ("update_user", {"UserID": "u4", "NewUserID": "u4b", "Name": "Four"}),
    ("create_user", {"UserID": "u1", "Name": "One again"}),  # already active: read from the platform
    ("delete_user", {"UserID": "u2"}),
    ("create_user", {"UserID": "u2", "Name": "Two back", "Department": [1]}),
    ("create_user", {"UserID": "u5", "Name": "Five", "Department": [99]}),
    ("update_user", {"UserID": "u5", "Gender": 2}),
]

PLATFORM = {"u1": Member("u1", name="One (platform)"), "u3": Member("u3", name="Three", position="Q")}


async def _state(pool: asyncpg.Pool, corp: int) -> list[tuple[object, ...]]:
    members = await pool.fetch(
        "SELECT user_id, name, alias, position, mobile, gender, main_dept_id, status,"
        " ARRAY(SELECT (dept_id, is_leader)::text FROM member_departments d WHERE d.member = m.id ORDER BY 1)"
        " FROM members m WHERE corp = $1 ORDER BY user_id",
        corp,
    )
    log = await pool.fetch(
        "SELECT entity, entity_id, op, fields, inbox_id - min(inbox_id) OVER () FROM change_log"
        " WHERE corp = $1 ORDER BY id",
        corp,
    )
    reason = await pool.fetchval("SELECT sync_request_reason FROM corps WHERE id = $1", corp)
    return [tuple(r) for r in members] + [tuple(r) for r in log] + [(reason,)]


async def _two_corps(pool: asyncpg.Pool) -> tuple[int, int]:
    """Corps A and B with the same departments and the same events, each in its own stream."""
    corps = (await make_corp(pool, "A", corp_id="wwa"), await make_corp(pool, "B", corp_id="wwb"))
    for corp in corps:
        await pool.execute(
            "INSERT INTO departments (corp, dept_id, parent_id, name) VALUES ($1, '1', '0', 'r'), ($1, '2', '1', 's')",
            corp,
        )
    for change, fields in EVENTS:
        for name, corp in zip("AB", corps, strict=True):
            await push(pool, wecom_xml(change, corp_id=f"ww{name.lower()}", **fields), stream=name, corp=corp)
    return corps


async def test_a_batch_leaves_what_its_events_leave_one_by_one(pool: asyncpg.Pool) -> None:
    together, alone = await _two_corps(pool)
    platform = StubPlatform(members=dict(PLATFORM))
    await worker(pool, platform).run_until_idle()  # A and B in batches
    await pool.execute("UPDATE inbox SET status = 'pending', applied_at = NULL WHERE stream = 'B'")
    await pool.execute("DELETE FROM change_log WHERE corp = $1", alone)
    await pool.execute("DELETE FROM members WHERE corp = $1", alone)
    await pool.execute("DELETE FROM departments WHERE corp = $1 AND dept_id NOT IN ('1', '2')", alone)
    await pool.execute("UPDATE corps SET sync_requested_at = NULL, sync_request_reason = NULL WHERE id = $1", alone)
    await worker(pool, platform, settings=replace(FAST, batch_size=1)).run_until_idle()  # B again, one by one
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE status <> 'done'") == 0
    assert await pool.fetchval("SELECT count(DISTINCT xmin::text) FROM inbox WHERE stream = 'A'") == 1  # one batch
    assert await _state(pool, together) == await _state(pool, alone)
    assert (await _state(pool, together))[-1] == ("unknown_department",)


async def test_a_run_of_member_events_is_one_read_and_one_write(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    corp = await make_corp(pool)
    for n in range(5):
        await push(pool, wecom_xml("create_user", UserID=f"u{n}", Name="U", Department=[1]), corp=corp)
    calls: list[str] = []
    for name in ("member_states", "upsert_member_checked", "upsert_members_checked"):
        method = getattr(Directory, name)

        async def spy(self: Directory, *args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return await _method(self, *args, **kwargs)

        monkeypatch.setattr(Directory, name, spy)
    assert await worker(pool).run_until_idle() == 5
    assert calls == ["member_states", "upsert_members_checked"]
    assert await pool.fetchval("SELECT count(*) FROM change_log WHERE op = 'create'") == 5


async def test_a_drain_that_caught_up_lingers_so_that_its_next_batch_gathers_more_rows(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short batch means the intake is ahead by only a commit or two: the next read waits ``linger`` instead of
    taking each commit's few rows as they come."""
    corp = await make_corp(pool)
    for n in range(2):
        await push(pool, wecom_xml("create_user", UserID=f"u{n}", Name="U", Department=[1]), corp=corp)
    read: list[int] = []
    first = asyncio.Event()
    pending_rows = inbox.pending_rows

    async def spy(*args: Any, **kwargs: Any) -> list[inbox.InboxRow]:
        rows = await pending_rows(*args, **kwargs)
        read.append(len(rows))
        first.set()
        return rows

    monkeypatch.setattr(inbox, "pending_rows", spy)
    drain = asyncio.create_task(worker(pool).applier.drain("HQ", linger=0.5))
    await first.wait()
    for n in range(2, 5):  # committed while the drain applies the first two, or waits
        await push(pool, wecom_xml("create_user", UserID=f"u{n}", Name="U", Department=[1]), corp=corp)
    assert await drain == 5
    assert read == [2, 3, 0]


async def test_a_member_inserted_meanwhile_sends_the_batch_one_by_one(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    corp = await make_corp(pool)
    for n in range(3):
        await push(pool, wecom_xml("create_user", UserID=f"u{n}", Name="U", Department=[1]), corp=corp)

    async def raced(self: Directory, *args: Any, **kwargs: Any) -> Any:
        await self.log("member", "written before the race", "create")
        raise MemberRaced("u1")

    monkeypatch.setattr(Directory, "upsert_members_checked", raced)
    assert await worker(pool).run_until_idle() == 3
    rows = await pool.fetch("SELECT entity_id, op, inbox_id IS NOT NULL AS event FROM change_log ORDER BY id")
    assert [tuple(r) for r in rows] == [(f"u{n}", "create", True) for n in range(3)]  # the batch's write rolled back
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE status = 'done' AND attempts = 0") == 3
