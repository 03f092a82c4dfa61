"""Reconciliation: stage a Snapshot with COPY and merge it set-based in the caller's transaction.

Policy (the snapshot is authoritative for what it fetched):
- a column counts as fetched when at least one record of the snapshot has a value for it; there
  ``None`` clears the stored value (the member removed their alias). A column no record has a value
  for was withheld by the API (WeCom's privacy fields for newer apps, department names when
  ``department/list`` is refused): like the event handlers, the stored values stay. Likewise a whole
  collection the client did not fetch (``tags``/``roles``/``role_members``/``admins`` is ``None``, or
  a member's ``departments`` is ``None``) is left as it is;
- rows whose values do not differ are not written and leave no change_log row;
- a new userid carrying the union_id / open_userid of a member no longer listed is a rename (same id);
- removals (departments deleted, members offlined) are planned, then either applied or held by the
  deletion guard; members are never deleted and come back with the same ``members.id``;
- operator-offlined members are updated but stay offline; local roles and admins are never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import orjson

from handlers.model import Member, Snapshot
from handlers.store.queries import q

Counts = dict[str, dict[str, int]]


def empty_counts() -> Counts:
    """Every counter a run reports, at zero (the keys of ``sync_runs.counts``)."""
    return {
        "departments": {"created": 0, "updated": 0, "deleted": 0, "held": 0},
        "members": {"created": 0, "updated": 0, "renamed": 0, "reactivated": 0, "offlined": 0, "held": 0},
        "tags": {
            "created": 0,
            "updated": 0,
            "deleted": 0,
            "members_added": 0,
            "members_removed": 0,
            "departments_added": 0,
            "departments_removed": 0,
        },
        "roles": {"created": 0, "updated": 0, "deleted": 0, "members_added": 0, "members_removed": 0},
        "admins": {"created": 0, "updated": 0, "deleted": 0},
    }


def changes_in(counts: Counts) -> int:
    """How many changes a run applied (held removals are not changes)."""
    return sum(n for group in counts.values() for key, n in group.items() if key != "held")


@dataclass(frozen=True, slots=True)
class Held:
    """Removals the deletion guard kept back, and why ('threshold' or 'failed_departments')."""

    reason: str
    departments: tuple[str, ...]
    members: tuple[str, ...]
    failed_departments: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "departments": list(self.departments),
            "members": list(self.members),
            "failed_departments": list(self.failed_departments),
        }


@dataclass(frozen=True, slots=True)
class Applied:
    counts: Counts
    held: Held | None


async def apply_snapshot(
    conn: asyncpg.Connection,
    corp_row: int,
    run_id: int,
    snapshot: Snapshot,
    *,
    threshold: float,
    allow_deletes: bool,
) -> Applied:
    """Merge ``snapshot`` into the corp's directory; the caller owns the transaction."""
    await conn.execute(q("fs_create_staging"))
    dept_cols, member_cols = _Unfetched(DEPARTMENT_COLUMNS), _Unfetched(MEMBER_COLUMNS)
    await _stage(conn, snapshot, dept_cols, member_cols)
    await conn.execute(q("fs_analyze_staging"))
    size = await conn.fetchrow(q("fs_local_size"), corp_row)
    await conn.execute(q("fs_set_root"), corp_row, snapshot.root_dept_id)
    counts = empty_counts()
    args = (corp_row, run_id)

    if dept_cols.missing:
        await conn.execute(q("fs_keep_unfetched_departments"), corp_row, sorted(dept_cols.missing))
    row = await conn.fetchrow(q("fs_merge_departments"), *args)
    counts["departments"].update(created=row["created"], updated=row["updated"])
    counts["members"]["renamed"] = await conn.fetchval(q("fs_rename_members"), *args)
    if member_cols.missing:
        await conn.execute(q("fs_keep_unfetched_members"), corp_row, sorted(member_cols.missing))
    await conn.execute(q("fs_diff_members"), corp_row)
    await conn.execute(q("fs_insert_members"), corp_row)
    await conn.execute(q("fs_update_members"))
    await conn.execute(q("fs_replace_member_departments"), corp_row)
    ops = {r["op"]: r["n"] for r in await conn.fetch(q("fs_log_members"), *args)}
    counts["members"].update(created=ops.get("create", 0), updated=ops.get("update", 0))
    counts["members"]["reactivated"] = ops.get("reactivate", 0)

    empty_corp = size["departments"] == 0 and size["members"] == 0
    held = await _removals(conn, args, snapshot, counts, size["active"], empty_corp, threshold, allow_deletes)
    await _labels(conn, args, snapshot, counts)
    return Applied(counts, held)


async def _removals(
    conn: asyncpg.Connection,
    args: tuple[int, int],
    snapshot: Snapshot,
    counts: Counts,
    active: int,
    empty_corp: bool,
    threshold: float,
    allow_deletes: bool,
) -> Held | None:
    """Plan the removals, pass them through the deletion guard, apply what it lets through."""
    plan = await conn.fetch(q("fs_removal_plan"), args[0])
    depts = [(r["id"], r["uncertain"]) for r in plan if r["kind"] == "department"]
    members = [(r["id"], r["uncertain"]) for r in plan if r["kind"] == "member"]
    failed = tuple(sorted(set(snapshot.failed_departments)))
    over = len(members) > threshold * active
    guarded = not empty_corp and (bool(failed) or over)
    if not guarded:
        apply_depts, apply_members = [d for d, _ in depts], [m for m, _ in members]
    elif allow_deletes:  # confirmed: everything but what a failed fetch leaves in doubt
        apply_depts = [d for d, uncertain in depts if not uncertain]
        apply_members = [m for m, uncertain in members if not uncertain]
    else:
        apply_depts, apply_members = [], []
    if apply_members:
        counts["members"]["offlined"] = await conn.fetchval(q("fs_offline_members"), *args, apply_members)
    if apply_depts:
        counts["departments"]["deleted"] = await conn.fetchval(q("fs_delete_departments"), *args, apply_depts)
    held_depts = tuple(sorted({d for d, _ in depts} - set(apply_depts)))
    held_members = tuple(sorted({m for m, _ in members} - set(apply_members)))
    counts["departments"]["held"], counts["members"]["held"] = len(held_depts), len(held_members)
    if not (failed or held_depts or held_members):
        return None
    return Held("failed_departments" if failed else "threshold", held_depts, held_members, failed)


async def _labels(conn: asyncpg.Connection, args: tuple[int, int], snapshot: Snapshot, counts: Counts) -> None:
    """Tags, roles, role members and admins: each only when the snapshot fetched it."""
    if snapshot.tags is not None:
        _ops(counts["tags"], await conn.fetch(q("fs_merge_tags"), *args))
        row = await conn.fetchrow(q("fs_sync_tag_members"), *args)
        counts["tags"].update(members_added=row["added"], members_removed=row["removed"])
        row = await conn.fetchrow(q("fs_sync_tag_departments"), *args)
        counts["tags"].update(departments_added=row["added"], departments_removed=row["removed"])
    if snapshot.roles is not None:
        _ops(counts["roles"], await conn.fetch(q("fs_merge_roles"), *args))
    if snapshot.role_members is not None:
        row = await conn.fetchrow(q("fs_sync_role_members"), *args)
        counts["roles"].update(members_added=row["added"], members_removed=row["removed"])
    if snapshot.admins is not None:
        _ops(counts["admins"], await conn.fetch(q("fs_sync_admins"), *args))


_OP_COUNTER = {"create": "created", "update": "updated", "delete": "deleted"}


def _ops(group: dict[str, int], rows: list[asyncpg.Record]) -> None:
    for r in rows:
        group[_OP_COUNTER[r["op"]]] += r["n"]


DEPARTMENT_COLUMNS = ("name", "name_en", "order", "leaders")
MEMBER_COLUMNS = ("union_id", "open_user_id", "name", "alias", "position", "mobile", "email", "biz_mail", "telephone",
                  "gender", "avatar", "job_number", "work_place", "hired_date", "direct_leaders", "platform_status",
                  "extattr", "main_dept_id")  # fmt: skip


class _Unfetched:
    """The columns no record seen so far has a value for (cheap: a record is only checked for those)."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.missing = set(columns)

    def see(self, record: object) -> None:
        if self.missing:
            self.missing.difference_update([c for c in self.missing if getattr(record, c) is not None])


async def _stage(conn: asyncpg.Connection, snapshot: Snapshot, depts: _Unfetched, members: _Unfetched) -> None:
    """COPY the snapshot into the temporary staging tables (streamed: no second copy of the org in memory)."""
    await conn.copy_records_to_table("fs_departments", records=_departments(snapshot, depts))
    await conn.copy_records_to_table("fs_members", records=_members(snapshot, members))
    await conn.copy_records_to_table("fs_member_departments", records=_memberships(snapshot))
    await conn.copy_records_to_table("fs_failed", records=((d,) for d in set(snapshot.failed_departments)))
    if snapshot.tags is not None:
        tags = {t.tag_id: t for t in snapshot.tags}
        await conn.copy_records_to_table(
            "fs_tags",
            records=((t.tag_id, t.name, t.user_ids is not None, t.dept_ids is not None) for t in tags.values()),
        )
        pairs = {(t.tag_id, u) for t in tags.values() for u in t.user_ids or ()}
        await conn.copy_records_to_table("fs_tag_members", records=pairs)
        pairs = {(t.tag_id, d) for t in tags.values() for d in t.dept_ids or ()}
        await conn.copy_records_to_table("fs_tag_departments", records=pairs)
    if snapshot.roles is not None:
        roles = {r.role_id: (r.role_id, r.name, r.group_name) for r in snapshot.roles}
        await conn.copy_records_to_table("fs_roles", records=roles.values())
    if snapshot.role_members is not None:
        await conn.copy_records_to_table("fs_role_members", records=set(snapshot.role_members))
    if snapshot.admins is not None:
        admins = {a.user_id: (a.user_id, a.level) for a in snapshot.admins}
        await conn.copy_records_to_table("fs_admins", records=admins.values())


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
