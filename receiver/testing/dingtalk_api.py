"""Simulated DingTalk server API under ``/dingtalk/``: token, contacts, admins, roles and the failed list."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from receiver.testing.accounts import DingTalkApp
from receiver.testing.gate import ApiError
from receiver.testing.org import SimMember, SimOrg
from receiver.testing.upstream import Upstream

FAILED_BATCH = 200
USER_PAGE_MAX = 100
ROLE_PAGE_MAX = 200


def _param_error(name: str) -> ApiError:
    return ApiError(400002, f"无效的参数: {name}")


def _int(body: dict[str, Any], name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or value is None:
        raise _param_error(name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _param_error(name) from None


class DingTalkApi:
    """Shapes follow dingtalk.md §4.1 and §5: ``topapi`` calls are POST with a JSON body and answer
    ``{errcode, errmsg, result, request_id}``. The app's 通讯录权限范围 is the org's visible sub-tree;
    departments outside it answer 50004 and members outside it 50002 (``user/listid`` is not limited).
    """

    def __init__(self, sim: Upstream) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        e, p = self.sim.endpoint, "/dingtalk/"
        get = [
            ("gettoken", self.gettoken),
            ("auth/scopes", self.auth_scopes),
            ("call_back/get_call_back_failed_result", self.failed_result),
        ]
        post = [
            ("topapi/v2/department/listsub", self.department_listsub),
            ("topapi/v2/department/get", self.department_get),
            ("topapi/v2/user/list", self.user_list),
            ("topapi/v2/user/get", self.user_get),
            ("topapi/user/getbyunionid", self.user_getbyunionid),
            ("topapi/user/listid", self.user_listid),
            ("topapi/user/count", self.user_count),
            ("topapi/user/listadmin", self.user_listadmin),
            ("topapi/role/list", self.role_list),
            ("topapi/role/simplelist", self.role_simplelist),
        ]
        routes = [web.get(p + api, e("dingtalk", api, fn)) for api, fn in get]
        return routes + [web.post(p + api, e("dingtalk", api, fn)) for api, fn in post]

    def _ok(self, result: Any) -> dict[str, Any]:
        return {"errcode": 0, "errmsg": "ok", "result": result, "request_id": self.sim.request_id()}

    def _app(self, request: web.Request) -> DingTalkApp:
        token = request.query.get("access_token")
        if not token:
            raise ApiError(41001, "缺少access_token参数")
        grant, expired = self.sim.tokens.lookup(token)
        if grant is None or grant.kind != "dingtalk" or expired:
            raise ApiError(40014, "不合法的access_token")
        app: DingTalkApp = grant.subject
        self.sim.check_rate(request, app.app_key)
        return app

    async def _call(self, request: web.Request) -> tuple[SimOrg, dict[str, Any]]:
        org = self._app(request).org
        try:
            body = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            raise _param_error("body") from None
        if not isinstance(body, dict):
            raise _param_error("body")
        return org, body

    @staticmethod
    def _dept(org: SimOrg, dept_id: int, *, scoped: bool = True) -> int:
        if dept_id not in org.departments:
            raise ApiError(60003, "部门不存在")
        if scoped and not org.in_scope(dept_id):
            raise ApiError(50004, "请求的部门id不在授权范围内")
        return dept_id

    def _listable(self, org: SimOrg, dept_id: int, *, scoped: bool = True) -> list[str]:
        self._dept(org, dept_id, scoped=scoped)
        errcode = self.sim.faults.department(org, dept_id)
        if errcode is not None:
            raise ApiError(errcode, "系统繁忙")
        return org.dept_members[dept_id]

    # -- token, scope, failed list ---------------------------------------------------------------

    async def gettoken(self, request: web.Request) -> dict[str, Any]:
        key, secret = request.query.get("appkey", ""), request.query.get("appsecret", "")
        self.sim.check_rate(request, key)
        app = self.sim.dingtalk_apps.get(key)
        if app is None or not secret or secret != app.app_secret:
            raise ApiError(40096, "不合法的appKey或appSecret")
        grant = self.sim.tokens.issue("dingtalk", app)
        return {
            "errcode": 0,
            "access_token": grant.token,
            "errmsg": "ok",
            "expires_in": self.sim.tokens.expires_in(grant),
        }

    async def auth_scopes(self, request: web.Request) -> dict[str, Any]:
        org = self._app(request).org
        fields = ["name", "email", "mobile", "jobnumber", "position", "department", "avatar", "userid"]
        scopes = {"authed_dept": [org.visible_root], "authed_user": []}
        return {"errcode": 0, "errmsg": "ok", "auth_user_field": fields, "auth_org_scopes": scopes}

    async def failed_result(self, request: web.Request) -> dict[str, Any]:
        """Up to 200 failed events; each call first deletes the batch the previous call returned."""
        app = self._app(request)
        del app.failed[: app.last_batch]
        batch = app.failed[:FAILED_BATCH]
        app.last_batch = len(batch)
        return {"errcode": 0, "errmsg": "ok", "has_more": len(app.failed) > len(batch), "failed_list": batch}

    # -- departments -----------------------------------------------------------------------------

    async def department_listsub(self, request: web.Request) -> dict[str, Any]:
        """Direct children only (one level)."""
        org, body = await self._call(request)
        parent = self._dept(org, _int(body, "dept_id", org.root_id))
        rows = []
        for child in org.children[parent]:
            d = org.departments[child]
            rows.append({"dept_id": d.id, "name": d.name, "parent_id": d.parentid, "create_dept_group": False,
                         "auto_add_user": True})  # fmt: skip
        return self._ok(rows)

    async def department_get(self, request: web.Request) -> dict[str, Any]:
        org, body = await self._call(request)
        d = org.departments[self._dept(org, _int(body, "dept_id"))]
        result: dict[str, Any] = {"dept_id": d.id, "name": d.name}
        if d.parentid:
            result["parent_id"] = d.parentid
        result.update(order=d.order, create_dept_group=False, auto_add_user=True, group_contain_sub_dept=False,
                      dept_manager_userid_list=d.leaders, outer_dept=False, hide_dept=False)  # fmt: skip
        return self._ok(result)

    # -- members ---------------------------------------------------------------------------------

    @staticmethod
    def _depts(org: SimOrg, m: SimMember) -> list[int]:
        if org.visible_root == org.root_id:
            return m.departments
        return [d for d in m.departments if org.in_scope(d)]

    def _member(self, org: SimOrg, m: SimMember) -> dict[str, Any]:
        return {
            "userid": m.userid, "unionid": m.unionid, "name": m.name, "avatar": m.avatar, "state_code": "86",
            "mobile": m.mobile, "hide_mobile": False, "telephone": m.telephone, "job_number": m.job_number,
            "title": m.position, "email": m.email, "org_email": m.biz_mail, "work_place": m.work_place,
            "remark": "", "dept_id_list": self._depts(org, m),
        }  # fmt: skip

    async def user_list(self, request: web.Request) -> dict[str, Any]:
        """Direct members of one department, ``size`` (1..100) at a time from ``cursor``."""
        org, body = await self._call(request)
        dept_id, cursor, size = _int(body, "dept_id"), _int(body, "cursor", 0), _int(body, "size")
        if not 1 <= size <= USER_PAGE_MAX:
            raise _param_error("size")
        if cursor < 0:
            raise _param_error("cursor")
        userids = self._listable(org, dept_id)
        rows = []
        for userid in userids[cursor : cursor + size]:
            m = org.members[userid]
            k = m.departments.index(dept_id)
            row = self._member(org, m)
            row.update(dept_order=m.orders[k], extension="{}", hired_date=m.hired_date, active=m.active,
                       admin=userid in org.admins, boss=m.boss, leader=bool(m.is_leader[k]),
                       exclusive_account=False)  # fmt: skip
            rows.append(row)
        result: dict[str, Any] = {"has_more": cursor + size < len(userids), "list": rows}
        if result["has_more"]:
            result["next_cursor"] = cursor + size
        return self._ok(result)

    async def user_getbyunionid(self, request: web.Request) -> dict[str, Any]:
        """dingtalk.md §6: the userid of the org's member with this unionid (``contact_type`` 0: an employee)."""
        org, body = await self._call(request)
        unionid = body.get("unionid")
        if not isinstance(unionid, str) or not unionid:
            raise _param_error("unionid")
        m = org.member_by_unionid(unionid)
        if m is None:
            raise ApiError(60121, "找不到该用户")
        return self._ok({"contact_type": 0, "userid": m.userid})

    async def user_get(self, request: web.Request) -> dict[str, Any]:
        org, body = await self._call(request)
        userid = body.get("userid")
        if not isinstance(userid, str) or not userid:
            raise _param_error("userid")
        m = org.members.get(userid)
        if m is None:
            raise ApiError(60121, "找不到该用户")
        if not org.member_in_scope(m):
            raise ApiError(50002, "请求的员工userid不在授权范围内")
        result = self._member(org, m)
        pairs = [(d, k) for k, d in enumerate(m.departments) if d in result["dept_id_list"]]
        groups = org.role_groups
        roles = [{"id": r.id, "name": r.name, "group_name": groups[r.group_id].name} for r in org.roles_of(userid)]
        result.update(
            manager_userid=m.direct_leader[0] if m.direct_leader else "",
            exclusive_account=False,
            dept_order_list=[{"dept_id": d, "order": m.orders[k]} for d, k in pairs],
            extension="{}",
            hired_date=m.hired_date,
            active=m.active,
            real_authed=True,
            senior=False,
            admin=userid in org.admins,
            boss=m.boss,
            leader_in_dept=[{"dept_id": d, "leader": bool(m.is_leader[k])} for d, k in pairs],
            role_list=roles,
        )
        return self._ok(result)

    async def user_listid(self, request: web.Request) -> dict[str, Any]:
        """Direct members' userids; "不受通讯录权限范围限制" — not limited by the app's scope."""
        org, body = await self._call(request)
        return self._ok({"userid_list": list(self._listable(org, _int(body, "dept_id"), scoped=False))})

    async def user_count(self, request: web.Request) -> dict[str, Any]:
        org, body = await self._call(request)
        only_active = bool(body.get("only_active", False))
        scoped = org.visible_root != org.root_id
        if not scoped and not only_active:
            return self._ok({"count": len(org.members)})
        count = sum(
            1 for m in org.members.values() if (m.active or not only_active) and (not scoped or org.member_in_scope(m))
        )
        return self._ok({"count": count})

    async def user_listadmin(self, request: web.Request) -> dict[str, Any]:
        org, _ = await self._call(request)
        return self._ok([{"userid": u, "sys_level": level} for u, level in org.admins.items()])

    # -- roles -----------------------------------------------------------------------------------

    @staticmethod
    def _page(body: dict[str, Any]) -> tuple[int, int]:
        offset, size = _int(body, "offset", 0), _int(body, "size", 20)
        if not 1 <= size <= ROLE_PAGE_MAX:
            raise _param_error("size")
        if offset < 0:
            raise _param_error("offset")
        return offset, size

    async def role_list(self, request: web.Request) -> dict[str, Any]:
        org, body = await self._call(request)
        offset, size = self._page(body)
        groups = list(org.role_groups.values())
        rows = [
            {"groupId": g.group_id, "name": g.name,
             "roles": [{"id": r, "name": org.roles[r].name} for r in g.roles]}
            for g in groups[offset : offset + size]
        ]  # fmt: skip
        return self._ok({"hasMore": offset + size < len(groups), "list": rows})

    async def role_simplelist(self, request: web.Request) -> dict[str, Any]:
        """Members of one role (``role_id``), paged like ``role/list``."""
        org, body = await self._call(request)
        role = org.roles.get(_int(body, "role_id"))
        if role is None:
            raise _param_error("role_id")
        offset, size = self._page(body)
        userids = role.members[offset : offset + size]
        rows = [{"userid": u, "name": org.members[u].name, "manageScopes": []} for u in userids]
        return self._ok({"hasMore": offset + size < len(role.members), "list": rows})
