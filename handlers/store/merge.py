"""Full sync's merge: a Snapshot staged in temporary tables with COPY, merged set-based into the corp's directory.

Every merge writes only rows whose values differ and logs exactly what it wrote (change_log, source
'full_sync'). The caller owns the transaction; the staging tables, made once per connection, are emptied
before it commits (``unstage``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

import asyncpg
import orjson

from handlers.model import Member, Snapshot
from handlers.store.queries import q

DEPARTMENT_COLUMNS = ("name", "name_en", "order", "leaders")
MEMBER_COLUMNS = ("union_id", "open_user_id", "name", "alias", "position", "mobile", "email", "biz_mail", "telephone",
                  "gender", "avatar", "job_number", "work_place", "hired_date", "direct_leaders", "platform_status",
                  "extattr", "main_dept_id")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Staged:
    """The columns no staged record has a value for: the API withheld them, the stored values stay."""

    department_columns: tuple[str, ...]
    member_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LocalSize:
    """The corp's directory before the merge."""

    departments: int
    members: int
    active: int


@dataclass(frozen=True, slots=True)
class RemovalPlan:
    """What the snapshot no longer has, each id with whether its absence is uncertain (in or under a
    department whose fetch failed)."""

    departments: list[tuple[str, bool]]
    members: list[tuple[str, bool]]


# -- staging -----------------------------------------------------------------------------------------


class _Unfetched:
    """The columns no record seen so far has a value for (cheap: a record is only checked for those)."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.missing = set(columns)

    def see(self, record: object) -> None:
        if self.missing:
            self.missing.difference_update([c for c in self.missing if getattr(record, c) is not None])


async def stage(conn: asyncpg.Connection, snapshot: Snapshot) -> Staged:
    """Create the staging tables (unless this connection has them) and COPY the snapshot into them (streamed: no
    second copy of the org in memory)."""
    await conn.execute(q("fs_create_staging"))
    depts, members = _Unfetched(DEPARTMENT_COLUMNS), _Unfetched(MEMBER_COLUMNS)
    await conn.copy_records_to_table("fs_departments", records=_departments(snapshot, depts))
    await conn.copy_records_to_table("fs_members", records=_members(snapshot, members))
    await conn.copy_records_to_table("fs_member_departments", records=_memberships(snapshot))
    await _copy(conn, "fs_failed", {(d,) for d in snapshot.failed_departments})
    if snapshot.tags is not None:
        tags = {t.tag_id: t for t in snapshot.tags}
        await _copy(
            conn, "fs_tags", [(t.tag_id, t.name, t.user_ids is not None, t.dept_ids is not None) for t in tags.values()]
        )
        await _copy(conn, "fs_tag_members", {(t.tag_id, u) for t in tags.values() for u in t.user_ids or ()})
        await _copy(conn, "fs_tag_departments", {(t.tag_id, d) for t in tags.values() for d in t.dept_ids or ()})
    if snapshot.roles is not None:
        await _copy(
            conn, "fs_roles", list({r.role_id: (r.role_id, r.name, r.group_name) for r in snapshot.roles}.values())
        )
    if snapshot.role_members is not None:
        await _copy(conn, "fs_role_members", set(snapshot.role_members))
    if snapshot.admins is not None:
        await _copy(conn, "fs_admins", list({a.user_id: (a.user_id, a.level) for a in snapshot.admins}.values()))
    await conn.execute(q("fs_analyze_staging"))
    return Staged(tuple(sorted(depts.missing)), tuple(sorted(members.missing)))


# Runs between truncations of a connection's staging tables, by server process id. Each run empties them with DELETE,
# leaving dead rows and index entries that later runs mostly reuse (nothing vacuums a temporary table); a TRUNCATE
# every so many runs gives the space back. A truncation at every run cost 4 ms of PostgreSQL's CPU.
TRUNCATE_STAGING_EVERY = 64
_runs_since_truncate: dict[int, int] = {}


async def unstage(conn: asyncpg.Connection) -> None:
    """Empty the staging tables: the run's last statement before its transaction commits."""
    pid = conn.get_server_pid()
    runs = _runs_since_truncate.get(pid, 0) + 1
    if runs >= TRUNCATE_STAGING_EVERY:
        await conn.execute(q("fs_truncate_staging"))
        runs = 0
    else:
        await conn.execute(q("fs_clear_staging"))
    if len(_runs_since_truncate) > 1024:  # connections come and go: forget them all now and then
        _runs_since_truncate.clear()
    _runs_since_truncate[pid] = runs


async def _copy(conn: asyncpg.Connection, table: str, rows: Collection[tuple[object, ...]]) -> None:
    """COPY rows already in memory, unless there are none: each COPY is a round trip (the tables start empty)."""
    if rows:
        await conn.copy_records_to_table(table, records=rows)


def _departments(snapshot: Snapshot, columns: _Unfetched) -> Iterator[tuple[object, ...]]:
    seen: set[str] = set()
    for d in snapshot.departments:
        if d.dept_id not in seen:
            seen.add(d.dept_id)
            columns.see(d)
            leaders = None if d.leaders is None else list(d.leaders)
            yield (d.dept_id, d.parent_id, d.name, d.name_en, d.order, leaders)


def _unique_members(snapshot: Snapshot) -> Iterator[Member]:
    seen: set[str] = set()
    for m in snapshot.members:
        if m.user_id not in seen:
            seen.add(m.user_id)
            yield m


def _members(snapshot: Snapshot, columns: _Unfetched) -> Iterator[tuple[object, ...]]:
    for m in _unique_members(snapshot):
        columns.see(m)
        extattr = None if m.extattr is None else orjson.dumps(m.extattr, option=orjson.OPT_SORT_KEYS).decode()
        leaders = None if m.direct_leaders is None else list(m.direct_leaders)
        yield (
            m.user_id, m.union_id, m.open_user_id, m.name, m.alias, m.position, m.mobile, m.email, m.biz_mail,
            m.telephone, m.gender, m.avatar, m.job_number, m.work_place, m.hired_date, leaders,
            m.platform_status, extattr, m.main_dept_id, m.departments is not None,
        )  # fmt: skip


def _memberships(snapshot: Snapshot) -> Iterator[tuple[object, ...]]:
    for m in _unique_members(snapshot):
        seen: set[str] = set()
        for ms in m.departments or ():
            if ms.dept_id not in seen:
                seen.add(ms.dept_id)
                yield (m.user_id, ms.dept_id, ms.is_leader, ms.order)


# -- the merge (after ``stage``, in its transaction) -------------------------------------------------


async def local_size(conn: asyncpg.Connection, corp_row: int) -> LocalSize:
    row = await conn.fetchrow(q("fs_local_size"), corp_row)
    return LocalSize(row["departments"], row["members"], row["active"])


async def set_root(conn: asyncpg.Connection, corp_row: int, root_dept_id: str | None) -> None:
    await conn.execute(q("fs_set_root"), corp_row, root_dept_id)


async def merge_departments(
    conn: asyncpg.Connection, corp_row: int, run_id: int, unfetched: tuple[str, ...]
) -> tuple[int, int]:
    """Create and update departments (``unfetched`` columns keep their stored values); (created, updated)."""
    if unfetched:
        await conn.execute(q("fs_keep_unfetched_departments"), corp_row, list(unfetched))
    row = await conn.fetchrow(q("fs_merge_departments"), corp_row, run_id)
    return row["created"], row["updated"]


async def merge_members(
    conn: asyncpg.Connection, corp_row: int, run_id: int, unfetched: tuple[str, ...], *, stored: bool = True
) -> tuple[int, dict[str, int]]:
    """Rename, create (each linked to its person in the local user pool), update and reactivate members and replace
    their memberships (``unfetched`` columns keep their stored values); (renamed, changes by op: 'create' |
    'update' | 'reactivate'). ``stored=False``: the corp had no members when the merge began, so none can have
    been renamed (a member an event creates meanwhile is in the diff, and updated, like any other)."""
    renamed: int = await conn.fetchval(q("fs_rename_members"), corp_row, run_id) if stored else 0
    if unfetched:
        await conn.execute(q("fs_keep_unfetched_members"), corp_row, list(unfetched))
    diffed = _rows(await conn.execute(q("fs_diff_members"), corp_row))
    created = _rows(await conn.execute(q("fs_insert_members"), corp_row))
    if diffed > created:  # a first sync creates every member: nothing to update
        await conn.execute(q("fs_update_members"))
    await conn.execute(q("fs_replace_member_departments"), corp_row)
    ops = {r["op"]: r["n"] for r in await conn.fetch(q("fs_log_members"), corp_row, run_id)}
    return renamed, ops


def _rows(status: str) -> int:
    """The row count of a command's status ('INSERT 0 12' -> 12)."""
    return int(status.rsplit(" ", 1)[1])


async def removal_plan(conn: asyncpg.Connection, corp_row: int) -> RemovalPlan:
    """Departments and active members the snapshot no longer has."""
    plan = await conn.fetch(q("fs_removal_plan"), corp_row)
    return RemovalPlan(
        [(r["id"], r["uncertain"]) for r in plan if r["kind"] == "department"],
        [(r["id"], r["uncertain"]) for r in plan if r["kind"] == "member"],
    )


async def offline_members(conn: asyncpg.Connection, corp_row: int, run_id: int, user_ids: list[str]) -> int:
    """Take active members offline (reason 'platform'); how many were."""
    offlined: int = await conn.fetchval(q("fs_offline_members"), corp_row, run_id, user_ids)
    return offlined


async def delete_departments(conn: asyncpg.Connection, corp_row: int, run_id: int, dept_ids: list[str]) -> int:
    """Delete departments; how many were."""
    deleted: int = await conn.fetchval(q("fs_delete_departments"), corp_row, run_id, dept_ids)
    return deleted


async def _ops(conn: asyncpg.Connection, name: str, corp_row: int, run_id: int) -> dict[str, int]:
    return {r["op"]: r["n"] for r in await conn.fetch(q(name), corp_row, run_id)}


async def _links(conn: asyncpg.Connection, name: str, corp_row: int, run_id: int) -> tuple[int, int]:
    row = await conn.fetchrow(q(name), corp_row, run_id)
    return row["added"], row["removed"]


async def merge_tags(conn: asyncpg.Connection, corp_row: int, run_id: int) -> dict[str, int]:
    """Create, rename and delete tags; changes by op ('create' | 'update' | 'delete')."""
    return await _ops(conn, "fs_merge_tags", corp_row, run_id)


async def sync_tag_members(conn: asyncpg.Connection, corp_row: int, run_id: int) -> tuple[int, int]:
    """Member lists of the tags whose lists were fetched; (added, removed)."""
    return await _links(conn, "fs_sync_tag_members", corp_row, run_id)


async def sync_tag_departments(conn: asyncpg.Connection, corp_row: int, run_id: int) -> tuple[int, int]:
    """Department lists of the tags whose lists were fetched; (added, removed)."""
    return await _links(conn, "fs_sync_tag_departments", corp_row, run_id)


async def merge_roles(conn: asyncpg.Connection, corp_row: int, run_id: int) -> dict[str, int]:
    """Platform roles (local roles are never touched); changes by op."""
    return await _ops(conn, "fs_merge_roles", corp_row, run_id)


async def sync_role_members(conn: asyncpg.Connection, corp_row: int, run_id: int) -> tuple[int, int]:
    """Members of platform roles; (added, removed)."""
    return await _links(conn, "fs_sync_role_members", corp_row, run_id)


async def sync_admins(conn: asyncpg.Connection, corp_row: int, run_id: int) -> dict[str, int]:
    """Platform admins (local admins are never touched); changes by op."""
    return await _ops(conn, "fs_sync_admins", corp_row, run_id)
