"""Typed, idempotent directory writes for one corp; every real change leaves one change_log row.

The caller owns the transaction. ``None`` in a record means "not known here": the stored value stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import asyncpg
import orjson

from handlers.model import Department, Member
from handlers.store import users
from handlers.store.queries import q


class Reactivate(StrEnum):
    """What an upsert may do to an offline member."""

    JOIN = "join"  # a new join (WeCom create_user, DingTalk user_add_org / user_active_org): always active
    CONFIRMED = "confirmed"  # the platform confirmed the member exists: active unless an operator took them off
    NO = "no"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a change comes from, as the change log records it."""

    kind: str  # 'event' | 'full_sync' | 'api'
    inbox_id: int | None = None
    sync_run_id: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    entity: str
    entity_id: str
    op: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MemberWrite:
    """One member of ``upsert_members_checked``: what ``upsert_member`` takes, and the inbox id its change is
    logged with (None: the directory's source's)."""

    member: Member
    reactivate: Reactivate = Reactivate.NO
    inbox_id: int | None = None


@dataclass(frozen=True, slots=True)
class DepartmentRemoval:
    deleted: bool
    children: int  # local sub-departments still pointing at the removed one
    members: tuple[str, ...]  # user ids that lost the membership


MemberState = tuple[str, str | None]  # (status, offline_reason) of a member here


class MemberRaced(Exception):
    """A member ``upsert_members_checked`` was to insert was inserted by another transaction meanwhile (or, for
    ``upsert_member_checked``, twice in a row)."""


# dir_upsert_members' per-member columns $2..$16, in order (the rest need converting first).
_BULK_MEMBER_FIELDS = ("user_id", "union_id", "open_user_id", "name", "alias", "position", "mobile", "email",
                       "biz_mail", "telephone", "gender", "avatar", "job_number", "work_place",
                       "hired_date")  # fmt: skip


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _column(values: list[Any]) -> list[Any] | None:
    """One array parameter of dir_upsert_members; None (a NULL array, which unnest pads with NULLs) when no element
    is known, so that a column no event carries is neither encoded nor parsed element by element."""
    for value in values:
        if value is not None:
            return values
    return None


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def link_values(field: str, left: Iterable[str], joined: Iterable[str]) -> dict[str, Any]:
    """A membership list's change as events show it (migration 0011, feed_link_changes): only the ids that changed,
    ``before`` those that left and ``after`` those that joined, each sorted."""
    return {field: {"before": sorted(set(left)), "after": sorted(set(joined))}}


def level_values(before: int | None, after: int | None) -> dict[str, Any] | None:
    """An admin's level change, None when it is unknown on both sides."""
    return None if before is None and after is None else {"level": {"before": before, "after": after}}


class Directory:
    """The directory of one corp, as seen through one connection."""

    def __init__(self, conn: asyncpg.Connection, corp: int, source: Source) -> None:
        self.conn = conn
        self.corp = corp
        self.source = source
        self.changes: list[Change] = []

    @property
    def _source(self) -> tuple[str, int | None, int | None]:
        """The change-log source parameters of the statements that log their own change."""
        return self.source.kind, self.source.inbox_id, self.source.sync_run_id

    async def log(
        self, entity: str, entity_id: str, op: str, fields: Iterable[str] = (), values: Mapping[str, Any] | None = None
    ) -> Change:
        """Log one change; ``values`` the changed fields' ``{"before", "after"}`` where the caller knows them."""
        change = Change(entity, entity_id, op, tuple(fields))
        await self.conn.execute(
            q("dir_log_change"),
            self.corp,
            entity,
            entity_id,
            op,
            list(change.fields) or None,
            self.source.kind,
            self.source.inbox_id,
            self.source.sync_run_id,
            values,
        )
        self.changes.append(change)
        return change

    # --- departments --------------------------------------------------------------------------------

    async def upsert_department(self, dept: Department) -> Change | None:
        row = await self.conn.fetchrow(
            q("dir_upsert_department"),
            self.corp,
            dept.dept_id,
            dept.parent_id,
            dept.name,
            dept.name_en,
            dept.order,
            None if dept.leaders is None else list(dept.leaders),
            *self._source,
        )
        if row is None:
            return None
        change = Change("department", dept.dept_id, "create" if row["created"] else "update", tuple(row["fields"]))
        self.changes.append(change)  # logged by the same statement
        return change

    async def delete_department(self, dept_id: str) -> DepartmentRemoval:
        row = await self.conn.fetchrow(q("dir_delete_department"), self.corp, dept_id)
        removal = DepartmentRemoval(bool(row["deleted"]), int(row["children"]), tuple(row["members"]))
        if removal.deleted:
            await self.log("department", dept_id, "delete")
        before: dict[str, list[str]] = orjson.loads(row["departments_before"] or "{}")
        for user_id in removal.members:
            old = before.get(user_id, [dept_id])
            values = {"departments": {"before": old, "after": [d for d in old if d != dept_id]}}
            await self.log("member", user_id, "update", ("departments",), values)
        for tag_id in row["tags"]:
            await self.log("tag", tag_id, "update", ("departments",), link_values("departments", [dept_id], ()))
        return removal

    async def unknown_departments(self, dept_ids: Iterable[str]) -> tuple[str, ...]:
        ids = _unique(dept_ids)
        if not ids:
            return ()
        found = await self.conn.fetchval(q("dir_unknown_departments"), self.corp, ids)
        return tuple(found or ())

    # --- members ------------------------------------------------------------------------------------

    async def upsert_member(self, member: Member, *, reactivate: Reactivate = Reactivate.NO) -> Change | None:
        """Create or update; memberships are replaced when ``member.departments`` is known."""
        change, _ = await self.upsert_member_checked(member, reactivate=reactivate)
        return change

    async def upsert_member_checked(
        self, member: Member, *, reactivate: Reactivate = Reactivate.NO
    ) -> tuple[Change | None, tuple[str, ...]]:
        """``upsert_member``, also saying which of the member's departments are not known locally.

        A new userid with the unionid of a stored member is that member back under a new userid: it is renamed
        first (``adopt_union``), so the person keeps its localId."""
        if member.union_id is not None:
            await self.adopt_union(member.user_id, member.union_id)
        row = await self._upsert_member(member, reactivate)
        if row["id"] is None:  # inserted by someone else meanwhile, nothing written: now the statement sees it
            row = await self._upsert_member(member, reactivate)
            if row["id"] is None:
                raise MemberRaced(member.user_id)
        unknown = tuple(row["unknown_departments"])
        if row["op"] is None:
            return None, unknown
        change = Change("member", member.user_id, row["op"], tuple(row["fields"]))  # logged by the same statement
        self.changes.append(change)
        if change.op == "create":  # a new member has its person in the local user pool from the start
            await users.register(self.conn, self.corp, [member.user_id])
        return change, unknown

    async def _upsert_member(self, member: Member, reactivate: Reactivate) -> asyncpg.Record:
        """One ``dir_upsert_member``: its row (id NULL when a member inserted by someone else since the statement's
        snapshot kept it from writing anything)."""
        by_dept = {m.dept_id: m for m in member.departments} if member.departments is not None else None
        row: asyncpg.Record = await self.conn.fetchrow(
            q("dir_upsert_member"),
            self.corp,
            member.user_id,
            member.union_id,
            member.open_user_id,
            member.name,
            member.alias,
            member.position,
            member.mobile,
            member.email,
            member.biz_mail,
            member.telephone,
            member.gender,
            member.avatar,
            member.job_number,
            member.work_place,
            member.hired_date,
            None if member.direct_leaders is None else list(member.direct_leaders),
            member.platform_status,
            member.extattr,
            member.main_dept_id,
            reactivate.value,
            None if by_dept is None else list(by_dept),
            None if by_dept is None else [m.is_leader for m in by_dept.values()],
            None if by_dept is None else [m.order for m in by_dept.values()],
            self.source.kind,
            self.source.inbox_id,
            self.source.sync_run_id,
        )
        return row

    async def adopt_union(self, user_id: str, union_id: str) -> str | None:
        """Rename the one stored member with ``union_id`` to ``user_id`` when ``user_id`` is not stored yet; the old
        userid when it did (logged as a 'rename')."""
        old: str | None = await self.conn.fetchval(q("dir_adopt_union"), self.corp, user_id, union_id, *self._source)
        if old is not None:
            self.changes.append(Change("member", user_id, "rename", ("user_id",)))
            await users.follow_rename(self.conn, self.corp, old, user_id)
        return old

    async def upsert_members_checked(
        self, writes: Sequence[MemberWrite]
    ) -> list[tuple[Change | None, tuple[str, ...]]]:
        """``upsert_member_checked`` for each write, in order, in one statement; the user ids must be distinct.

        Raises ``MemberRaced`` when someone else inserted one of the members meanwhile; nothing is written then
        if the caller rolls back (a savepoint or its transaction) and writes them one by one."""
        members = [w.member for w in writes]
        column = [_column([getattr(m, name) for m in members]) for name in _BULK_MEMBER_FIELDS]
        memberships = [
            (k, dept) for k, m in enumerate(members, start=1) if m.departments is not None
            for dept in {d.dept_id: d for d in m.departments}.values()
        ]  # fmt: skip
        rows = await self.conn.fetch(
            q("dir_upsert_members"),
            self.corp,
            *column,
            _column([None if m.direct_leaders is None else _json(m.direct_leaders) for m in members]),
            _column([m.platform_status for m in members]),
            _column([None if m.extattr is None else _json(m.extattr) for m in members]),
            _column([m.main_dept_id for m in members]),
            [w.reactivate.value for w in writes],
            [m.departments is not None for m in members],
            [self.source.inbox_id if w.inbox_id is None else w.inbox_id for w in writes],
            [k for k, _ in memberships],
            [d.dept_id for _, d in memberships],
            _column([d.is_leader for _, d in memberships]),
            _column([d.order for _, d in memberships]),
            self.source.kind,
            self.source.sync_run_id,
        )
        results: list[tuple[Change | None, tuple[str, ...]]] = []
        for member, row in zip(members, rows, strict=True):
            if row["id"] is None:
                raise MemberRaced(member.user_id)
            change = None if row["op"] is None else Change("member", member.user_id, row["op"], tuple(row["fields"]))
            if change is not None:
                self.changes.append(change)
            results.append((change, tuple(row["unknown_departments"])))
        return results  # a new member was linked to its person by the same statement

    async def offline_member(self, user_id: str, reason: str) -> bool:
        member_id = await self.conn.fetchval(q("dir_offline_member"), self.corp, user_id, reason, *self._source)
        if member_id is None:
            return False
        self.changes.append(Change("member", user_id, "offline", ("status", "offline_reason", "offline_at")))
        return True

    async def rename_member(self, old_user_id: str, new_user_id: str) -> bool:
        """Give a member a new user id, keeping its local id and links; False when nothing was renamed."""
        member_id = await self.conn.fetchval(q("dir_rename_member"), self.corp, old_user_id, new_user_id)
        if member_id is None:
            return False
        values = {"user_id": {"before": old_user_id, "after": new_user_id}}
        await self.log("member", new_user_id, "rename", ("user_id",), values)
        await users.follow_rename(self.conn, self.corp, old_user_id, new_user_id)
        return True

    async def member_states(self, user_ids: Iterable[str]) -> dict[str, MemberState]:
        """(status, offline_reason) of the known members among ``user_ids``."""
        ids = _unique(user_ids)
        if not ids:
            return {}
        rows = await self.conn.fetch(q("dir_member_states"), self.corp, ids)
        return {r["user_id"]: (r["status"], r["offline_reason"]) for r in rows}

    async def active_member_count(self) -> int:
        count: int = await self.conn.fetchval(q("dir_active_member_count"), self.corp)
        return count

    # --- tags (WeCom) -------------------------------------------------------------------------------

    async def upsert_tag(self, tag_id: str, name: str | None) -> Change | None:
        row = await self.conn.fetchrow(q("dir_upsert_tag"), self.corp, tag_id, name)
        if row is None:
            return None
        return await self.log("tag", tag_id, "create" if row["created"] else "update", row["fields"], row["changes"])

    async def change_tag_links(
        self,
        tag_id: str,
        *,
        add_users: Iterable[str] = (),
        remove_users: Iterable[str] = (),
        add_depts: Iterable[str] = (),
        remove_depts: Iterable[str] = (),
    ) -> Change | None:
        values: dict[str, Any] = {}
        for field, add, remove in (
            ("members", ("dir_tag_add_members", add_users), ("dir_tag_remove_members", remove_users)),
            ("departments", ("dir_tag_add_departments", add_depts), ("dir_tag_remove_departments", remove_depts)),
        ):
            joined, left = await self._links(tag_id, add), await self._links(tag_id, remove)
            if joined or left:
                values |= link_values(field, left, joined)
        return await self.log("tag", tag_id, "update", values, values) if values else None

    async def _links(self, owner: str, statement: tuple[str, Iterable[str]]) -> list[str]:
        """Run a link statement (``dir_tag_add_members``, ...) for ``owner``: the ids it added or removed."""
        name, ids = statement
        unique = _unique(ids)
        return [r[0] for r in await self.conn.fetch(q(name), self.corp, owner, unique)] if unique else []

    # --- roles (DingTalk labels) and admins ---------------------------------------------------------

    async def upsert_role(self, role_id: str, name: str | None, group_name: str | None = None) -> Change | None:
        row = await self.conn.fetchrow(q("dir_upsert_role"), self.corp, role_id, name, group_name)
        if row is None:
            return None
        return await self.log("role", role_id, "create" if row["created"] else "update", row["fields"], row["changes"])

    async def delete_role(self, role_id: str) -> bool:
        row = await self.conn.fetchrow(q("dir_delete_role"), self.corp, role_id)
        if not row["deleted"]:
            return False
        await self.log("role", role_id, "delete")
        return True

    async def change_role_members(
        self, role_id: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> Change | None:
        joined = await self._links(role_id, ("dir_role_add_members", add))
        left = await self._links(role_id, ("dir_role_remove_members", remove))
        if not joined and not left:
            return None
        return await self.log("role", role_id, "update", ("members",), link_values("members", left, joined))

    async def add_admin(self, user_id: str, level: int | None = None) -> bool:
        row = await self.conn.fetchrow(q("dir_add_admin"), self.corp, user_id, level)
        if row is None:
            return False
        await self.log("admin", user_id, "create", (), level_values(None, row["level"]))
        return True

    async def remove_admin(self, user_id: str) -> bool:
        row = await self.conn.fetchrow(q("dir_remove_admin"), self.corp, user_id)
        if row is None:
            return False
        await self.log("admin", user_id, "delete", (), level_values(row["level"], None))
        return True
