"""``Corp``: the JitAI corp operations (initCorp … getAgentId) for one corp, in Python style.

Reads answer from the local copy in PostgreSQL; ``init_corp``, ``sync_corp``, ``get_third_corp_data`` and
``get_client`` reach the platform. Writes are local: ``offline_member`` never calls the platform.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import TracebackType

import aiohttp
import asyncpg

import handlers.api.reads as reads
import handlers.api.writes as writes
from handlers.api.data import CorpData, LocalCorpData
from handlers.api.lookup import get_agent_id, masked_auth_config, resolve
from handlers.api.paging import DEFAULT_LIMIT, Page
from handlers.api.register import GivenSnapshot, register_members
from handlers.api.views import AdminView, CorpInfo, DeptView, MemberView, RoleMemberView, SignatureView, SyncRunView
from handlers.clients import PlatformClient, http_session, make_client
from handlers.clients.protocol import Progress, RootLookup
from handlers.config import AppConfig, CorpConfig, WecomProxyCorp
from handlers.errors import CorpsyncError, InvalidInput, NoRootDept, UnknownRecord
from handlers.model import Snapshot
from handlers.store import merge
from handlers.store import reads as stored
from handlers.store.directory import Directory
from handlers.sync.fullsync import RunStatus, SyncResult, describe_error, run_full_sync

log = logging.getLogger("corpsync.api")


class Corp:
    """One corp. Build it with ``await Corp.open(pool, config, name)`` (or ``receiver.api.get_corp(app, name)``).

    The pool must come from ``handlers.store.pool.create_pool``. Without a ``session`` the Corp opens its own for
    platform calls when one is needed; ``aclose()`` (or ``async with``) closes it. ``clients`` makes the
    platform client of a corp config: inside ``corpsync serve`` it is the app's own, so the Corp's calls share
    the process's rate limiters with the worker and the scheduler and are counted in its metrics.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        app: AppConfig,
        config: CorpConfig,
        row_id: int,
        *,
        session: aiohttp.ClientSession | None = None,
        clients: Callable[[CorpConfig], PlatformClient] | None = None,
    ) -> None:
        self._pool = pool
        self._app = app
        self.config = config
        self.row_id = row_id
        self._session = session
        self._clients = clients
        self._own_session: aiohttp.ClientSession | None = None

    @classmethod
    async def open(
        cls,
        pool: asyncpg.Pool,
        config: AppConfig,
        name: str,
        session: aiohttp.ClientSession | None = None,
        *,
        clients: Callable[[CorpConfig], PlatformClient] | None = None,
    ) -> Corp:
        corp, row_id = await resolve(pool, config, name)
        return cls(pool, config, corp, row_id, session=session, clients=clients)

    async def aclose(self) -> None:
        if self._own_session is not None:
            await self._own_session.close()
            self._own_session = None

    async def __aenter__(self) -> Corp:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- properties (JitAI: title, fullName, corpFullName, authConfig) --------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def title(self) -> str:
        return self.config.title

    @property
    def full_name(self) -> str:
        return f"corps.{self.config.name}"

    @property
    def corp_full_name(self) -> str:
        return self.full_name

    @property
    def corp_id(self) -> str:
        return self.config.corp_id

    @property
    def auth_full_name(self) -> str | None:
        return f"auths.{self.config.auth.name}" if isinstance(self.config, WecomProxyCorp) else None

    @property
    def auth_config(self) -> Mapping[str, str | None]:
        """The credentials the corp uses, every secret shown as ``***``."""
        return masked_auth_config(self.config)

    # -- the platform ---------------------------------------------------------------------------------

    def get_client(self) -> PlatformClient:
        """The platform client of this corp (tokens shared through the database)."""
        if self._clients is not None:
            return self._clients(self.config)
        session = self._session
        if session is None:
            if self._own_session is None:
                self._own_session = http_session()
            session = self._own_session
        return make_client(self.config, session, self._pool)

    async def sync_corp(
        self, *, allow_deletes: bool = False, trigger: str = "manual", progress: Progress | None = None
    ) -> SyncResult:
        """A full sync now (or ALREADY_RUNNING with the run in progress); see handlers.sync.fullsync."""
        return await run_full_sync(
            self._pool, self.row_id, self.config, self.get_client(), trigger=trigger, allow_deletes=allow_deletes,
            progress=progress,
        )  # fmt: skip

    async def has_good_sync(self) -> bool:
        """Whether a full sync of the corp has succeeded (or been quarantined) yet."""
        return await stored.has_good_sync(self._pool, self.row_id)

    async def init_corp(self, *, progress: Progress | None = None) -> SyncResult:
        """The first full sync of the corp (a later call syncs again: JitAI runs initCorp once per corp)."""
        synced = await self.has_good_sync()
        return await self.sync_corp(trigger="manual" if synced else "first", progress=progress)

    async def get_third_corp_data(self, progress: Progress | None = None) -> CorpData:
        """Read the platform's whole directory; nothing is written."""
        snapshot = await self.get_client().fetch_snapshot(progress)
        return CorpData(self.full_name, self.corp_id, snapshot)

    async def bulk_register(
        self, corp_data: CorpData | Snapshot, member_ids: Iterable[str] | None = None, *, allow_deletes: bool = False
    ) -> SyncResult:
        """Write a directory read before (``get_third_corp_data``).

        Without ``member_ids`` it is a full sync from that data: one recorded run, the deletion guard on.
        With them, only those members are created or updated (no removals, no run record); an operator
        offline stays offline.
        """
        if not isinstance(corp_data, CorpData | Snapshot):  # checked before anything is written
            raise InvalidInput("corpData", "must be the CorpData getThirdCorpData returned")
        if isinstance(corp_data, CorpData) and corp_data.corp_id != self.corp_id:
            raise InvalidInput("corpData", "holds the directory of another corp")
        snapshot = corp_data.snapshot if isinstance(corp_data, CorpData) else corp_data
        if member_ids is None:
            return await run_full_sync(
                self._pool, self.row_id, self.config, GivenSnapshot(snapshot), trigger="bulk_register",
                allow_deletes=allow_deletes,
            )  # fmt: skip
        counts = await register_members(self._pool, self.row_id, snapshot, writes.check_ids("memberIds", member_ids))
        return SyncResult(self.name, "bulk_register", RunStatus.SUCCEEDED, None, counts)

    async def get_agent_id(self, corp_id: str | None = None, suite_id: str | None = None) -> str | None:
        """The agent id of a 代开发 / suite tenant; by default this corp under its own suite."""
        own = self.config.auth.suite_id if isinstance(self.config, WecomProxyCorp) else None
        if suite_id is None and own is None:
            raise InvalidInput("suiteId", "required: this corp is not a suite tenant")
        return await get_agent_id(self._pool, self._app, corp_id or self.corp_id, suite_id or own or "")

    # -- the local copy -------------------------------------------------------------------------------

    async def get_corp_info(self) -> CorpInfo:
        row = await stored.corp_row(self._pool, self.name)
        stats = await stored.corp_stats(self._pool, self.row_id)
        return CorpInfo(
            name=self.name,
            title=self.title,
            full_name=self.full_name,
            corp_full_name=self.corp_full_name,
            type=self.config.type.value,
            platform=self.config.platform.value,
            corp_id=self.corp_id,
            auth_full_name=self.auth_full_name,
            status=row["status"] if row is not None else "active",
            root_dept_id=row["root_dept_id"] if row is not None else None,
            auth_config=self.auth_config,
            department_count=stats["departments"],
            active_member_count=stats["active_members"],
            offline_member_count=stats["offline_members"],
            last_good_sync_at=stats["last_good_sync_at"],
        )

    async def get_local_corp_data(self) -> LocalCorpData:
        """The whole local directory of the corp, read in one consistent snapshot."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            depts = await reads.all_depts(conn, self.row_id, self.full_name)
            try:
                root: str | None = (await reads.root_dept(conn, self.row_id, self.full_name)).dept_id
            except UnknownRecord:
                root = None
            return LocalCorpData(
                self.full_name, self.corp_id, root, depts,
                await reads.all_members(conn, self.row_id, self.full_name, reads.MemberFilter()),
                await reads.all_roles(conn, self.row_id),
                await reads.all_tags(conn, self.row_id),
                await reads.all_admins(conn, self.row_id),
                await reads.local_users(conn, self.row_id),
            )  # fmt: skip

    async def get_root_dept(self) -> DeptView:
        """corps.root_dept_id (set by full sync), else the top of the stored tree; never assumes "1".

        With no department stored yet (a 代开发 corp before its first sync) the root is created, as the JitAI
        element does: read alone from the platform (the root a full sync would take) and stored."""
        try:
            return await reads.root_dept(self._pool, self.row_id, self.full_name)
        except UnknownRecord:
            pass
        client = self.get_client()
        if not isinstance(client, RootLookup):
            raise NoRootDept("its client cannot read the root alone: run syncCorp")
        try:
            root = await client.root_department()
        except CorpsyncError as exc:
            raise NoRootDept(describe_error(exc)) from exc
        if root is None:
            raise NoRootDept("no department is visible to the app")
        async with self._pool.acquire() as conn, conn.transaction():
            await Directory(conn, self.row_id, writes.API).upsert_department(root)
            await merge.set_root(conn, self.row_id, root.dept_id)
        log.info("root department created", extra={"action": "api_root_dept_created", "corp": self.name})
        return await reads.root_dept(self._pool, self.row_id, self.full_name)

    async def get_depts(self) -> tuple[DeptView, ...]:
        return await reads.all_depts(self._pool, self.row_id, self.full_name)

    async def get_dept(self, dept_id: str) -> DeptView:
        (dept,) = writes.check_ids("deptId", [dept_id])
        return await reads.dept(self._pool, self.row_id, self.full_name, dept)

    async def get_members(
        self, status: str | None = None, *, dept_id: str | None = None, updated_since: datetime | None = None
    ) -> tuple[MemberView, ...]:
        where = reads.MemberFilter(status, dept_id, updated_since)
        return await reads.all_members(self._pool, self.row_id, self.full_name, where)

    async def get_member(self, member_id: str) -> MemberView:
        (member,) = writes.check_ids("memberId", [member_id])
        return await reads.member(self._pool, self.row_id, self.full_name, member)

    async def page_depts(self, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page[DeptView]:
        return await reads.dept_page(self._pool, self.row_id, self.full_name, limit, cursor)

    async def page_members(
        self, where: reads.MemberFilter | None = None, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[MemberView]:
        where = where or reads.MemberFilter()
        return await reads.member_page(self._pool, self.row_id, self.full_name, where, limit, cursor)

    async def get_admin(self) -> tuple[str, ...]:
        """The member ids of the corp's admins (platform and local)."""
        return tuple(a.member_id for a in await reads.all_admins(self._pool, self.row_id))

    async def page_admins(self, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page[AdminView]:
        return await reads.admin_page(self._pool, self.row_id, limit, cursor)

    async def get_user_roles(self, member_id: str) -> tuple[RoleMemberView, ...]:
        local = await reads.local_ids(self._pool, self.row_id, [member_id])
        return await reads.member_roles(self._pool, self.row_id, member_id, local[member_id])

    async def get_user_signature(self, member_id: str) -> SignatureView:
        local = await reads.local_ids(self._pool, self.row_id, [member_id])
        row = await stored.signature(self._pool, self.row_id, local[member_id])
        if row is None:
            return SignatureView(member_id, None, None)
        return SignatureView(member_id, row["signature"], row["updated_at"])

    async def page_sync_runs(self, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page[SyncRunView]:
        return await reads.sync_run_page(self._pool, self.row_id, limit, cursor)

    async def get_sync_run(self, run_id: int) -> SyncRunView:
        return await reads.sync_run(self._pool, self.row_id, run_id)

    async def last_sync_run_id(self) -> int:
        """The newest run id of the corp (0 before the first run)."""
        return await stored.last_sync_run_id(self._pool, self.row_id)

    async def running_sync_run(self, after: int = 0) -> int | None:
        """The newest run still running with an id above ``after``."""
        return await stored.running_sync_run(self._pool, self.row_id, after)

    # -- local writes (change_log source 'api') -------------------------------------------------------

    async def offline_member(self, member_ids: Iterable[str]) -> tuple[MemberView, ...]:
        """Take members offline in corpsync only (reason 'operator'); the platform is not called."""
        ids = writes.check_ids("memberIds", member_ids)
        async with self._pool.acquire() as conn, conn.transaction():
            changed = await writes.offline_members(conn, self.row_id, ids)
            found = await reads.members(conn, self.row_id, self.full_name, ids)
        log.info("members offlined", extra={"action": "api_offline_members", "corp": self.name, "count": len(changed)})
        return found

    async def set_user_role(self, member_id: str, role_ids: Iterable[str]) -> tuple[RoleMemberView, ...]:
        """Replace the member's local roles; returns the roles it set (the member's platform roles, e.g. DingTalk
        labels, are kept and read with ``get_user_roles``)."""
        (member,) = writes.check_ids("memberId", [member_id])
        roles = writes.check_ids("roleIds", role_ids)
        async with self._pool.acquire() as conn, conn.transaction():
            local_id = await writes.set_member_roles(conn, self.row_id, member, roles)
            found = await reads.member_roles(conn, self.row_id, member, local_id)
        log.info("member roles set", extra={"action": "api_set_user_role", "corp": self.name, "roles": len(roles)})
        return tuple(r for r in found if r.source == "local")  # exactly the roles given: they replaced the local ones

    async def set_admin(self, member_ids: Iterable[str]) -> tuple[AdminView, ...]:
        """Replace the local admins; returns every admin afterwards (platform admins are kept)."""
        ids = writes.check_ids("memberIds", member_ids)
        async with self._pool.acquire() as conn, conn.transaction():
            await writes.set_local_admins(conn, self.row_id, ids)
            found = await reads.all_admins(conn, self.row_id)
        log.info("admins set", extra={"action": "api_set_admin", "corp": self.name, "admins": len(ids)})
        return found

    async def save_user_signature(self, member_id: str, signature: str) -> SignatureView:
        (member,) = writes.check_ids("memberId", [member_id])
        text = writes.check_signature(signature)
        async with self._pool.acquire() as conn, conn.transaction():
            await writes.save_signature(conn, self.row_id, member, text)
        log.info("signature saved", extra={"action": "api_save_signature", "corp": self.name})
        return await self.get_user_signature(member)
