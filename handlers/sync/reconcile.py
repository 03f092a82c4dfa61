"""Reconciliation: merge a Snapshot into the corp's directory (``handlers.store.merge``) by the policy below.

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
- operator-offlined members are updated but stay offline; local roles and admins are never touched;
- every member ends registered in the local user pool (``handlers.store.users``): one person per identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from handlers.model import Snapshot
from handlers.store import merge, users

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
class Merged:
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
) -> Merged:
    """Merge ``snapshot`` into the corp's directory; the caller owns the transaction.

    The corps row is written last, as the worker does (an event's directory rows, then its sync request):
    taking it first would deadlock against an event of the corp applied meanwhile.
    """
    staged = await merge.stage(conn, snapshot)
    size = await merge.local_size(conn, corp_row)
    counts = empty_counts()

    created, updated = await merge.merge_departments(conn, corp_row, run_id, staged.department_columns)
    counts["departments"].update(created=created, updated=updated)
    renamed, ops = await merge.merge_members(conn, corp_row, run_id, staged.member_columns, stored=size.members > 0)
    counts["members"]["renamed"] = renamed
    counts["members"].update(created=ops.get("create", 0), updated=ops.get("update", 0))
    counts["members"]["reactivated"] = ops.get("reactivate", 0)

    empty_corp = size.departments == 0 and size.members == 0
    held = await _removals(conn, corp_row, run_id, snapshot, counts, size.active, empty_corp, threshold, allow_deletes)
    await _labels(conn, corp_row, run_id, snapshot, counts)
    await users.register(conn, corp_row)
    await merge.set_root(conn, corp_row, snapshot.root_dept_id)
    await merge.unstage(conn)
    return Merged(counts, held)


async def _removals(
    conn: asyncpg.Connection,
    corp_row: int,
    run_id: int,
    snapshot: Snapshot,
    counts: Counts,
    active: int,
    empty_corp: bool,
    threshold: float,
    allow_deletes: bool,
) -> Held | None:
    """Plan the removals, pass them through the deletion guard, apply what it lets through. A corp empty before
    the merge has nothing the snapshot could lack (a member an event creates meanwhile is not taken offline for
    being absent from a snapshot read before it existed)."""
    plan = merge.RemovalPlan([], []) if empty_corp else await merge.removal_plan(conn, corp_row)
    depts, members = plan.departments, plan.members
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
        counts["members"]["offlined"] = await merge.offline_members(conn, corp_row, run_id, apply_members)
    if apply_depts:
        counts["departments"]["deleted"] = await merge.delete_departments(conn, corp_row, run_id, apply_depts)
    held_depts = tuple(sorted({d for d, _ in depts} - set(apply_depts)))
    held_members = tuple(sorted({m for m, _ in members} - set(apply_members)))
    counts["departments"]["held"], counts["members"]["held"] = len(held_depts), len(held_members)
    if not (failed or held_depts or held_members):
        return None
    return Held("failed_departments" if failed else "threshold", held_depts, held_members, failed)


async def _labels(conn: asyncpg.Connection, corp_row: int, run_id: int, snapshot: Snapshot, counts: Counts) -> None:
    """Tags, roles, role members and admins: each only when the snapshot fetched it."""
    if snapshot.tags is not None:
        _ops(counts["tags"], await merge.merge_tags(conn, corp_row, run_id))
        added, removed = await merge.sync_tag_members(conn, corp_row, run_id)
        counts["tags"].update(members_added=added, members_removed=removed)
        added, removed = await merge.sync_tag_departments(conn, corp_row, run_id)
        counts["tags"].update(departments_added=added, departments_removed=removed)
    if snapshot.roles is not None:
        _ops(counts["roles"], await merge.merge_roles(conn, corp_row, run_id))
    if snapshot.role_members is not None:
        added, removed = await merge.sync_role_members(conn, corp_row, run_id)
        counts["roles"].update(members_added=added, members_removed=removed)
    if snapshot.admins is not None:
        _ops(counts["admins"], await merge.sync_admins(conn, corp_row, run_id))


_OP_COUNTER = {"create": "created", "update": "updated", "delete": "deleted"}


def _ops(group: dict[str, int], ops: dict[str, int]) -> None:
    for op, n in ops.items():
        group[_OP_COUNTER[op]] += n
