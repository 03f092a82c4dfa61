"""WeCom ``change_contact`` handlers (self-built / 代开发 ``MsgType=event`` and third-party ``InfoType``).

Events carry only what changed (after 2022-08-15 only IDs): only fields present are written, and a
member or department the event would create without a name is completed through the platform client.
Delivery is unordered: a create for a member or department that is already here (its update came first)
may carry stale values, so it is read back from the platform too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from typing import Any

from handlers.errors import MalformedMessage
from handlers.events import EventContext, Outcome, ensure_members
from handlers.events.parse import XmlFields, split_ids
from handlers.model import Department, Member, Membership
from handlers.store.directory import MemberState, MemberWrite, Reactivate

log = logging.getLogger("corpsync.events.wecom")

Handler = Callable[[EventContext, XmlFields], Awaitable[Outcome]]


def _required(fields: XmlFields, name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise MalformedMessage(f"{name} missing")
    return value


SMALLINT = 2**15  # gender, platform_status
BIGINT = 2**63  # a department's order


def _int(value: str | None, limit: int) -> int | None:
    """The number ``value`` holds if its column can too (``-limit <= n < limit``); else None, as if it were absent."""
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:  # no number, or more digits than int() converts
        return None
    return number if -limit <= number < limit else None


def _extattr(fields: XmlFields) -> dict[str, str] | None:
    if not fields.has("ExtAttr"):
        return None
    attrs: dict[str, str] = {}
    for item in fields.items_of("ExtAttr", "Item"):
        name = item.get("Name")
        if name is None:
            continue
        text, web = item.child("Text"), item.child("Web")
        value = text.get("Value") if text is not None else (web.get("Url") if web is not None else item.get("Value"))
        if value is not None:
            attrs[name] = value
    return attrs


def member_from_fields(fields: XmlFields, user_id: str) -> Member:
    """The member as far as the event tells; absent fields stay None."""
    depts = split_ids(fields.get("Department"))
    leaders = split_ids(fields.get("IsLeaderInDept")) or ()
    memberships = None
    if depts is not None:
        memberships = tuple(
            Membership(d, None if i >= len(leaders) else leaders[i] == "1") for i, d in enumerate(depts)
        )
    gender = _int(fields.get("Gender"), SMALLINT)
    return Member(
        user_id=user_id,
        name=fields.get("Name"),
        departments=memberships,
        main_dept_id=fields.get("MainDepartment"),
        open_user_id=fields.get("OpenUserID"),
        alias=fields.get("Alias"),
        position=fields.get("Position"),
        mobile=fields.get("Mobile"),
        email=fields.get("Email"),
        biz_mail=fields.get("BizMail"),
        telephone=fields.get("Telephone"),
        gender=gender or None,  # 0: undefined / not available
        avatar=fields.get("Avatar"),
        direct_leaders=split_ids(fields.get("DirectLeader")),
        platform_status=_int(fields.get("Status"), SMALLINT),
        extattr=_extattr(fields),
    )


def department_from_fields(fields: XmlFields) -> Department:
    return Department(
        dept_id=_required(fields, "Id"),
        parent_id=fields.get("ParentId"),
        name=fields.get("Name"),
        order=_int(fields.get("Order"), BIGINT),
    )


def _known(record: Member | Department, key: str) -> dict[str, Any]:
    found = ((f.name, getattr(record, f.name)) for f in dataclass_fields(record) if f.name != key)
    return {name: value for name, value in found if value is not None}


def overlay(base: Member, fresh: Member | None) -> Member:
    """``base`` with every field ``fresh`` knows (fresh is the platform's current answer)."""
    if fresh is None:
        return base
    return replace(base, **_known(fresh, "user_id"))


def overlay_department(base: Department, fresh: Department | None) -> Department:
    if fresh is None:
        return base
    return replace(base, **_known(fresh, "dept_id"))


async def _check_parent(ctx: EventContext, dept: Department) -> None:
    if ctx.corp is None or dept.parent_id is None or dept.dept_id == ctx.corp.root_dept_id:
        return
    await ctx.check_departments([dept.parent_id])


# -- members ---------------------------------------------------------------------------------------


def _create_reads(member: Member, known: Mapping[str, MemberState]) -> bool:
    """A create reads the member from the platform: IDs only; or the member is already here (an update
    overtook this create, or a full sync got there first) and the event's fields may be older than the
    platform's: read what the app may see."""
    return member.name is None or known.get(member.user_id, ("",))[0] == "active"


def _update_reads(member: Member, known: Mapping[str, MemberState]) -> bool:
    """An update reads the member from the platform when it is not here and the event does not name it (an
    update before its create)."""
    return member.name is None and member.user_id not in known


def _renames(fields: XmlFields, user_id: str) -> str | None:
    new_id = fields.get("NewUserID")
    return new_id if new_id is not None and new_id != user_id else None


def member_write(event_type: str, fields: XmlFields, known: Mapping[str, MemberState]) -> MemberWrite | None:
    """What a create_user or update_user event writes when that is all it does (no platform read, no rename),
    given ``known``, the ``member_states`` of its user id: its handler's one ``upsert_member``. None for any
    other event (its handler applies it)."""
    user_id = _required(fields, "UserID")
    if event_type == "create_user":
        member = member_from_fields(fields, user_id)
        return None if _create_reads(member, known) else MemberWrite(member, Reactivate.JOIN)
    if event_type == "update_user" and _renames(fields, user_id) is None:
        member = member_from_fields(fields, user_id)
        return None if _update_reads(member, known) else MemberWrite(member, Reactivate.NO)
    return None


async def create_user(ctx: EventContext, fields: XmlFields) -> Outcome:
    user_id = _required(fields, "UserID")
    member = member_from_fields(fields, user_id)
    if _create_reads(member, await ctx.directory().member_states([user_id])):
        member = overlay(member, await ctx.fetch_member(user_id))
    await ctx.upsert_member(member, Reactivate.JOIN)
    return Outcome.DONE


async def update_user(ctx: EventContext, fields: XmlFields) -> Outcome:
    directory = ctx.directory()
    user_id = _required(fields, "UserID")
    new_id = _renames(fields, user_id)
    if new_id is not None:
        if not await directory.rename_member(user_id, new_id):
            states = await directory.member_states([user_id, new_id])
            if user_id in states and new_id in states:
                # Both ids exist (the new one was created by an earlier out-of-order event): keep the
                # new row, retire the old one, and let a full sync sort out the links.
                await directory.offline_member(user_id, "platform")
                await ctx.request_sync("rename_conflict")
        user_id = new_id
    member = member_from_fields(fields, user_id)
    if member.name is None and _update_reads(member, await directory.member_states([user_id])):
        member = overlay(member, await ctx.fetch_member(user_id))
    await ctx.upsert_member(member, Reactivate.NO)
    return Outcome.DONE


# A delete of a member or department never known here: its create may still be on its way (WeCom delivers out
# of order, and a create carries the values it was made with, so applied after the delete it would bring back
# what the platform has removed), or the create was missed. Either way the local copy cannot be trusted, so
# the corp is reconciled by a full sync (debounced) rather than left silently different. A member that is
# already offline is known; a department deleted before is gone, so a second delete of it (a redelivery the
# inbox did not recognise) asks for one sync more than needed.
async def delete_user(ctx: EventContext, fields: XmlFields) -> Outcome:
    directory = ctx.directory()
    user_id = _required(fields, "UserID")
    if not await directory.offline_member(user_id, "platform") and not await directory.member_states([user_id]):
        await ctx.request_sync("delete_of_unknown_member")
    return Outcome.DONE


# -- departments -----------------------------------------------------------------------------------


async def create_party(ctx: EventContext, fields: XmlFields) -> Outcome:
    directory = ctx.directory()
    dept = department_from_fields(fields)
    if dept.name is None or not await directory.unknown_departments([dept.dept_id]):
        # IDs only; or already here (an update overtook this create): the platform's current answer wins.
        dept = overlay_department(dept, await ctx.fetch_department(dept.dept_id))
    await directory.upsert_department(dept)
    await _check_parent(ctx, dept)
    return Outcome.DONE


async def update_party(ctx: EventContext, fields: XmlFields) -> Outcome:
    directory = ctx.directory()
    dept = department_from_fields(fields)
    if dept.name is None and await directory.unknown_departments([dept.dept_id]):
        dept = overlay_department(dept, await ctx.fetch_department(dept.dept_id))
    await directory.upsert_department(dept)
    await _check_parent(ctx, dept)
    return Outcome.DONE


async def delete_party(ctx: EventContext, fields: XmlFields) -> Outcome:
    removal = await ctx.directory().delete_department(_required(fields, "Id"))
    if not removal.deleted:
        await ctx.request_sync("delete_of_unknown_department")  # see above delete_user
    elif removal.children or removal.members:
        await ctx.request_sync("removed_department_not_empty")
    return Outcome.DONE


# -- tags and batch jobs ---------------------------------------------------------------------------


async def update_tag(ctx: EventContext, fields: XmlFields) -> Outcome:
    directory = ctx.directory()
    tag_id = _required(fields, "TagId")
    created = await directory.upsert_tag(tag_id, None)
    if created is not None and created.op == "create":
        fetched = await ctx.fetch_tag(tag_id)
        if fetched is not None and fetched.name is not None:
            await directory.upsert_tag(tag_id, fetched.name)
    add_users = split_ids(fields.get("AddUserItems")) or ()
    add_depts = split_ids(fields.get("AddPartyItems")) or ()
    await ensure_members(ctx, add_users)
    await directory.change_tag_links(
        tag_id,
        add_users=add_users,
        remove_users=split_ids(fields.get("DelUserItems")) or (),
        add_depts=add_depts,
        remove_depts=split_ids(fields.get("DelPartyItems")) or (),
    )
    if ctx.corp is not None and add_depts:
        await ctx.check_departments(add_depts)
    return Outcome.DONE


async def batch_job_result(ctx: EventContext, fields: XmlFields) -> Outcome:
    """An async import/replace job finished: many changes happened without events. Reconcile."""
    job = fields.child("BatchJob")
    log.info(
        "batch job finished",
        extra={
            "action": "wecom_batch_job",
            "inbox_id": ctx.inbox_id,
            "job_type": None if job is None else job.get("JobType"),
            "errcode": None if job is None else job.get("ErrCode"),
        },
    )
    await ctx.request_sync("batch_job_result")
    return Outcome.DONE


HANDLERS: dict[str, Handler] = {
    "create_user": create_user,
    "update_user": update_user,
    "delete_user": delete_user,
    "create_party": create_party,
    "update_party": update_party,
    "delete_party": delete_party,
    "update_tag": update_tag,
    "batch_job_result": batch_job_result,
}

# App events that share the callback URL but say nothing about the directory: ignored, no reconciliation.
IRRELEVANT = frozenset(
    {
        "subscribe",
        "unsubscribe",
        "enter_agent",
        "LOCATION",
        "click",
        "view",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
        "open_approval_change",
        "taskcard_click",
        "template_card_event",
        "template_card_menu_event",
        "change_external_contact",
        "change_external_chat",
        "change_external_tag",
        "change_app_admin",
        "change_chain",
        "change_school_contact",
        "share_agent_change",
        "share_chain_change",
        "living_status_change",
        "msgaudit_notify",
        "sys_approval_change",
    }
)
