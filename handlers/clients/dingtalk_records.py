"""DingTalk API JSON → normalized records (protocol/dingtalk.md §5.2), and failed-list entries (§4.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

import handlers.clients.records as shared
from handlers.clients.base import Json, ident, integer, items, mapping, text
from handlers.model import Admin, Department, Member, Membership, Role


def id_param(value: str) -> int | str:
    """Department and role ids go out as JSON numbers when they are numeric."""
    return int(value) if value.isdigit() else value


def department(doc: Json) -> Department | None:
    """``listsub`` entry or ``department/get`` result; the root has no parent (0 / missing → None)."""
    return shared.department(doc, "dept_id", "parent_id", "dept_manager_userid_list", leader=text)


def _extension(raw: Any) -> dict[str, str] | None:
    """``extension`` is a JSON object in a string: {"爱好": "旅游", ...}."""
    if isinstance(raw, str) and raw:
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(raw, dict):
        return None
    return {str(k): v for k, v in ((k, text(v)) for k, v in raw.items()) if v is not None}


def _status(active: Any) -> int | None:
    # ``active``: has the user activated DingTalk. Expressed in the WeCom status codes the model
    # uses: 1 active, 4 not activated.
    if isinstance(active, bool):
        return 1 if active else 4
    return None


def member(doc: Json) -> Member | None:
    """``v2/user/get`` result or one ``v2/user/list`` entry (memberships: every dept, details where sent)."""
    user_id = text(doc.get("userid"))
    if user_id is None:
        return None
    orders = {ident(mapping(x).get("dept_id")): integer(x.get("order")) for x in items(doc.get("dept_order_list"))}
    leads = {ident(mapping(x).get("dept_id")): x.get("leader") for x in items(doc.get("leader_in_dept"))}
    depts = doc.get("dept_id_list")
    memberships = None
    if isinstance(depts, list):
        memberships = tuple(
            Membership(d, is_leader=leads[d] if isinstance(leads.get(d), bool) else None, order=orders.get(d))
            for d in (ident(x) for x in depts)
            if d is not None
        )
    manager = text(doc.get("manager_userid"))
    return Member(
        user_id=user_id,
        name=text(doc.get("name")),
        departments=memberships,
        union_id=text(doc.get("unionid")),
        position=text(doc.get("title")),
        mobile=text(doc.get("mobile")),
        email=text(doc.get("email")),
        biz_mail=text(doc.get("org_email")),
        telephone=text(doc.get("telephone")),
        avatar=text(doc.get("avatar")),
        job_number=text(doc.get("job_number")),
        work_place=text(doc.get("work_place")),
        hired_date=integer(doc.get("hired_date")),
        direct_leaders=(manager,) if manager else None,
        platform_status=_status(doc.get("active")),
        extattr=_extension(doc.get("extension")),
    )


def page_membership(doc: Json, dept_id: str) -> Membership:
    """What one department's ``v2/user/list`` page says of the user there: leader flag and order."""
    leader = doc.get("leader")
    return Membership(
        dept_id, is_leader=leader if isinstance(leader, bool) else None, order=integer(doc.get("dept_order"))
    )


def roles(doc: Json) -> list[Role]:
    """``topapi/role/list`` result: groups with their roles."""
    found = []
    for group in items(doc.get("list")):
        group_name = text(mapping(group).get("name"))
        for role in items(group.get("roles")):
            role_id = ident(mapping(role).get("id"))
            if role_id is not None:
                found.append(Role(role_id, text(role.get("name")), group_name))
    return found


def user_ids(result: Json) -> list[str]:
    """``topapi/role/simplelist`` page: the userids."""
    return [u for u in (text(mapping(x).get("userid")) for x in items(result.get("list"))) if u]


def admins(result: Any) -> tuple[Admin, ...]:
    """``topapi/user/listadmin``: sys_level 1 main admin, 2 sub-admin."""
    return shared.admins(result, "sys_level")


@dataclass(frozen=True, slots=True)
class FailedEvent:
    """One entry of ``call_back/get_call_back_failed_result``, kept as the JSON it came in."""

    call_back_tag: str | None
    event_time: int | None  # ms
    payload: str  # the entry as JSON text, e.g. {"call_back_tag": ..., "user_add_org": {...}, "event_time": ...}


def failed_events(doc: Json) -> list[FailedEvent]:
    return [
        FailedEvent(text(entry.get("call_back_tag")), integer(entry.get("event_time")), orjson.dumps(entry).decode())
        for entry in items(doc.get("failed_list"))
        if isinstance(entry, dict)
    ]
