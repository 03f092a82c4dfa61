"""Reads of one corp's local directory, as views and keyset pages (the statements: ``handlers.store.reads``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handlers.api.paging import DEFAULT_LIMIT, Page, check_limit, decode_cursor, page_of
from handlers.api.views import (
    AdminView,
    DeptView,
    LocalUserView,
    MemberView,
    RoleMemberView,
    RoleView,
    SyncRunView,
    TagView,
)
from handlers.errors import InvalidInput, UnknownRecord
from handlers.store import reads as stored
from handlers.store import users

Db = Any  # an asyncpg Connection or Pool; reads need no transaction

STATUSES = ("active", "offline")


@dataclass(frozen=True, slots=True)
class MemberFilter:
    """Which members a list holds: by status, by direct membership of a department, by last change."""

    status: str | None = None
    dept_id: str | None = None
    updated_since: datetime | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise InvalidInput("status", "must be active or offline")
        if self.dept_id is not None and not self.dept_id:
            raise InvalidInput("deptId", "must not be empty")
        if self.updated_since is not None and self.updated_since.tzinfo is None:  # naive: read as UTC
            object.__setattr__(self, "updated_since", self.updated_since.replace(tzinfo=UTC))

    @property
    def args(self) -> tuple[str | None, str | None, datetime | None]:
        return self.status, self.dept_id, self.updated_since


# -- departments -------------------------------------------------------------------------------------


async def dept_page(
    db: Db, corp: int, full_name: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[DeptView]:
    after = decode_cursor("depts", cursor, str)
    rows = await stored.depts_page(db, corp, after, check_limit(limit) + 1)
    total = await stored.depts_count(db, corp)
    items = [DeptView.from_row(r, full_name) for r in rows]
    return page_of("depts", items, [d.dept_id for d in items], limit, total)


async def all_depts(db: Db, corp: int, full_name: str) -> tuple[DeptView, ...]:
    rows = await stored.depts_page(db, corp, None, None)
    return tuple(DeptView.from_row(r, full_name) for r in rows)


async def dept(db: Db, corp: int, full_name: str, dept_id: str) -> DeptView:
    row = await stored.dept(db, corp, dept_id)
    if row is None:
        raise UnknownRecord("department", dept_id)
    return DeptView.from_row(row, full_name)


async def root_dept(db: Db, corp: int, full_name: str) -> DeptView:
    row = await stored.root_dept(db, corp)
    if row is None:
        raise UnknownRecord("department", "root")
    return DeptView.from_row(row, full_name)


# -- members -----------------------------------------------------------------------------------------


async def member_page(
    db: Db,
    corp: int,
    full_name: str,
    where: MemberFilter,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[MemberView]:
    after = decode_cursor("members", cursor, int)
    rows = await stored.members_page(db, corp, *where.args, after, check_limit(limit) + 1)
    total = await stored.members_count(db, corp, *where.args)
    items = [MemberView.from_row(r, full_name) for r in rows]
    return page_of("members", items, [int(m.local_id) for m in items], limit, total)


async def all_members(db: Db, corp: int, full_name: str, where: MemberFilter) -> tuple[MemberView, ...]:
    rows = await stored.members_page(db, corp, *where.args, None, None)
    return tuple(MemberView.from_row(r, full_name) for r in rows)


async def members(db: Db, corp: int, full_name: str, member_ids: Iterable[str]) -> tuple[MemberView, ...]:
    """The members with these user ids, in local-id order; an unknown id is an UnknownRecord."""
    ids = list(dict.fromkeys(member_ids))
    rows = await stored.members_by_user_ids(db, corp, ids)
    missing = sorted(set(ids) - {r["user_id"] for r in rows})
    if missing:
        raise UnknownRecord("member", *missing)
    return tuple(MemberView.from_row(r, full_name) for r in rows)


async def member(db: Db, corp: int, full_name: str, member_id: str) -> MemberView:
    return (await members(db, corp, full_name, [member_id]))[0]


async def local_ids(db: Db, corp: int, member_ids: Iterable[str]) -> dict[str, int]:
    """Local ids by user id; an unknown user id is an UnknownRecord (naming every unknown one)."""
    ids = list(dict.fromkeys(member_ids))
    found = await stored.member_keys(db, corp, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise UnknownRecord("member", *sorted(missing))
    return found


async def member_roles(db: Db, corp: int, member_id: str, local_id: int) -> tuple[RoleMemberView, ...]:
    rows = await stored.member_roles(db, corp, local_id)
    return tuple(
        RoleMemberView(member_id, r["role_id"], r["name"], r["group_name"], r["source"], r["created_at"]) for r in rows
    )


# -- admins, roles, tags -----------------------------------------------------------------------------


def _admin(row: Any) -> AdminView:
    return AdminView(row["user_id"], row["name"], row["status"], row["level"], row["source"], row["created_at"])


async def admin_page(db: Db, corp: int, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page[AdminView]:
    after = decode_cursor("admins", cursor, int)
    rows = await stored.admins_page(db, corp, after, check_limit(limit) + 1)
    total = await stored.admins_count(db, corp)
    return page_of("admins", [_admin(r) for r in rows], [r["member"] for r in rows], limit, total)


async def all_admins(db: Db, corp: int) -> tuple[AdminView, ...]:
    return tuple(_admin(r) for r in await stored.admins_page(db, corp, None, None))


async def local_users(db: Db, corp: int) -> tuple[LocalUserView, ...]:
    """The local user pool of the corp: the people its members are linked to."""
    return tuple(LocalUserView.from_row(r) for r in await users.of_corp(db, corp))


async def all_roles(db: Db, corp: int) -> tuple[RoleView, ...]:
    rows = await stored.roles(db, corp)
    return tuple(RoleView(r["role_id"], r["name"], r["group_name"], r["source"], tuple(r["member_ids"])) for r in rows)


async def all_tags(db: Db, corp: int) -> tuple[TagView, ...]:
    rows = await stored.tags(db, corp)
    return tuple(TagView(r["tag_id"], r["name"], tuple(r["member_ids"]), tuple(r["dept_ids"])) for r in rows)


# -- sync runs ---------------------------------------------------------------------------------------


async def sync_run_page(db: Db, corp: int, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page[SyncRunView]:
    before = decode_cursor("syncRuns", cursor, int)
    rows = await stored.sync_runs_page(db, corp, before, check_limit(limit) + 1)
    total = await stored.sync_runs_count(db, corp)
    return page_of("syncRuns", [SyncRunView.from_row(r) for r in rows], [r["id"] for r in rows], limit, total)


async def sync_run(db: Db, corp: int, run_id: int) -> SyncRunView:
    row = await stored.sync_run(db, corp, run_id)
    if row is None:
        raise UnknownRecord("sync run", str(run_id))
    return SyncRunView.from_row(row)
