"""DingTalk directory reads for one internal app (protocol/dingtalk.md §5), and the failed-events drain.

Snapshot: ``v2/department/listsub`` breadth-first from the visible root, and ``v2/user/list`` pages of
100 for every department as soon as it is discovered; both APIs run side by side, each paced at its
own 20 calls/s. Department leaders come from the pages' ``leader`` flags, so no per-department
``department/get`` is needed.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable

import handlers.clients.dingtalk_records as rec
from handlers.clients.base import Json, Transport, ident, integer, items, mapping
from handlers.clients.dingtalk_records import FailedEvent
from handlers.clients.dingtalk_walk import DepartmentWalk
from handlers.clients.protocol import Progress
from handlers.clients.snapshot import for_each, is_fatal, run_all, unless_gone
from handlers.clients.tokens import Token
from handlers.clients.wecom import access_token
from handlers.clients.wiring import Wiring
from handlers.config import DingTalkCorp
from handlers.errors import UpstreamError
from handlers.model import Admin, Department, Member, Platform, Role, Snapshot, Tag
from handlers.store.credentials import dingtalk_token_key

log = logging.getLogger("corpsync.clients")

MEMBER_GONE = frozenset({33012, 60121, 50002})  # invalid userid / user not found / out of scope
DEPARTMENT_GONE = frozenset({60003, 50004})  # department not found / out of scope
OUT_OF_SCOPE = frozenset({50004, 60011, 60003})
ROLE_PAGE = 200
FAILED_LIST_MAX_CALLS = 10_000  # a drain never loops forever on a platform that keeps saying has_more


class DingTalkClient:
    platform = Platform.DINGTALK

    def __init__(self, transport: Transport, token: Token, corp: DingTalkCorp) -> None:
        self.transport = transport
        self._token = token
        self._corp = corp
        self._unpersisted: list[FailedEvent] = []  # a failed-list batch whose persist raised

    @property
    def api_calls(self) -> int:
        return self.transport.api_calls

    async def _post(self, api: str, body: Json | None = None) -> Json:
        return await self.transport.call(api, method="POST", body=body or {}, token=self._token, expect="result")

    async def _result(self, api: str, body: Json | None = None) -> Json:
        return mapping((await self._post(api, body)).get("result"))

    async def raw_call(
        self, api: str, *, method: str = "POST", params: dict[str, str] | None = None, body: Json | None = None
    ) -> Json:
        """Any ``oapi`` API with the app's access token, through this corp's rate limits, retries and token
        refresh; the whole answer (errcode 0) as parsed JSON."""
        body = body if body is not None or method != "POST" else {}
        return await self.transport.call(api, method=method, params=params, body=body, token=self._token)

    # -- single records --------------------------------------------------------------------------

    async def member(self, user_id: str) -> Member | None:
        """``v2/user/get``; None when the user left or is outside the app's scope."""
        doc = await unless_gone(self._result("topapi/v2/user/get", {"userid": user_id}), MEMBER_GONE)
        return None if doc is None else rec.member(doc)

    async def department(self, dept_id: str) -> Department | None:
        body = {"dept_id": rec.id_param(dept_id)}
        doc = await unless_gone(self._result("topapi/v2/department/get", body), DEPARTMENT_GONE)
        return None if doc is None else rec.department(doc)

    async def root_department(self) -> Department | None:
        """The root a full sync would take (``sync.root_dept_id``, else department 1, else the authorized top)."""
        return (await self._roots())[0]

    async def tag(self, tag_id: str) -> Tag | None:
        """DingTalk has no tags (its roles are ``roles()``)."""
        return None

    async def admins(self) -> tuple[Admin, ...]:
        return rec.admins((await self._post("topapi/user/listadmin")).get("result"))

    async def member_count(self) -> int | None:
        return integer((await self._result("topapi/user/count", {"only_active": False})).get("count"))

    async def roles(self) -> tuple[Role, ...]:
        """Every role, by ``topapi/role/list`` offset pages."""
        found: list[Role] = []
        for offset in itertools.count(0, ROLE_PAGE):
            result = await self._result("topapi/role/list", {"size": ROLE_PAGE, "offset": offset})
            found.extend(rec.roles(result))
            if not (result.get("hasMore") or result.get("has_more")):
                return tuple(found)
        raise AssertionError("unreachable")  # pragma: no cover

    async def drain_failed_events(self, persist: Callable[[list[FailedEvent]], Awaitable[None]]) -> int:
        """Fetch the failed-push list until it is empty; return how many events were persisted.

        Each call deletes the batch the previous call returned (dingtalk.md §4.1), so every batch is
        persisted before the next call, and a call that may have reached DingTalk is never repeated
        blindly. If ``persist`` raises, the drain stops and the client keeps that batch: the next
        drain persists it first, before asking DingTalk again (which deletes it upstream).
        """
        total = 0
        if self._unpersisted:
            await persist(self._unpersisted)
            total, self._unpersisted = len(self._unpersisted), []
        for _ in range(FAILED_LIST_MAX_CALLS):
            doc = await self.transport.call(
                "call_back/get_call_back_failed_result", token=self._token, retry_transport=False
            )
            batch = rec.failed_events(doc)
            if batch:
                self._unpersisted = batch
                await persist(batch)
                self._unpersisted = []
                total += len(batch)
            if not doc.get("has_more") or not batch:
                break
        log.info(
            "failed events drained",
            extra={"action": "dingtalk_failed_drained", "corp": self._corp.name, "events": total},
        )
        return total

    # -- full snapshot ---------------------------------------------------------------------------

    async def _roots(self) -> list[Department]:
        """The top of what the app sees: ``sync.root_dept_id``, else department 1, else ``auth/scopes``."""
        configured = self._corp.sync.root_dept_id
        try:
            root = await self.department(configured or "1")
        except UpstreamError as exc:
            if exc.errcode not in OUT_OF_SCOPE:
                raise
            root = None
        if root is not None:
            return [root]
        if configured is None:
            roots = [d for d in [await self.department(d) for d in await self._authed_departments()] if d]
            if roots:
                return roots
        hint = "" if configured else "; set sync.root_dept_id to the top department the app can see"
        raise UpstreamError(
            "topapi/v2/department/get",
            50004,
            f"department {configured or '1'} is outside the app's contact scope{hint}",
        )

    async def _authed_departments(self) -> list[str]:
        """``auth/scopes``: the departments of the app's 通讯录权限范围 (empty when it cannot say)."""
        try:
            doc = await self.transport.call("auth/scopes", token=self._token)
        except UpstreamError as exc:
            if is_fatal(exc):
                raise
            return []
        return [d for d in (ident(x) for x in items(mapping(doc.get("auth_org_scopes")).get("authed_dept"))) if d]

    async def role_members(self, roles: tuple[Role, ...]) -> tuple[tuple[str, str], ...]:
        """(role_id, userid) of every role, by ``topapi/role/simplelist`` offset pages."""
        found: list[tuple[str, str]] = []

        async def one(role: Role) -> None:
            for offset in itertools.count(0, ROLE_PAGE):
                body = {"role_id": rec.id_param(role.role_id), "size": ROLE_PAGE, "offset": offset}
                result = await self._result("topapi/role/simplelist", body)
                found.extend((role.role_id, u) for u in rec.user_ids(result))
                if not (result.get("hasMore") or result.get("has_more")):
                    return

        await for_each(roles, one, self.transport.limiter.concurrency)
        return tuple(found)

    async def fetch_snapshot(self, progress: Progress | None = None) -> Snapshot:
        start_calls = self.api_calls
        roots = await self._roots()
        walk = DepartmentWalk(self._post, self.transport.limiter.concurrency, progress)
        aux: dict[str, object] = {}
        skipped: list[str] = []

        async def optional(name: str, fetch: Callable[[], Awaitable[object]]) -> None:
            try:
                aux[name] = await fetch()
            except UpstreamError as exc:
                log.warning(
                    "optional fetch failed",
                    extra={"action": "dingtalk_snapshot_partial", "part": name, "errcode": exc.errcode, "api": exc.api},
                )
                aux[name] = None
                skipped.append(f"{name}: {exc.api} errcode {exc.errcode}")

        async def roles() -> tuple[Role, ...]:
            found = await self.roles()
            aux["roles"] = found
            await optional("role_members", lambda: self.role_members(found))
            return found

        await run_all(walk.run(roots), optional("roles", roles), optional("admins", self.admins))
        return Snapshot(
            root_dept_id=roots[0].dept_id,
            departments=walk.departments(),
            members=walk.members.build(set(walk.depts)),
            roles=aux.get("roles"),  # type: ignore[arg-type] # tuple[Role, ...] | None
            role_members=aux.get("role_members"),  # type: ignore[arg-type] # tuple[tuple[str, str], ...] | None
            admins=aux.get("admins"),  # type: ignore[arg-type] # tuple[Admin, ...] | None
            failed_departments=tuple(sorted(walk.failed, key=lambda d: (len(d), d))),
            api_calls=self.api_calls - start_calls,
            skipped=tuple(skipped),
        )


def dingtalk_client(corp: DingTalkCorp, wiring: Wiring) -> DingTalkClient:
    transport = wiring.transport(
        corp.api_base, f"dingtalk:{corp.app_key}", Platform.DINGTALK, corp.rate_limits, corp.name
    )

    async def fetch() -> tuple[str, float]:
        doc = await transport.call("gettoken", params={"appkey": corp.app_key, "appsecret": corp.app_secret.reveal()})
        return access_token(doc, "gettoken")

    token = wiring.token(dingtalk_token_key(corp.app_key, corp.app_secret.reveal()), "dingtalk", fetch)
    return DingTalkClient(transport, token, corp)


__all__ = ["DingTalkClient", "FailedEvent", "dingtalk_client"]
