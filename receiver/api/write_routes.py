"""Write routes of the directory API: local changes only (change_log source 'api'); the platform is not called.

``PUT …/admins`` and ``PUT …/members/{memberId}/roles`` replace a set (idempotent), hence PUT; offlining a
member is an action on it, hence ``POST …/offline`` (``POST …/offline`` of the corp: several at once). Id lists
take today's keys (``memberIds``, ``roleIds``) or the JitAI seeds' (``memberIdList``, ``roleIdList``).
"""

from __future__ import annotations

from aiohttp import web

from receiver.api import params
from receiver.api.corps import get_corp
from receiver.api.guard import endpoint, reply


@endpoint
async def offline_member(request: web.Request) -> web.Response:
    params.query(request, ())
    await params.body(request, (), optional=True)
    corp = await get_corp(request.app, request.match_info["corp"])
    (member,) = await corp.offline_member([request.match_info["memberId"]])
    return reply(member.to_json())


MEMBER_IDS = ("memberIds", "memberIdList")  # today's key, and the JitAI seeds' (offlineMember, setAdmin)
ROLE_IDS = ("roleIds", "roleIdList")  # today's key, and the seeds' (setUserRole)


@endpoint
async def offline_members(request: web.Request) -> web.Response:
    """offlineMember(memberIdList): several members at once."""
    params.query(request, ())
    member_ids = params.id_list_of(await params.body(request, MEMBER_IDS), MEMBER_IDS)
    corp = await get_corp(request.app, request.match_info["corp"])
    found = await corp.offline_member(member_ids)
    return reply({"items": [m.to_json() for m in found], "total": len(found), "nextCursor": None})


@endpoint
async def set_roles(request: web.Request) -> web.Response:
    params.query(request, ())
    role_ids = params.id_list_of(await params.body(request, ROLE_IDS), ROLE_IDS)
    corp = await get_corp(request.app, request.match_info["corp"])
    roles = await corp.set_user_role(request.match_info["memberId"], role_ids)
    return reply({"items": [r.to_json() for r in roles], "total": len(roles), "nextCursor": None})


@endpoint
async def save_signature(request: web.Request) -> web.Response:
    params.query(request, ())
    text = params.required(await params.body(request, ("signature",)), "signature")
    corp = await get_corp(request.app, request.match_info["corp"])
    return reply((await corp.save_user_signature(request.match_info["memberId"], text)).to_json())


@endpoint
async def set_admins(request: web.Request) -> web.Response:
    params.query(request, ())
    member_ids = params.id_list_of(await params.body(request, MEMBER_IDS), MEMBER_IDS)
    corp = await get_corp(request.app, request.match_info["corp"])
    found = await corp.set_admin(member_ids)
    return reply({"items": [a.to_json() for a in found], "total": len(found), "nextCursor": None})
