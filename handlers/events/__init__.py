"""What event handlers run with: the corp, the directory, the platform client they may call, and their outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import asyncpg

from handlers.clients.protocol import PlatformClient
from handlers.config import AppConfig, SuiteAuth
from handlers.model import Department, Member, Role, Tag
from handlers.store.corps import request_sync
from handlers.store.credentials import Tenant
from handlers.store.directory import Change, Directory, Reactivate, Source
from handlers.store.rows import from_columns

log = logging.getLogger("corpsync.events")


class Outcome(StrEnum):
    DONE = "done"
    IGNORED = "ignored"


@runtime_checkable
class RoleLookup(Protocol):
    """Optional: a client that can read one DingTalk role (label) by id."""

    async def role(self, role_id: str) -> Role | None: ...


@runtime_checkable
class RoleList(Protocol):
    """Optional: a client that lists every role (DingTalk ``topapi/role/list``)."""

    async def roles(self) -> tuple[Role, ...]: ...


class SuiteApi(Protocol):
    """The suite (third-party / 代开发 template) calls of the instruction handlers (handlers.clients.SuiteClient).

    Both store what they learn in ``suite_tenants`` themselves, committed at once.
    """

    async def exchange_auth_code(self, auth_code: str) -> Tenant: ...
    async def get_auth_info(self, corp_id: str) -> Tenant: ...


@dataclass(frozen=True, slots=True)
class CorpRef:
    """One ``corps`` row, as the handlers need it."""

    id: int
    name: str
    platform: str
    type: str
    corp_id: str
    auth_name: str | None
    root_dept_id: str | None
    status: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CorpRef:
        return from_columns(cls, row)


class ClientSource(Protocol):
    async def client(self, corp: CorpRef) -> PlatformClient | None: ...


@dataclass(frozen=True, slots=True)
class Services:
    """Everything beyond the database a handler may use; each part is optional."""

    clients: ClientSource | None = None
    config: AppConfig | None = None
    suite_api: Callable[[SuiteAuth], SuiteApi] | None = None
    pool: asyncpg.Pool | None = None  # autonomous commits (a suite auth code is single-use)


FetchKey = tuple[str, str]  # ('member' | 'department' | 'tag' | 'role', id)

# Parents that are not departments: WeCom's root has parentid 0; DingTalk's root has none.
NO_PARENT = frozenset({"", "0"})


@dataclass
class Shared:
    """What the events of one drain turn share: platform reads (current state is valid for all of them),
    corps rows, and the corps whose full sync was already requested in the open transaction."""

    reads: dict[FetchKey, object] = field(default_factory=dict)  # None = not found upstream
    corps: dict[tuple[int | None, str], CorpRef | None] = field(default_factory=dict)
    requested: set[int] = field(default_factory=set)  # cleared whenever a transaction rolls back


@dataclass
class EventContext:
    """One inbox row being applied, inside its transaction."""

    conn: asyncpg.Connection
    inbox_id: int
    route: str
    stream: str
    corp: CorpRef | None
    services: Services
    shared: Shared = field(default_factory=Shared)
    _directory: Directory | None = None
    _client: PlatformClient | None = None
    _client_checked: bool = False

    def directory(self) -> Directory:
        if self.corp is None:
            raise LookupError("no corp for this event")
        if self._directory is None:
            self._directory = Directory(self.conn, self.corp.id, Source("event", inbox_id=self.inbox_id))
        return self._directory

    async def request_sync(self, reason: str) -> None:
        if self.corp is not None and self.corp.id not in self.shared.requested:
            self.shared.requested.add(self.corp.id)
            await request_sync(self.conn, self.corp.id, reason)
            log.info(
                "full sync requested",
                extra={"action": "sync_requested", "corp": self.corp.name, "reason": reason, "inbox_id": self.inbox_id},
            )

    async def client(self) -> PlatformClient | None:
        if not self._client_checked:
            self._client_checked = True
            if self.corp is not None and self.services.clients is not None:
                self._client = await self.services.clients.client(self.corp)
            if self._client is None:
                await self.request_sync("no_client")  # thin events cannot be completed: reconcile instead
        return self._client

    async def _read(self, kind: str, key: str) -> object:
        reads = self.shared.reads
        if (kind, key) in reads:
            return reads[(kind, key)]
        client = await self.client()
        if client is None:
            return None
        if kind == "member":
            found: object = await client.member(key)
        elif kind == "department":
            found = await client.department(key)
        elif kind == "tag":
            found = await client.tag(key)
        elif kind == "role" and isinstance(client, RoleLookup):
            found = await client.role(key)
        elif kind == "role" and isinstance(client, RoleList):
            roles = await client.roles()
            reads.update({("role", r.role_id): r for r in roles})
            found = next((r for r in roles if r.role_id == key), None)
        else:
            found = None
        reads[(kind, key)] = found
        return found

    async def upsert_member(self, member: Member, reactivate: Reactivate) -> Change | None:
        """Write the member; a department it names that is not known locally marks the corp for a sync."""
        change, unknown = await self.directory().upsert_member_checked(member, reactivate=reactivate)
        if unknown:
            await self.request_sync("unknown_department")
        return change

    async def check_departments(self, dept_ids: Iterable[str]) -> tuple[str, ...]:
        """Request a full sync when any of ``dept_ids`` is not a local department; return the unknown ones."""
        if self.corp is None:
            return ()
        unknown = await self.directory().unknown_departments(d for d in dept_ids if d not in NO_PARENT)
        if unknown:
            await self.request_sync("unknown_department")
        return unknown

    async def fetch_member(self, user_id: str) -> Member | None:
        found = await self._read("member", user_id)
        return found if isinstance(found, Member) else None

    async def fetch_department(self, dept_id: str) -> Department | None:
        found = await self._read("department", dept_id)
        return found if isinstance(found, Department) else None

    async def fetch_tag(self, tag_id: str) -> Tag | None:
        found = await self._read("tag", tag_id)
        return found if isinstance(found, Tag) else None

    async def fetch_role(self, role_id: str) -> Role | None:
        found = await self._read("role", role_id)
        return found if isinstance(found, Role) else None


async def ensure_members(ctx: EventContext, user_ids: tuple[str, ...]) -> tuple[str, ...]:
    """Make sure the members exist locally (fetching unknown ones); return the ids that could not be."""
    directory = ctx.directory()
    known = await directory.member_states(user_ids)
    missing: list[str] = []
    for user_id in user_ids:
        if user_id in known:
            continue
        fetched = await ctx.fetch_member(user_id)
        if fetched is None:
            missing.append(user_id)
        else:
            await ctx.upsert_member(fetched, Reactivate.CONFIRMED)
    if missing:
        await ctx.request_sync("unknown_member")
    return tuple(missing)
