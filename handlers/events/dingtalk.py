"""DingTalk contact-event handlers. Events carry IDs only: members and departments are read back from the
platform (except on leave / remove: the object is gone), roles come from the event's label lists."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from handlers.events import EventContext, Outcome, ensure_members
from handlers.events.parse import DingTalkEvent
from handlers.store.corps import set_corp_status
from handlers.store.directory import Reactivate

log = logging.getLogger("corpsync.events.dingtalk")

Handler = Callable[[EventContext, DingTalkEvent], Awaitable[Outcome]]


# -- members ---------------------------------------------------------------------------------------


async def user_joined(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    """user_add_org / user_active_org: a (new) join; a member we cannot read is out of scope or gone."""
    for user_id in event.user_ids:
        member = await ctx.fetch_member(user_id)
        if member is not None:
            await ctx.upsert_member(member, Reactivate.JOIN)
    return Outcome.DONE


async def user_modify_org(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    directory = ctx.directory()
    for user_id in event.user_ids:
        member = await ctx.fetch_member(user_id)
        if member is not None:
            await ctx.upsert_member(member, Reactivate.CONFIRMED)
        elif await directory.member_states([user_id]):
            await ctx.request_sync("member_not_readable")  # left the visible scope, or left meanwhile
    return Outcome.DONE


async def user_leave_org(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    directory = ctx.directory()
    for user_id in event.user_ids:
        await directory.offline_member(user_id, "platform")
    return Outcome.DONE


# -- departments -----------------------------------------------------------------------------------


async def org_dept_changed(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    """org_dept_create / org_dept_modify: read the department back."""
    directory = ctx.directory()
    for dept_id in event.dept_ids:
        dept = await ctx.fetch_department(dept_id)
        if dept is None:
            if event.event_type == "org_dept_modify":
                await ctx.request_sync("department_not_readable")
            continue
        await directory.upsert_department(dept)
        root = ctx.corp.root_dept_id if ctx.corp is not None else None
        if ctx.corp is not None and dept.parent_id is not None and dept.dept_id != root:
            await ctx.check_departments([dept.parent_id])
    return Outcome.DONE


async def org_dept_remove(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    directory = ctx.directory()
    for dept_id in event.dept_ids:
        removal = await directory.delete_department(dept_id)
        if removal.children or removal.members:
            await ctx.request_sync("removed_department_not_empty")
    return Outcome.DONE


# -- admins and roles ------------------------------------------------------------------------------


async def org_admin_add(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    directory = ctx.directory()
    missing = await ensure_members(ctx, event.user_ids)
    for user_id in event.user_ids:
        if user_id not in missing:
            await directory.add_admin(user_id)
    return Outcome.DONE


async def org_admin_remove(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    directory = ctx.directory()
    for user_id in event.user_ids:
        await directory.remove_admin(user_id)
    return Outcome.DONE


async def _ensure_role(ctx: EventContext, role_id: str, name: str | None = None) -> None:
    directory = ctx.directory()
    change = await directory.upsert_role(role_id, name)
    if name is None and change is not None and change.op == "create":
        role = await ctx.fetch_role(role_id)
        if role is not None:
            await directory.upsert_role(role_id, role.name, role.group_name)


async def label_user_change(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    directory = ctx.directory()
    if event.action == "add":
        missing = await ensure_members(ctx, event.user_ids)
        users = tuple(u for u in event.user_ids if u not in missing)
        for role_id in event.label_ids:
            await _ensure_role(ctx, role_id)
            await directory.change_role_members(role_id, add=users)
    elif event.action in {"remove", "del", "delete"}:
        for role_id in event.label_ids:
            await directory.change_role_members(role_id, remove=event.user_ids)
    else:
        log.info(
            "unknown role action",
            extra={"action": "dingtalk_unknown_role_action", "inbox_id": ctx.inbox_id, "role_action": event.action},
        )
        await ctx.request_sync("unknown_role_action")
    return Outcome.DONE


async def label_conf_add(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    names = {label.label_id: label.name for label in event.post_labels}
    for role_id in event.label_ids:
        await _ensure_role(ctx, role_id, names.get(role_id))
    return Outcome.DONE


async def label_conf_modify(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    directory = ctx.directory()
    described = {label.label_id for label in event.post_labels}
    for label in event.post_labels:
        await directory.upsert_role(label.label_id, label.name)
    for role_id in event.label_ids:
        if role_id not in described:
            await _ensure_role(ctx, role_id)
    return Outcome.DONE


async def label_conf_del(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    directory = ctx.directory()
    for role_id in event.label_ids:
        await directory.delete_role(role_id)
    return Outcome.DONE


# -- the organization ------------------------------------------------------------------------------


async def org_change(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    """Corp information changed; the root department's rename comes as its own org_dept_modify."""
    return Outcome.DONE


async def org_remove(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    """The organization was dissolved: the corp is disabled; its directory is kept as it was."""
    if ctx.corp is not None and ctx.corp.status != "disabled":
        await set_corp_status(ctx.conn, ctx.corp.id, "disabled")
        values = {"status": {"before": ctx.corp.status, "after": "disabled"}}
        await ctx.directory().log("corp", ctx.corp.corp_id, "disable", ("status",), values)
    return Outcome.DONE


HANDLERS: dict[str, Handler] = {
    "user_add_org": user_joined,
    "user_active_org": user_joined,
    "user_modify_org": user_modify_org,
    "user_leave_org": user_leave_org,
    "org_dept_create": org_dept_changed,
    "org_dept_modify": org_dept_changed,
    "org_dept_remove": org_dept_remove,
    "org_admin_add": org_admin_add,
    "org_admin_remove": org_admin_remove,
    "label_user_change": label_user_change,
    "label_conf_add": label_conf_add,
    "label_conf_del": label_conf_del,
    "label_conf_modify": label_conf_modify,
    "org_change": org_change,
    "org_remove": org_remove,
}

# Answered and ignored without reconciliation: URL checks carry nothing.
IRRELEVANT = frozenset({"check_url", "check_create_suite_url", "check_update_suite_url"})

# Events whose handler reads members / departments back: the worker may read them ahead, concurrently.
FETCHES: dict[str, str] = {
    "user_add_org": "member",
    "user_active_org": "member",
    "user_modify_org": "member",
    "org_dept_create": "department",
    "org_dept_modify": "department",
}
