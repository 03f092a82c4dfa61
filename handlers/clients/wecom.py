"""WeCom directory reads for one corp: a self-built app, or a suite / 代开发 tenant with its corp token.

Snapshot recipe (protocol/wecom.md §6), fewest calls first: ``department/list`` once (or, when it is
forbidden (48009/48002), ``department/simplelist`` + ``department/get`` per department), then
``user/list`` per department, many in flight. With the 通讯录同步 secret, ``user/list_id`` cursor pages
give the authoritative membership; users it names that no department page returned are read with
``user/get``. ``tag/list`` + ``tag/get`` and ``agent/get_admin_list`` run alongside.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import handlers.clients.wecom_records as rec
from handlers.clients.base import Json, Transport, integer, items, text
from handlers.clients.protocol import Progress
from handlers.clients.snapshot import (
    MemberBook,
    Ticker,
    for_each,
    is_fatal,
    run_all,
    subtree,
    unless_gone,
    visible_root,
)
from handlers.clients.tokens import Token, TokenFetch, TokenSource
from handlers.clients.wiring import Wiring
from handlers.config import Secret, SyncSettings, WecomInnerCorp
from handlers.errors import UpstreamError
from handlers.model import Admin, Department, Member, Membership, Platform, Snapshot, Tag
from handlers.store.credentials import wecom_token_key

log = logging.getLogger("corpsync.clients")

MEMBER_GONE = frozenset({60111, 46004, 60011})  # userid not found / member does not exist / not visible
DEPARTMENT_GONE = frozenset({60123, 60003, 60011})  # invalid department id / not found / not visible
TAG_GONE = frozenset({40068, 60011})  # invalid tagid / not visible
LIST_FORBIDDEN = frozenset({48009, 48002, 60011})  # department/list refused: use simplelist + get
LIST_ID_LIMIT = 10_000


def cgi_base(api_base: str) -> str:
    """The base URL of WeCom's server API under an ``apiBase`` (https://qyapi.weixin.qq.com by default)."""
    return api_base.rstrip("/") + "/cgi-bin"


def gettoken(transport: Transport, corp_id: str, secret: Secret) -> TokenFetch:
    """``gettoken?corpid=&corpsecret=``: self-built apps, and 代开发 (the permanent code is the secret)."""

    async def fetch() -> tuple[str, float]:
        doc = await transport.call("gettoken", params={"corpid": corp_id, "corpsecret": secret.reveal()})
        return access_token(doc, "gettoken")

    return fetch


def access_token(doc: Json, api: str, field: str = "access_token") -> tuple[str, float]:
    value = text(doc.get(field))
    if value is None:
        raise UpstreamError(api, None, f"answer has no {field}")
    return value, float(integer(doc.get("expires_in")) or 7200)


class WecomClient:
    """Reads one WeCom corp's directory with the given tokens."""

    platform = Platform.WECOM

    def __init__(
        self,
        transport: Transport,
        *,
        app_token: TokenSource,
        contact_token: TokenSource | None,
        agent_id: Callable[[], Awaitable[str | None]],
        sync: SyncSettings,
    ) -> None:
        self.transport = transport
        self._app = app_token
        self._contact = contact_token
        self._agent_id = agent_id
        self._sync = sync

    @property
    def api_calls(self) -> int:
        return self.transport.api_calls

    async def _get(
        self,
        api: str,
        params: dict[str, str] | None = None,
        token: TokenSource | None = None,
        expect: str | None = None,
    ) -> Json:
        return await self.transport.call(api, params=params, token=token or self._app, expect=expect)

    async def _post(self, api: str, body: Json, token: TokenSource | None = None, expect: str | None = None) -> Json:
        return await self.transport.call(api, method="POST", body=body, token=token or self._app, expect=expect)

    async def raw_call(
        self, api: str, *, method: str = "GET", params: dict[str, str] | None = None, body: Json | None = None
    ) -> Json:
        """Any server API under ``cgi-bin/`` with the app's (or tenant's) access token, through this corp's rate
        limits, retries and token refresh; the whole answer (errcode 0) as parsed JSON."""
        return await self.transport.call(api, method=method, params=params, body=body, token=self._app)

    # -- single records (thin events) ------------------------------------------------------------

    async def member(self, user_id: str) -> Member | None:
        """``user/get``; None when the member is gone or out of the visible range."""
        doc = await unless_gone(self._get("user/get", {"userid": user_id}), MEMBER_GONE)
        return None if doc is None else rec.member(doc)

    async def department(self, dept_id: str) -> Department | None:
        doc = await unless_gone(self._get("department/get", {"id": dept_id}), DEPARTMENT_GONE)
        found = None if doc is None else doc.get("department")
        return rec.department(found) if isinstance(found, dict) else None

    async def root_department(self) -> Department | None:
        """The root a full sync would take (``sync.root_dept_id``, else the top of what is visible), read alone."""
        depts = await self.departments()
        root = visible_root(depts, self._sync.root_dept_id)
        found = next((d for d in depts if d.dept_id == root), None)
        return found if found is not None or root is None else await self.department(root)

    async def tag(self, tag_id: str) -> Tag | None:
        doc = await unless_gone(self._get("tag/get", {"tagid": tag_id}), TAG_GONE)
        return None if doc is None else rec.tag(tag_id, doc)

    async def admins(self) -> tuple[Admin, ...] | None:
        """The app's admins (``agent/get_admin_list``); None without an agent id."""
        agent_id = await self._agent_id()
        if agent_id is None:
            return None
        body: Json = {"agentid": integer(agent_id) if agent_id.isdigit() else agent_id}
        return rec.admins(await self._post("agent/get_admin_list", body))

    async def member_count(self) -> int | None:
        """Members of the corp by ``user/list_id`` (needs the contact-sync secret), else None.

        ``list_id`` always covers the whole corp, so with a configured sub-tree root the count cannot be
        compared with the local one: None then too (the drift check skips it).
        """
        if self._contact is None or self._sync.root_dept_id:
            return None
        return len(await self.list_id())

    async def list_id(self) -> dict[str, list[str]]:
        """userid → department ids, by ``user/list_id`` cursor pages (contact-sync secret only)."""
        if self._contact is None:
            raise UpstreamError("user/list_id", None, "no contact-sync secret configured")
        found: dict[str, list[str]] = {}
        cursor: str | None = None
        while True:
            body: Json = {"limit": LIST_ID_LIMIT} if cursor is None else {"cursor": cursor, "limit": LIST_ID_LIMIT}
            pairs, cursor = rec.list_id_page(await self._post("user/list_id", body, self._contact, "dept_user"))
            for user_id, dept_id in pairs:
                found.setdefault(user_id, []).append(dept_id)
            if cursor is None:
                return found

    async def departments(self, ticker: Ticker | None = None) -> list[Department]:
        """Every visible department (under ``sync.root_dept_id`` when set)."""
        root = self._sync.root_dept_id
        params = {"id": root} if root else {}
        try:
            doc = await self._get("department/list", params, expect="department")
        except UpstreamError as exc:
            if exc.errcode not in LIST_FORBIDDEN:
                raise
            log.info(
                "department/list refused", extra={"action": "wecom_department_list_fallback", "errcode": exc.errcode}
            )
            return await self._departments_one_by_one(params, ticker)
        found = [d for d in (rec.department(x) for x in items(doc.get("department"))) if d is not None]
        if ticker is not None:
            ticker.grow(len(found))
            ticker.step(len(found))
        return found

    async def _departments_one_by_one(self, params: dict[str, str], ticker: Ticker | None) -> list[Department]:
        doc = await self._get("department/simplelist", params, self._contact)
        skeleton = [d for d in (rec.department(x) for x in items(doc.get("department_id"))) if d is not None]
        if ticker is not None:
            ticker.grow(len(skeleton))
        detailed: dict[str, Department] = {}
        refused = False

        async def one(dept: Department) -> None:
            nonlocal refused
            if not refused:
                try:
                    full = await self.department(dept.dept_id)
                    if full is not None:
                        detailed[dept.dept_id] = full
                except UpstreamError as exc:
                    if exc.errcode not in LIST_FORBIDDEN:
                        raise
                    refused = True  # names are withheld: keep the skeleton (names stay None)
            if ticker is not None:
                ticker.step()

        await for_each(skeleton, one, self.transport.limiter.concurrency)
        return [detailed.get(d.dept_id, d) for d in skeleton]

    async def tags(self) -> tuple[Tag, ...]:
        listed = rec.tag_list(await self._get("tag/list"))
        found: dict[str, Tag] = {}

        async def one(entry: tuple[str, str | None]) -> None:
            tag_id, name = entry
            try:
                found[tag_id] = rec.tag(tag_id, await self._get("tag/get", {"tagid": tag_id}), name)
            except UpstreamError as exc:
                if exc.errcode not in TAG_GONE:
                    found[tag_id] = Tag(tag_id, name)  # members unknown this time: left as they are

        await for_each(listed, one, self.transport.limiter.concurrency)
        return tuple(found[t] for t, _ in listed if t in found)

    # -- full snapshot ---------------------------------------------------------------------------

    async def fetch_snapshot(self, progress: Progress | None = None) -> Snapshot:
        start_calls = self.api_calls
        aux: dict[str, object] = {}
        skipped: list[str] = []

        async def optional(name: str, fetch: Callable[[], Awaitable[object]]) -> None:
            try:
                aux[name] = await fetch()
            except UpstreamError as exc:  # tags/admins/membership withheld: the snapshot says "unknown"
                log.warning(
                    "optional fetch failed",
                    extra={"action": "wecom_snapshot_partial", "part": name, "errcode": exc.errcode, "api": exc.api},
                )
                aux[name] = None
                skipped.append(f"{name}: {exc.api} errcode {exc.errcode}")

        members, failed = MemberBook(), set[str]()
        state: dict[str, object] = {}

        async def directory() -> None:
            depts = await self.departments(Ticker(progress, "departments"))
            root = visible_root(depts, self._sync.root_dept_id)
            if root is None:
                raise UpstreamError("department/list", None, "no department is visible to the app")
            scoped = subtree(depts, root) if self._sync.root_dept_id else depts
            state["root"], state["departments"] = root, scoped
            ticker = Ticker(progress, "members", len(scoped))

            async def one(dept: Department) -> None:
                try:
                    doc = await self._get("user/list", {"department_id": dept.dept_id}, expect="userlist")
                except UpstreamError as exc:
                    if is_fatal(exc):
                        raise
                    failed.add(dept.dept_id)
                else:
                    for entry in items(doc.get("userlist")):
                        found = rec.member(entry) if isinstance(entry, dict) else None
                        if found is not None:
                            members.add(found, Membership(dept.dept_id))
                ticker.step()

            await for_each(scoped, one, self.transport.limiter.concurrency)

        parts = [directory(), optional("tags", self.tags), optional("admins", self.admins)]
        if self._contact is not None:
            parts.append(optional("list_id", self.list_id))
        await run_all(*parts)

        departments: list[Department] = state["departments"]  # type: ignore[assignment] # set by directory()
        scope = {d.dept_id for d in departments}
        list_id: dict[str, list[str]] | None = aux.get("list_id")  # type: ignore[assignment] # set above
        if list_id is not None:
            await self._fill_from_list_id(members, list_id, scope, failed)
        return Snapshot(
            root_dept_id=str(state["root"]),
            departments=tuple(departments),
            members=members.build(scope, list_id),
            tags=aux.get("tags"),  # type: ignore[arg-type] # tuple[Tag, ...] | None
            admins=aux.get("admins"),  # type: ignore[arg-type] # tuple[Admin, ...] | None
            failed_departments=tuple(sorted(failed)),
            api_calls=self.api_calls - start_calls,
            skipped=tuple(skipped),
        )

    async def _fill_from_list_id(
        self, members: MemberBook, list_id: dict[str, list[str]], scope: set[str], failed: set[str]
    ) -> None:
        """Users ``list_id`` places in the scope that no department page returned: ``user/get`` each."""
        missing = [
            user_id
            for user_id, dept_ids in list_id.items()
            if user_id not in members and any(d in scope for d in dept_ids) and not any(d in failed for d in dept_ids)
        ]

        async def one(user_id: str) -> None:
            try:
                found = await self.member(user_id)
            except UpstreamError as exc:
                if is_fatal(exc):
                    raise
                failed.update(d for d in list_id[user_id] if d in scope)
                return
            members.add(found or Member(user_id))  # not visible to the app: only the id is known

        await for_each(missing, one, self.transport.limiter.concurrency)


def inner_client(corp: WecomInnerCorp, wiring: Wiring) -> WecomClient:
    """The client of a self-built app; the contact-sync secret, when configured, gets its own token."""
    transport = wiring.transport(
        cgi_base(corp.api_base), f"wecom:{corp.corp_id}", Platform.WECOM, corp.rate_limits, corp.name
    )

    def token(secret: Secret, kind: str) -> Token:
        return wiring.token(
            wecom_token_key(corp.corp_id, secret.reveal()), kind, gettoken(transport, corp.corp_id, secret)
        )

    async def agent_id() -> str | None:
        return corp.agent_id

    contact = token(corp.contact_secret, "wecom_contact") if corp.contact_secret else None
    return WecomClient(
        transport, app_token=token(corp.secret, "wecom_app"), contact_token=contact, agent_id=agent_id, sync=corp.sync
    )
