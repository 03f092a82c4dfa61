"""Simulated WeCom server API under ``/wecom/cgi-bin/``: tokens, contacts, tags, admins and suite auth."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from receiver.testing.accounts import SuiteTenant, WecomCorp, WecomSuite, make_secret
from receiver.testing.gate import ApiError, api_key
from receiver.testing.org import SimDept, SimMember, SimOrg
from receiver.testing.upstream import Upstream

OK: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
_NO_PRIVILEGE = (60011, "no privilege to access/modify contact/party/agent")
_BLOCKED_FOR_NEW_IP = frozenset({"user/get", "user/list", "user/simplelist", "department/list"})
LIST_ID_DEFAULT_LIMIT = 1000  # not documented; 1..10000 are accepted


@dataclass(frozen=True, slots=True)
class View:
    """What one access token may see."""

    org: SimOrg
    corp_id: str
    kind: str
    scoped: bool  # the app's visible sub-tree applies
    private: bool  # sensitive member fields are left out
    suite: bool  # open_userid is shown


def _json(raw: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise ApiError(47001, "data format error") from None
    if not isinstance(doc, dict):
        raise ApiError(47001, "data format error")
    return doc


def _cursor(i: int, j: int) -> str:
    return base64.urlsafe_b64encode(f"{i}:{j}".encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> tuple[int, int]:
    try:
        i, j = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":")
        return int(i), int(j)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(40058, "invalid cursor") from None


class WecomApi:
    """Shapes follow wecom.md §4.3 and §6. Token kinds: ``app`` (self-built app secret, or a 代开发 permanent
    code through ``gettoken``) sees the org's visible sub-tree; ``contact`` (通讯录同步 secret) sees the whole
    corp and alone may call ``user/list_id``; ``corp`` (third-party ``get_corp_token``) is scoped like ``app``.
    """

    def __init__(self, sim: Upstream) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        e, p = self.sim.endpoint, "/wecom/cgi-bin/"
        get = [
            ("gettoken", self.gettoken),
            ("department/list", self.department_list),
            ("department/simplelist", self.department_simplelist),
            ("department/get", self.department_get),
            ("user/simplelist", self.user_simplelist),
            ("user/list", self.user_list),
            ("user/get", self.user_get),
            ("tag/list", self.tag_list),
            ("tag/get", self.tag_get),
        ]
        post = [
            ("user/list_id", self.user_list_id),
            ("service/get_suite_token", self.get_suite_token),
            ("service/get_permanent_code", self.get_permanent_code),
            ("service/get_auth_info", self.get_auth_info),
            ("service/get_corp_token", self.get_corp_token),
        ]
        routes = [web.get(p + api, e("wecom", api, fn)) for api, fn in get]
        routes += [web.post(p + api, e("wecom", api, fn)) for api, fn in post]
        admin = e("wecom", "agent/get_admin_list", self.get_admin_list)  # doc: POST; wecom.md: GET
        routes += [web.get(p + "agent/get_admin_list", admin), web.post(p + "agent/get_admin_list", admin)]
        return routes

    # -- tokens ----------------------------------------------------------------------------------

    def _view(self, request: web.Request) -> View:
        token = request.query.get("access_token")
        if not token:
            raise ApiError(41001, "access_token missing")
        grant, expired = self.sim.tokens.lookup(token)
        if grant is None or grant.kind not in {"app", "contact", "corp"}:
            raise ApiError(40014, "invalid access_token")
        if expired:
            raise ApiError(42001, "access_token expired")
        subject: WecomCorp | SuiteTenant = grant.subject
        self.sim.check_rate(request, subject.corp_id)
        contact = grant.kind == "contact"
        new_ip = contact and isinstance(subject, WecomCorp) and subject.contact_new_ip
        if new_ip and api_key(request.path).split(":", 1)[1] in _BLOCKED_FOR_NEW_IP:
            raise ApiError(48009, "api forbidden for contact assistant")
        return View(
            org=subject.org,
            corp_id=subject.corp_id,
            kind=grant.kind,
            scoped=not contact,
            private=not contact and subject.privacy,
            suite=isinstance(subject, SuiteTenant),
        )

    async def gettoken(self, request: web.Request) -> dict[str, Any]:
        corp_id, secret = request.query.get("corpid", ""), request.query.get("corpsecret", "")
        self.sim.check_rate(request, corp_id)
        if not corp_id:
            raise ApiError(41002, "corpid missing")
        if not secret:
            raise ApiError(41004, "corpsecret missing")
        corp = self.sim.wecom_corps.get(corp_id)
        tenants = self.sim.tenants_by_corp.get(corp_id, [])
        if corp is None and not tenants:
            raise ApiError(40013, "invalid corpid")
        tokens = self.sim.tokens
        if corp is not None and secret == corp.secret:
            grant = tokens.issue("app", corp)
        elif corp is not None and secret == corp.contact_secret:
            grant = tokens.issue("contact", corp)
        else:
            # 代开发: the permanent code is the app's secret (wecom.md §4.3); third-party codes are not
            tenant = next((t for t in tenants if t.is_proxy and t.authorized and t.permanent_code == secret), None)
            if tenant is None:
                raise ApiError(40001, "invalid credential")
            grant = tokens.issue("app", tenant)
        return {**OK, "access_token": grant.token, "expires_in": tokens.expires_in(grant)}

    # -- departments -----------------------------------------------------------------------------

    def _dept_id(self, view: View, raw: str | None) -> int:
        try:
            dept_id = int(raw or "")
        except ValueError:
            raise ApiError(60123, "invalid party id") from None
        if dept_id not in view.org.departments:
            raise ApiError(60123, "invalid party id")
        if view.scoped and not view.org.in_scope(dept_id):
            raise ApiError(*_NO_PRIVILEGE)
        return dept_id

    def _top(self, view: View, raw: str | None) -> int:
        if raw:
            return self._dept_id(view, raw)
        return view.org.visible_root if view.scoped else view.org.root_id

    @staticmethod
    def _department(d: SimDept) -> dict[str, Any]:
        return {"id": d.id, "name": d.name, "name_en": d.name_en, "department_leader": d.leaders,
                "parentid": d.parentid, "order": d.order}  # fmt: skip

    async def department_list(self, request: web.Request) -> dict[str, Any]:
        view = self._view(request)
        top = self._top(view, request.query.get("id"))
        return {**OK, "department": [self._department(d) for d in view.org.subtree(top)]}

    async def department_simplelist(self, request: web.Request) -> dict[str, Any]:
        view = self._view(request)
        top = self._top(view, request.query.get("id"))
        rows = [{"id": d.id, "parentid": d.parentid, "order": d.order} for d in view.org.subtree(top)]
        return {**OK, "department_id": rows}

    async def department_get(self, request: web.Request) -> dict[str, Any]:
        view = self._view(request)
        dept_id = self._dept_id(view, request.query.get("id"))
        return {**OK, "department": self._department(view.org.departments[dept_id])}

    # -- members ---------------------------------------------------------------------------------

    def _user(self, view: View, m: SimMember) -> dict[str, Any]:
        org = view.org
        depts, orders, leads = m.departments, m.orders, m.is_leader
        if view.scoped and org.visible_root != org.root_id:
            keep = [k for k, d in enumerate(depts) if org.in_scope(d)]
            depts, orders, leads = [depts[k] for k in keep], [orders[k] for k in keep], [leads[k] for k in keep]
        doc: dict[str, Any] = {"userid": m.userid, "name": m.name, "department": depts, "order": orders,
                               "position": m.position}  # fmt: skip
        if not view.private:
            doc.update(mobile=m.mobile, gender=str(m.gender), email=m.email, biz_mail=m.biz_mail)
        doc.update(is_leader_in_dept=leads, direct_leader=m.direct_leader)
        if not view.private:
            doc.update(avatar=m.avatar, thumb_avatar=m.avatar.removesuffix("/0") + "/100")
        doc.update(telephone=m.telephone, alias=m.alias, status=m.status)
        if not view.private:
            doc.update(address=m.address, qr_code=f"https://open.work.weixin.qq.com/wwopen/userQRCode?vcode={m.userid}")
        if view.suite:
            doc["open_userid"] = m.open_userid
        attrs = [{"type": 0, "name": n, "text": {"value": v}} for n, v in m.extattr]
        doc.update(main_department=m.main_department, extattr={"attrs": attrs}, external_position="")
        return doc

    def _members_of(self, view: View, request: web.Request) -> list[SimMember]:
        dept_id = self._dept_id(view, request.query.get("department_id"))
        errcode = self.sim.faults.department(view.org, dept_id)
        if errcode is not None:
            raise ApiError(errcode, "system busy")
        members = view.org.members
        return [members[u] for u in view.org.dept_members[dept_id]]

    async def user_simplelist(self, request: web.Request) -> dict[str, Any]:
        view = self._view(request)
        rows = []
        for m in self._members_of(view, request):
            row = self._user(view, m)
            rows.append({k: row[k] for k in ("userid", "name", "department", "open_userid") if k in row})
        return {**OK, "userlist": rows}

    async def user_list(self, request: web.Request) -> dict[str, Any]:
        view = self._view(request)
        return {**OK, "userlist": [self._user(view, m) for m in self._members_of(view, request)]}

    async def user_get(self, request: web.Request) -> dict[str, Any]:
        view = self._view(request)
        member = view.org.members.get(request.query.get("userid", ""))
        if member is None:
            raise ApiError(60111, "userid not found")
        if view.scoped and not view.org.member_in_scope(member):
            raise ApiError(*_NO_PRIVILEGE)
        return {**OK, **self._user(view, member)}

    async def user_list_id(self, request: web.Request) -> dict[str, Any]:
        """One row per (user, department) over the whole corp; an empty ``next_cursor`` ends it."""
        view = self._view(request)
        if view.kind != "contact":
            raise ApiError(48002, "api forbidden")
        body = _json(await request.read())
        limit = body.get("limit", LIST_ID_DEFAULT_LIMIT)
        if not isinstance(limit, int) or not 1 <= limit <= 10000:
            raise ApiError(40058, "invalid limit, should be 1~10000")
        i, j = _uncursor(body["cursor"]) if body.get("cursor") else (0, 0)
        seq, members = view.org.member_seq(), view.org.members
        rows: list[dict[str, Any]] = []
        while i < len(seq) and len(rows) < limit:
            depts = members[seq[i]].departments
            take = depts[j : j + limit - len(rows)]
            rows.extend({"userid": seq[i], "department": d} for d in take)
            j += len(take)
            if j >= len(depts):
                i, j = i + 1, 0
        return {**OK, "next_cursor": _cursor(i, j) if i < len(seq) else "", "dept_user": rows}

    # -- tags and admins -------------------------------------------------------------------------

    async def tag_list(self, request: web.Request) -> dict[str, Any]:
        view = self._view(request)
        return {**OK, "taglist": [{"tagid": t.tagid, "tagname": t.tagname} for t in view.org.tags.values()]}

    async def tag_get(self, request: web.Request) -> dict[str, Any]:
        view = self._view(request)
        try:
            tag = view.org.tags[int(request.query.get("tagid", ""))]
        except (ValueError, KeyError):
            raise ApiError(40068, "invalid tagid") from None
        org, users = view.org, [view.org.members[u] for u in tag.users if u in view.org.members]
        if view.scoped:
            users = [m for m in users if org.member_in_scope(m)]
        parties = [p for p in tag.parties if not view.scoped or org.in_scope(p)]
        userlist = [{"userid": m.userid, "name": m.name} for m in users]
        return {**OK, "tagname": tag.tagname, "userlist": userlist, "partylist": parties}

    async def get_admin_list(self, request: web.Request) -> dict[str, Any]:
        view = self._view(request)
        admins = []
        for userid, level in view.org.admins.items():
            row: dict[str, Any] = {"userid": userid, "auth_type": 1 if level == 1 else 0}
            if view.suite:
                row["open_userid"] = view.org.members[userid].open_userid
            admins.append(row)
        return {**OK, "admin": admins}

    # -- suites ----------------------------------------------------------------------------------

    def _suite(self, request: web.Request) -> WecomSuite:
        grant, expired = self.sim.tokens.lookup(request.query.get("suite_access_token", ""))
        if grant is None or grant.kind != "suite":
            raise ApiError(40082, "invalid suite_token")
        if expired:
            raise ApiError(42009, "suite_token expired")
        suite: WecomSuite = grant.subject
        self.sim.check_rate(request, suite.suite_id)
        return suite

    async def get_suite_token(self, request: web.Request) -> dict[str, Any]:
        """No errcode on success, "for historical reasons" (doc 97162)."""
        body = _json(await request.read())
        suite = self.sim.suites.get(str(body.get("suite_id", "")))
        self.sim.check_rate(request, suite.suite_id if suite else "")
        if suite is None:
            raise ApiError(40083, "invalid suite_id")
        if body.get("suite_secret") != suite.suite_secret:
            raise ApiError(40001, "invalid credential")
        if not body.get("suite_ticket") or body.get("suite_ticket") != suite.ticket:
            raise ApiError(40085, "invalid suite_ticket")
        grant = self.sim.tokens.issue("suite", suite)
        return {"suite_access_token": grant.token, "expires_in": self.sim.tokens.expires_in(grant)}

    def _tenant(self, suite: WecomSuite, body: dict[str, Any]) -> SuiteTenant:
        tenant = suite.tenants.get(str(body.get("auth_corpid", "")))
        code = body.get("permanent_code")
        if tenant is None or not tenant.authorized or not code or code != tenant.permanent_code:
            raise ApiError(40084, "invalid permanent_code")
        return tenant

    @staticmethod
    def _auth_info(tenant: SuiteTenant) -> dict[str, Any]:
        org = tenant.org
        privilege = {"level": 1, "allow_party": [org.visible_root], "allow_user": [], "allow_tag": [],
                     "extra_party": [], "extra_user": [], "extra_tag": []}  # fmt: skip
        agent = {"agentid": tenant.agent_id, "name": "通讯录同步", "auth_mode": 0, "privilege": privilege,
                 "is_customized_app": tenant.is_proxy}  # fmt: skip
        corp = {"corpid": tenant.corp_id, "corp_name": org.name, "corp_full_name": org.name, "corp_type": "verified",
                "subject_type": 1, "corp_user_max": 10000, "corp_scale": "1000人以上"}  # fmt: skip
        return {"auth_corp_info": corp, "auth_info": {"agent": [agent]}}

    async def get_permanent_code(self, request: web.Request) -> dict[str, Any]:
        suite = self._suite(request)
        code = str(_json(await request.read()).get("auth_code", ""))
        corp_id, expires = suite.auth_codes.pop(code, ("", 0.0))  # single use
        if not corp_id or expires <= self.sim.clock() or corp_id not in suite.tenants:
            raise ApiError(40078, "invalid auth_code")
        tenant = suite.tenants[corp_id]
        tenant.permanent_code, tenant.authorized = make_secret(self.sim.rng, 43), True
        admin = tenant.org.main_admin() or ""
        user = {"userid": admin, "open_userid": tenant.org.members[admin].open_userid if admin else "", "name": admin}
        doc = {**OK, "permanent_code": tenant.permanent_code, **self._auth_info(tenant), "auth_user_info": user}
        if not suite.is_proxy:
            grant = self.sim.tokens.issue("corp", tenant)
            doc.update(access_token=grant.token, expires_in=self.sim.tokens.expires_in(grant))
        return doc

    async def get_auth_info(self, request: web.Request) -> dict[str, Any]:
        suite = self._suite(request)
        return {**OK, **self._auth_info(self._tenant(suite, _json(await request.read())))}

    async def get_corp_token(self, request: web.Request) -> dict[str, Any]:
        """Third-party only; 代开发 apps must use ``gettoken`` (48002, wecom.md §4.3). No errcode on success."""
        suite = self._suite(request)
        tenant = self._tenant(suite, _json(await request.read()))
        if suite.is_proxy:
            raise ApiError(48002, "api forbidden")
        grant = self.sim.tokens.issue("corp", tenant)
        return {"access_token": grant.token, "expires_in": self.sim.tokens.expires_in(grant)}
