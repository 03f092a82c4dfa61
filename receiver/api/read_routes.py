"""GET routes of the directory API: corps, departments, members, admins, roles, signatures, local data."""

from __future__ import annotations

from aiohttp import web

from handlers.api import corp_page
from receiver.api import params
from receiver.api.corps import get_corp
from receiver.api.guard import endpoint, reply
from receiver.keys import RUNTIME


@endpoint
async def list_corps(request: web.Request) -> web.Response:
    limit, cursor = params.page(request)
    runtime = request.app[RUNTIME]
    return reply((await corp_page(runtime.pool, runtime.config, limit, cursor, runtime.session)).to_json())


@endpoint
async def corp_info(request: web.Request) -> web.Response:
    params.query(request, ())
    corp = await get_corp(request.app, request.match_info["corp"])
    return reply((await corp.get_corp_info()).to_json())


@endpoint
async def root_dept(request: web.Request) -> web.Response:
    params.query(request, ())
    corp = await get_corp(request.app, request.match_info["corp"])
    return reply((await corp.get_root_dept()).to_json())


@endpoint
async def depts(request: web.Request) -> web.Response:
    limit, cursor = params.page(request)
    corp = await get_corp(request.app, request.match_info["corp"])
    return reply((await corp.page_depts(limit, cursor)).to_json())


@endpoint
async def dept(request: web.Request) -> web.Response:
    params.query(request, ())
    corp = await get_corp(request.app, request.match_info["corp"])
    return reply((await corp.get_dept(request.match_info["deptId"])).to_json())


@endpoint
async def members(request: web.Request) -> web.Response:
    given = params.query(request, params.MEMBER_PARAMS)
    where, limit, cursor = params.member_filter(given), params.limit(given), params.cursor(given)
    corp = await get_corp(request.app, request.match_info["corp"])
    return reply((await corp.page_members(where, limit, cursor)).to_json())


@endpoint
async def member(request: web.Request) -> web.Response:
    params.query(request, ())
    corp = await get_corp(request.app, request.match_info["corp"])
    return reply((await corp.get_member(request.match_info["memberId"])).to_json())


@endpoint
async def member_roles(request: web.Request) -> web.Response:
    params.query(request, ())
    corp = await get_corp(request.app, request.match_info["corp"])
    roles = await corp.get_user_roles(request.match_info["memberId"])
    return reply({"items": [r.to_json() for r in roles], "total": len(roles), "nextCursor": None})


@endpoint
async def signature(request: web.Request) -> web.Response:
    params.query(request, ())
    corp = await get_corp(request.app, request.match_info["corp"])
    return reply((await corp.get_user_signature(request.match_info["memberId"])).to_json())


@endpoint
async def admins(request: web.Request) -> web.Response:
    limit, cursor = params.page(request)
    corp = await get_corp(request.app, request.match_info["corp"])
    return reply((await corp.page_admins(limit, cursor)).to_json())


@endpoint
async def local_data(request: web.Request) -> web.Response:
    params.query(request, ())
    corp = await get_corp(request.app, request.match_info["corp"])
    return reply((await corp.get_local_corp_data()).to_json())
