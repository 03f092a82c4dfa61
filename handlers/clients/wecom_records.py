"""WeCom API JSON → normalized records (protocol/wecom.md §6). Empty strings and gender 0 become None."""

from __future__ import annotations

from typing import Any

import handlers.clients.records as shared
from handlers.clients.base import Json, ident, integer, items, mapping, text
from handlers.model import Admin, Department, Member, Membership, Tag


def department(doc: Json) -> Department | None:
    """One entry of ``department/list`` / ``department/get`` (or ``simplelist``: id, parentid, order)."""
    return shared.department(doc, "id", "parentid", "department_leader", name_en_key="name_en")


def _extattr(doc: Any) -> dict[str, str] | None:
    """``extattr.attrs`` → {name: text value | web url | mini-program title}; None when not sent."""
    if not isinstance(doc, dict) or not isinstance(doc.get("attrs"), list):
        return None
    found: dict[str, str] = {}
    for attr in doc["attrs"]:
        if not isinstance(attr, dict) or not (name := text(attr.get("name"))):
            continue
        kind = integer(attr.get("type")) or 0
        if kind == 1:
            value = text(mapping(attr.get("web")).get("url"))
        elif kind == 2:
            value = text(mapping(attr.get("miniprogram")).get("title"))
        else:
            value = text(mapping(attr.get("text")).get("value")) or text(attr.get("value"))
        if value is not None:
            found[name] = value
    return found


def _memberships(doc: Json) -> tuple[Membership, ...] | None:
    """``department``, ``order`` and ``is_leader_in_dept`` are parallel lists."""
    depts = doc.get("department")
    if not isinstance(depts, list):
        return None
    orders, leads = items(doc.get("order")), items(doc.get("is_leader_in_dept"))
    result: list[Membership] = []
    for i, raw in enumerate(depts):
        dept_id = ident(raw)
        if dept_id is None:
            continue
        lead = integer(leads[i]) if i < len(leads) else None
        result.append(
            Membership(
                dept_id,
                is_leader=None if lead is None else lead == 1,
                order=integer(orders[i]) if i < len(orders) else None,
            )
        )
    return tuple(result)


def member(doc: Json) -> Member | None:
    """One user of ``user/get`` or ``user/list``."""
    user_id = text(doc.get("userid"))
    if user_id is None:
        return None
    gender = integer(doc.get("gender"))
    return Member(
        user_id=user_id,
        name=text(doc.get("name")),
        departments=_memberships(doc),
        main_dept_id=ident(doc.get("main_department")),
        open_user_id=text(doc.get("open_userid")),
        alias=text(doc.get("alias")),
        position=text(doc.get("position")),
        mobile=text(doc.get("mobile")),
        email=text(doc.get("email")),
        biz_mail=text(doc.get("biz_mail")),
        telephone=text(doc.get("telephone")),
        gender=gender if gender in (1, 2) else None,
        avatar=text(doc.get("avatar")),
        direct_leaders=shared.id_tuple(doc.get("direct_leader"), text),
        platform_status=integer(doc.get("status")),
        extattr=_extattr(doc.get("extattr")),
    )


def tag(tag_id: str, doc: Json, name: str | None = None) -> Tag:
    """``tag/get``: members and departments of one tag (``tagname`` is there too)."""
    return Tag(
        tag_id=tag_id,
        name=text(doc.get("tagname")) or name,
        user_ids=shared.id_tuple(doc.get("userlist"), lambda x: text(mapping(x).get("userid"))),
        dept_ids=shared.id_tuple(doc.get("partylist")),
    )


def tag_list(doc: Json) -> list[tuple[str, str | None]]:
    """``tag/list`` → [(tag_id, name)]."""
    found = []
    for entry in items(doc.get("taglist")):
        tag_id = ident(mapping(entry).get("tagid"))
        if tag_id is not None:
            found.append((tag_id, text(entry.get("tagname"))))
    return found


def admins(doc: Json) -> tuple[Admin, ...]:
    """``agent/get_admin_list``: level = auth_type (0 may send messages, 1 may manage)."""
    return shared.admins(doc.get("admin"), "auth_type")


def list_id_page(doc: Json) -> tuple[list[tuple[str, str]], str | None]:
    """``user/list_id``: ([(userid, dept_id)], next cursor or None when done)."""
    pairs = []
    for entry in items(doc.get("dept_user")):
        user_id = text(mapping(entry).get("userid")) or text(entry.get("open_userid"))
        dept_id = ident(entry.get("department"))
        if user_id is not None and dept_id is not None:
            pairs.append((user_id, dept_id))
    return pairs, text(doc.get("next_cursor"))
