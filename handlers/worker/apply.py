"""Apply one inbox row: parse the plaintext, find the corp, run the handler from the table, report the outcome.

The caller (the worker) owns the transaction and marks the row. An unknown event type is not an error: it
is ignored, and — unless it is a known irrelevant one (app events, URL checks) — marks the corp for a full
sync. A malformed plaintext raises ``MalformedMessage``: retrying cannot help, the worker dead-letters it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from handlers.errors import CorpsyncError, MalformedMessage, UpstreamError
from handlers.events import CorpRef, EventContext, FetchKey, Outcome, Services, Shared, dingtalk, suite, wecom
from handlers.events.parse import DingTalkEvent, XmlFields, parse_dingtalk, parse_xml, wecom_event_type
from handlers.store.corps import corp_by_id, corp_by_name
from handlers.store.inbox import InboxRow

log = logging.getLogger("corpsync.apply")

SUITE_ROUTE = "wecom-suite"


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: Outcome
    event_type: str | None
    corp: int | None  # the corp the event concerned, when known


async def corp_of(conn: asyncpg.Connection, row: InboxRow, shared: Shared | None = None) -> CorpRef | None:
    """The corp of a per-corp route: the row's corp, else the corp named like the stream (suite tenants)."""
    key = (row.corp, row.stream)
    if shared is not None and key in shared.corps:
        return shared.corps[key]
    if row.corp is not None:
        found = await corp_by_id(conn, row.corp)
    else:
        found = await corp_by_name(conn, row.stream)
    corp = None if found is None else CorpRef.from_row(found)
    if shared is not None:
        shared.corps[key] = corp
    return corp


async def _unhandled(ctx: EventContext, event_type: str | None, irrelevant: frozenset[str]) -> Outcome:
    if event_type is not None and event_type in irrelevant:
        return Outcome.IGNORED
    log.info(
        "unknown event ignored",
        extra={"action": "event_unknown", "inbox_id": ctx.inbox_id, "event_type": event_type, "route": ctx.route},
    )
    await ctx.request_sync(f"unknown_event:{(event_type or '?')[:40]}")
    return Outcome.IGNORED


async def _apply_wecom(ctx: EventContext, row: InboxRow, fields: XmlFields) -> Outcome:
    event_type = wecom_event_type(fields)
    if event_type is None:  # a message (text, image, ...) on an app callback URL: nothing for the directory
        return Outcome.IGNORED
    if row.route == SUITE_ROUTE:
        if fields.get("InfoType") != "change_contact":
            handler = suite.HANDLERS.get(event_type or "")
            return await handler(ctx, fields) if handler else await _unhandled(ctx, event_type, suite.IRRELEVANT)
        auth = suite.suite_auth(ctx, fields)
        corp_id = fields.get("AuthCorpId")
        ctx.corp = None if auth is None or corp_id is None else await suite.tenant_corp(ctx, auth, corp_id)
        if ctx.corp is None:
            log.info(
                "contact event for an unknown tenant",
                extra={"action": "event_unknown_tenant", "inbox_id": ctx.inbox_id},
            )
            return Outcome.IGNORED
    handler = wecom.HANDLERS.get(event_type or "")
    if handler is None:
        return await _unhandled(ctx, event_type, wecom.IRRELEVANT)
    if ctx.corp is None:
        return Outcome.IGNORED
    return await handler(ctx, fields)


async def _apply_dingtalk(ctx: EventContext, event: DingTalkEvent) -> Outcome:
    handler = dingtalk.HANDLERS.get(event.event_type)
    if handler is None:
        return await _unhandled(ctx, event.event_type, dingtalk.IRRELEVANT)
    if ctx.corp is None:
        return Outcome.IGNORED
    return await handler(ctx, event)


async def apply_row(
    conn: asyncpg.Connection,
    row: InboxRow,
    services: Services,
    shared: Shared | None = None,
    *,
    fields: XmlFields | None = None,
) -> Applied:
    """Run the handler of one inbox row inside the caller's transaction; ``shared`` spans a drain turn.
    ``fields``: the row's WeCom message, when the caller has parsed it already."""
    shared = shared if shared is not None else Shared()
    corp = None if row.route == SUITE_ROUTE else await corp_of(conn, row, shared)
    ctx = EventContext(conn, row.id, row.route, row.stream, corp, services, shared)
    if row.platform == "dingtalk":
        event = parse_dingtalk(row.plaintext)
        outcome = await _apply_dingtalk(ctx, event)
        event_type: str | None = event.event_type
    else:
        fields = parse_xml(row.plaintext) if fields is None else fields
        event_type = wecom_event_type(fields)
        outcome = await _apply_wecom(ctx, row, fields)
    return Applied(outcome, event_type, None if ctx.corp is None else ctx.corp.id)


def describe_error(exc: BaseException) -> str:
    """An inbox ``last_error`` without payloads or personal data: types, API names and codes only."""
    if isinstance(exc, UpstreamError):
        return f"{type(exc).__name__}: {exc.api} errcode={exc.errcode}"
    if isinstance(exc, asyncpg.PostgresError):
        return f"{type(exc).__name__}: sqlstate={exc.sqlstate}"
    if isinstance(exc, CorpsyncError):
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return type(exc).__name__


# -- reading ahead ---------------------------------------------------------------------------------


def _wanted(row: InboxRow) -> list[FetchKey]:
    """Platform reads the row's handler will make for sure (DingTalk events are IDs only)."""
    if row.platform != "dingtalk":
        return []
    try:
        event = parse_dingtalk(row.plaintext)
    except MalformedMessage:
        return []
    kind = dingtalk.FETCHES.get(event.event_type)
    if kind == "member":
        return [("member", u) for u in event.user_ids]
    if kind == "department":
        return [("department", d) for d in event.dept_ids]
    return []


async def prefetch(
    conn: asyncpg.Connection, rows: Sequence[InboxRow], services: Services, shared: Shared, *, concurrency: int = 8
) -> None:
    """Read, concurrently, what a batch of one stream's rows will read one by one, into ``shared.reads``;
    failures are left out (the handler reads again and fails properly). Current state is valid for every row."""
    wanted = [k for k in dict.fromkeys(key for row in rows for key in _wanted(row)) if k not in shared.reads]
    if not wanted or services.clients is None:
        return
    corp = await corp_of(conn, rows[0], shared)
    client = None if corp is None else await services.clients.client(corp)
    if client is None:
        return
    gate = asyncio.Semaphore(concurrency)
    found = shared.reads

    async def read(key: FetchKey) -> None:
        async with gate:
            try:
                found[key] = await (client.member(key[1]) if key[0] == "member" else client.department(key[1]))
            except Exception:  # the handler reads again and records the failure properly
                return

    await asyncio.gather(*(read(key) for key in wanted))
