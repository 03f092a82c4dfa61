"""WeCom suite instruction events (route 'wecom-suite'): tickets, authorizations and their cancellation."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from handlers.config import SuiteAuth, WecomProxyCorp
from handlers.errors import ApplyError, MalformedMessage
from handlers.events import CorpRef, EventContext, Outcome
from handlers.events.parse import XmlFields
from handlers.store import credentials
from handlers.store.corps import corp_by_name, corp_for_tenant, ensure_corp, set_corp_status, tenant_name
from handlers.store.directory import Directory, Source

log = logging.getLogger("corpsync.events.suite")

Handler = Callable[[EventContext, XmlFields], Awaitable[Outcome]]
SuiteHandler = Callable[[EventContext, SuiteAuth, XmlFields], Awaitable[Outcome]]

EXCHANGED_FOR = timedelta(days=1)  # how long we remember which corp an auth code was exchanged for
MAX_SECONDS_DIGITS = 10  # a suite_ticket's TimeStamp in seconds; any longer is past what a datetime holds, or near it


def _required(fields: XmlFields, name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise MalformedMessage(f"{name} missing")
    return value


def suite_auth(ctx: EventContext, fields: XmlFields) -> SuiteAuth | None:
    """The configured auth whose suite id the event names (a shared URL must not mix suites' data)."""
    config = ctx.services.config
    suite_id = fields.get("SuiteId")
    if config is None or suite_id is None:
        return None
    return next((a for a in config.auths.values() if a.suite_id == suite_id), None)


def of_configured_suite(handler: SuiteHandler) -> Handler:
    """``handler`` with the configured auth the event is for; the event of any other suite is ignored."""

    async def run(ctx: EventContext, fields: XmlFields) -> Outcome:
        auth = suite_auth(ctx, fields)
        return Outcome.IGNORED if auth is None else await handler(ctx, auth, fields)

    return run


async def tenant_corp(ctx: EventContext, auth: SuiteAuth, corp_id: str) -> CorpRef | None:
    row = await corp_for_tenant(ctx.conn, auth.name, corp_id)
    return None if row is None else CorpRef.from_row(row)


async def register_tenant(ctx: EventContext, auth: SuiteAuth, corp_id: str, corp_name: str | None) -> CorpRef:
    """The tenant's corps row: the configured proxy corp with that corpId, else ``<auth>/<corpid>``; active."""
    config = ctx.services.config
    configured = next(
        (
            c
            for c in (config.corps.values() if config is not None else ())
            if isinstance(c, WecomProxyCorp) and c.auth.name == auth.name and c.corp_id == corp_id
        ),
        None,
    )
    corp = configured or WecomProxyCorp(
        name=tenant_name(auth.name, corp_id), title=corp_name or corp_id, corp_id=corp_id, auth=auth
    )
    before = await tenant_corp(ctx, auth, corp_id)
    row_id = await ensure_corp(ctx.conn, corp)
    await set_corp_status(ctx.conn, row_id, "active")
    directory = Directory(ctx.conn, row_id, Source("event", inbox_id=ctx.inbox_id))
    if before is None:
        await directory.log("corp", corp_id, "create")
    elif before.status != "active":
        await directory.log(
            "corp", corp_id, "enable", ("status",), {"status": {"before": before.status, "after": "active"}}
        )
    row = await corp_by_name(ctx.conn, corp.name)
    if row is None:  # ensure_corp wrote it in this transaction
        raise RuntimeError(f"corp {corp.name} vanished while it was registered")
    return CorpRef.from_row(row)


async def _exchange(ctx: EventContext, auth: SuiteAuth, auth_code: str) -> tuple[str, str | None]:
    """Exchange a single-use auth code at most once. The suite client commits the tenant at once; a note
    (committed at once too) says which corp the code was for, so a retry of this event does not spend it
    again but finds the tenant."""
    note = f"wecom:auth_code_exchanged:{auth.suite_id}:{credentials.fingerprint(auth_code)}"
    done = await credentials.load_credential(ctx.conn, note)
    if done is not None:
        tenant = await credentials.load_tenant(ctx.conn, auth.name, done.value)
        return done.value, None if tenant is None else tenant.corp_name
    if ctx.services.suite_api is None:
        raise ApplyError("no suite client configured")
    tenant = await ctx.services.suite_api(auth).exchange_auth_code(auth_code)
    db: Any = ctx.services.pool or ctx.conn
    await credentials.store_credential(db, note, tenant.corp_id, credentials.utcnow() + EXCHANGED_FOR)
    return tenant.corp_id, tenant.corp_name


async def authorized(ctx: EventContext, auth: SuiteAuth, fields: XmlFields) -> Outcome:
    """create_auth / reset_permanent_code: exchange the code, register the tenant, sync it."""
    corp_id, corp_name = await _exchange(ctx, auth, _required(fields, "AuthCode"))
    ctx.corp = await register_tenant(ctx, auth, corp_id, corp_name)
    await ctx.request_sync(fields.get("InfoType") or "create_auth")
    return Outcome.DONE


async def change_auth(ctx: EventContext, auth: SuiteAuth, fields: XmlFields) -> Outcome:
    """Visible range, permissions or mode changed: refresh the auth info and reconcile the tenant."""
    corp_id = _required(fields, "AuthCorpId")
    tenant = await credentials.load_tenant(ctx.conn, auth.name, corp_id)
    if tenant is None or tenant.permanent_code is None:
        log.info(
            "change_auth for an unknown tenant",
            extra={"action": "suite_unknown_tenant", "auth": auth.name, "inbox_id": ctx.inbox_id},
        )
        return Outcome.IGNORED
    if ctx.services.suite_api is not None:
        tenant = await ctx.services.suite_api(auth).get_auth_info(corp_id)
    ctx.corp = await tenant_corp(ctx, auth, corp_id) or await register_tenant(ctx, auth, corp_id, tenant.corp_name)
    await ctx.request_sync("change_auth")
    return Outcome.DONE


async def cancel_auth(ctx: EventContext, auth: SuiteAuth, fields: XmlFields) -> Outcome:
    """The corp removed the app: the tenant is cancelled, its corp disabled, its directory kept as it was."""
    corp_id = _required(fields, "AuthCorpId")
    await credentials.set_tenant_status(ctx.conn, auth.name, corp_id, "cancelled")
    ctx.corp = await tenant_corp(ctx, auth, corp_id)
    if ctx.corp is not None and ctx.corp.status != "disabled":
        await set_corp_status(ctx.conn, ctx.corp.id, "disabled")
        values = {"status": {"before": ctx.corp.status, "after": "disabled"}}
        await ctx.directory().log("corp", corp_id, "disable", ("status",), values)
    return Outcome.DONE


async def suite_ticket(ctx: EventContext, auth: SuiteAuth, fields: XmlFields) -> Outcome:
    """Keep the newest ticket per suite (by TimeStamp; pushes arrive late and out of order)."""
    stamp = fields.get("TimeStamp")
    pushed_at: datetime | int = credentials.utcnow()  # without a time in seconds (10 digits until 2286): now
    if stamp is not None and stamp.isascii() and stamp.isdigit() and len(stamp) <= MAX_SECONDS_DIGITS:
        pushed_at = int(stamp)
    await credentials.store_suite_ticket(ctx.conn, auth.suite_id, _required(fields, "SuiteTicket"), pushed_at)
    return Outcome.DONE


# The instructions above that change which corps have authorized a suite (the data URL accepts their callbacks).
ADDS_TENANTS = frozenset({"create_auth", "reset_permanent_code", "change_auth"})
REMOVES_TENANTS = frozenset({"cancel_auth"})

HANDLERS: dict[str, Handler] = {
    "suite_ticket": of_configured_suite(suite_ticket),
    "create_auth": of_configured_suite(authorized),
    "reset_permanent_code": of_configured_suite(authorized),
    "change_auth": of_configured_suite(change_auth),
    "cancel_auth": of_configured_suite(cancel_auth),
}

# Instruction events that do not concern the directory.
IRRELEVANT = frozenset(
    {
        "change_app_admin",
        "share_agent_change",
        "share_chain_change",
        "corp_arch_auth",
        "register_corp",
        "open_order",
        "change_order",
        "pay_for_app_success",
        "refund",
        "change_editon",
        "unlicensed_notify",
        "license_pay_success",
        "license_refund",
        "auto_activate",
        "approve_special_auth",
        "cancel_special_auth",
        "change_external_contact",
        "change_external_chat",
        "change_external_tag",
    }
)
