"""A batch of one stream's rows, applied in order in one transaction: a run of WeCom member events that only
write their member is read with one statement and written with one; every other row goes through apply_row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import asyncpg

from handlers.errors import MalformedMessage
from handlers.events import EventContext, Outcome, Services, Shared, wecom
from handlers.events.parse import XmlFields, parse_xml, wecom_event_type
from handlers.store.directory import Directory, MemberWrite, Source
from handlers.store.inbox import InboxRow
from handlers.worker.apply import SUITE_ROUTE, Applied, apply_row, corp_of

MEMBER_EVENTS = frozenset({"create_user", "update_user"})  # what may go in a run


async def apply_rows(
    conn: asyncpg.Connection, rows: Sequence[InboxRow], services: Services, shared: Shared
) -> list[Applied]:
    """``apply_row`` for each of one stream's rows, in order, inside the caller's transaction; what each applied.

    A run of WeCom create_user / update_user events of distinct members that only write their member
    (``wecom.member_write``) is applied with one read and one write (``Directory.upsert_members_checked``): the
    same rows and change-log rows as one by one. That write raises ``MemberRaced`` when another transaction
    inserted one of its members meanwhile: the caller rolls back and applies the rows one by one.
    """
    messages = [_message(row) for row in rows]  # each row is parsed once
    applied: list[Applied] = []
    while len(applied) < len(rows):
        at = len(applied)
        done = await _apply_member_run(conn, rows[at:], messages[at:], services, shared)
        applied += done or [await apply_row(conn, rows[at], services, shared, fields=messages[at])]
    return applied


async def _apply_member_run(
    conn: asyncpg.Connection,
    rows: Sequence[InboxRow],
    messages: Sequence[XmlFields | None],
    services: Services,
    shared: Shared,
) -> list[Applied]:
    """Apply the run of member writes at the head of ``rows`` together; [] when fewer than two could start it."""
    run: list[tuple[InboxRow, str, XmlFields]] = []
    users: set[str] = set()
    for row, fields in zip(rows, messages, strict=True):
        event_type = None if fields is None else wecom_event_type(fields)
        user_id = None if fields is None else fields.get("UserID")
        if fields is None or event_type not in MEMBER_EVENTS or user_id is None or user_id in users:
            break  # not a member event; or a member's second one, which must see the first one's write
        if (row.corp, row.stream) != (rows[0].corp, rows[0].stream):
            break
        run.append((row, event_type, fields))
        users.add(user_id)
    corp = await corp_of(conn, rows[0], shared) if len(run) > 1 else None
    if corp is None:
        return []
    directory = Directory(conn, corp.id, Source("event"))
    known = await directory.member_states(users)
    writes: list[MemberWrite] = []
    for row, event_type, fields in run:
        write = wecom.member_write(event_type, fields, known)
        if write is None:
            break
        writes.append(replace(write, inbox_id=row.id))
    if not writes:
        return []
    results = await directory.upsert_members_checked(writes)
    for (row, _, _), (_, unknown) in zip(run, results, strict=False):
        if unknown:  # as EventContext.upsert_member does; once: a second request is no news
            await EventContext(conn, row.id, row.route, row.stream, corp, services, shared).request_sync(
                "unknown_department"
            )
            break
    return [Applied(Outcome.DONE, event_type, corp.id) for _, event_type, _ in run[: len(writes)]]


def _message(row: InboxRow) -> XmlFields | None:
    """The parsed message of a WeCom per-corp row; None for any other row, or one that does not parse (apply_row
    parses it again and dead-letters it)."""
    if row.platform == "dingtalk" or row.route == SUITE_ROUTE:
        return None
    try:
        return parse_xml(row.plaintext)
    except MalformedMessage:
        return None
