"""GET routes of the directory API: corps, departments, members, admins, roles, signatures, local data; and two
that ask the platform: the third-party data (getThirdCorpData) and a suite tenant's agent id (getAgentId).

Most read one corp's record or page: ``record_route`` and ``page_route`` make those handlers from the read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from handlers.api import Corp, corp_page, get_agent_id
from handlers.errors import InvalidInput, UnknownCorp, UnknownRecord
from receiver.api import params
from receiver.api.corps import get_corp
from receiver.api.guard import Handler, endpoint, reply
from receiver.keys import RUNTIME


class Answer(Protocol):
    """A view or page of ``handlers.api``."""

    def to_json(self) -> dict[str, Any]: ...


def record_route(read: Callable[[Corp, Mapping[str, str]], Awaitable[Answer]]) -> Handler:
    """A GET of one record of the path's corp, without query parameters: ``read(corp, path parameters)``."""

    @endpoint
    async def handler(request: web.Request) -> web.Response:
        params.query(request, ())
        corp = await get_corp(request.app, request.match_info["corp"])
        return reply((await read(corp, request.match_info)).to_json())

    return handler


def page_route(read: Callable[[Corp, int, str | None], Awaitable[Answer]]) -> Handler:
    """A GET of one page of the path's corp, by ``limit`` and ``cursor``: ``read(corp, limit, cursor)``."""

    @endpoint
    async def handler(request: web.Request) -> web.Response:
        limit, cursor = params.page(request)
        corp = await get_corp(request.app, request.match_info["corp"])
        return reply((await read(corp, limit, cursor)).to_json())

    return handler


@endpoint
async def list_corps(request: web.Request) -> web.Response:
    limit, cursor = params.page(request)
    runtime = request.app[RUNTIME]
    return reply((await corp_page(runtime.pool, runtime.config, limit, cursor, runtime.session)).to_json())


corp_info = record_route(lambda corp, _: corp.get_corp_info())
root_dept = record_route(lambda corp, _: corp.get_root_dept())
depts = page_route(Corp.page_depts)
dept = record_route(lambda corp, path: corp.get_dept(path["deptId"]))


@endpoint
async def members(request: web.Request) -> web.Response:
    given = params.query(request, params.MEMBER_PARAMS)
    where, limit, cursor = params.member_filter(given), params.limit(given), params.cursor(given)
    corp = await get_corp(request.app, request.match_info["corp"])
    return reply((await corp.page_members(where, limit, cursor)).to_json())


member = record_route(lambda corp, path: corp.get_member(path["memberId"]))


@endpoint
async def member_roles(request: web.Request) -> web.Response:
    params.query(request, ())
    corp = await get_corp(request.app, request.match_info["corp"])
    roles = await corp.get_user_roles(request.match_info["memberId"])
    return reply({"items": [r.to_json() for r in roles], "total": len(roles), "nextCursor": None})


signature = record_route(lambda corp, path: corp.get_user_signature(path["memberId"]))
admins = page_route(Corp.page_admins)
local_data = record_route(lambda corp, _: corp.get_local_corp_data())
third_data = record_route(lambda corp, _: corp.get_third_corp_data())


@endpoint
async def agent_id(request: web.Request) -> web.Response:
    """QywxProxyCorp.getAgentId(corpId, suiteId): the agent id a tenant's authorization gave the suite's app."""
    given = params.query(request, ("corpId", "suiteId"))
    corp_id, suite_id = params.required(given, "corpId"), params.required(given, "suiteId")
    for name, value in (("corpId", corp_id), ("suiteId", suite_id)):
        if not value:
            raise InvalidInput(name, "must not be empty")
    runtime = request.app[RUNTIME]
    try:
        found = await get_agent_id(runtime.pool, runtime.config, corp_id, suite_id)
    except UnknownCorp:  # not a corp of the path: name the corpid asked for
        raise UnknownRecord("corp", corp_id) from None
    return reply({"corpId": corp_id, "suiteId": suite_id, "agentId": found})
