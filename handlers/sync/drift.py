"""Drift detection: every reason to distrust the incremental path ends in a (debounced) full-sync request.

Here: gaps in the receivers' heartbeats, blind time of DingTalk Stream corps (no process connected), a
platform member count that disagrees with the local active count, a non-empty DingTalk failed-events list,
and ``request`` for dead letters. The handlers flag the rest as they meet it: a reference to an unknown
department (``EventContext.check_departments``) and an unknown event type (``handlers.worker.apply``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Protocol, runtime_checkable

import asyncpg
import orjson

from handlers.clients.dingtalk_records import FailedEvent
from handlers.events.parse import dedupe_key, normalize_failed_entry, parse_dingtalk
from handlers.store.corps import active_corps, request_sync
from handlers.store.drift import active_and_pending, forget_beats, record_beat, since_last_beat
from handlers.store.inbox import InboxRecord, ensure_streams, inbox_values_of, insert_inbox_rows
from handlers.store.stream import link_connected, link_live

log = logging.getLogger("corpsync.drift")


async def request(conn: asyncpg.Connection, corp: int, reason: str, *, inbox_id: int | None = None) -> None:
    """Ask for a full sync of ``corp`` (kept as it is when a request is already open)."""
    await request_sync(conn, corp, reason)
    log.info(
        "full sync requested",
        extra={"action": "sync_requested", "corp": corp, "reason": reason, "inbox_id": inbox_id},
    )


# -- heartbeats and gaps ---------------------------------------------------------------------------


async def beat(conn: asyncpg.Connection, process: str, max_gap: timedelta) -> bool:
    """Record this process's heartbeat; when no receiver beat for longer than ``max_gap``, request a
    full sync of every active corp (events may have been lost meanwhile). Returns whether a gap was seen.

    The first beat of a fresh database (no rows at all) is not a gap: start-up sync covers that case.
    """
    async with conn.transaction():
        since = await since_last_beat(conn)
        await record_beat(conn, process)
        if since is None or since <= max_gap:
            return False
        corps = await active_corps(conn)
        for corp in corps:
            await request_sync(conn, corp["id"], "gap")
    log.warning(
        "receiver gap", extra={"action": "receiver_gap", "seconds": int(since.total_seconds()), "corps": len(corps)}
    )
    return True


async def forget_process(conn: asyncpg.Connection, process: str) -> None:
    """A clean shutdown: the process's row goes; other rows older than a week are pruned too."""
    await forget_beats(conn, process)


# -- DingTalk Stream: blind time --------------------------------------------------------------------


async def stream_connected(conn: asyncpg.Connection, corp: int, process: str, now: float, max_gap: float) -> bool:
    """A Stream connection of ``corp`` opened at ``now`` (epoch seconds, the consumer's clock). When no process of
    the corp had a live connection for longer than ``max_gap`` seconds, events may have been lost (Stream has no
    failed-events list), so a full sync is requested, as for a receiver gap. Returns whether it was.

    The first connection a corp ever has is not a gap: the start-up sync covers that case."""
    async with conn.transaction():
        blind = await link_connected(conn, corp, process, now)
        if blind is None or blind <= max_gap:
            return False
        await request(conn, corp, "stream_gap")
    log.warning("stream blind", extra={"action": "stream_gap", "corp": corp, "seconds": int(blind)})
    return True


async def stream_live(conn: asyncpg.Connection, corp: int, process: str, now: float) -> None:
    """``process``'s Stream connection of ``corp`` was live at ``now`` (while connected, and as it ends)."""
    await link_live(conn, corp, process, now)


# -- comparison with the platform -----------------------------------------------------------------


class CountSource(Protocol):
    async def member_count(self) -> int | None: ...


async def compare_member_count(conn: asyncpg.Connection, corp: int, stream: str, client: CountSource) -> bool:
    """Compare the platform's member count with the local active count; True when they disagree.

    Skipped (False) while events of the corp are still pending, and when the platform gives no count.
    """
    remote = await client.member_count()
    if remote is None:
        return False
    active, pending = await active_and_pending(conn, corp, stream)
    if pending or remote == active:
        return False
    await request(conn, corp, "member_count")
    log.info(
        "member count differs",
        extra={"action": "member_count_differs", "corp": corp, "remote": remote, "local": active},
    )
    return True


# -- DingTalk failed-events list -------------------------------------------------------------------


@runtime_checkable
class FailedEventSource(Protocol):
    """A DingTalk client: calls ``persist`` with each batch of ``get_call_back_failed_result`` entries,
    and fetches the next batch (which deletes the previous one upstream) only after ``persist`` returned."""

    async def drain_failed_events(self, persist: Callable[[list[FailedEvent]], Awaitable[None]]) -> int: ...


async def persist_failed_entries(
    pool: asyncpg.Pool, corp: int, stream: str, entries: Sequence[FailedEvent], *, route: str = "dingtalk-failed"
) -> int:
    """Commit failed-list entries to the inbox as legacy-shape plaintexts (deduped like the intake does;
    the raw entry is kept as the body). A non-empty list is drift. Returns how many rows were new."""
    rows: list[tuple[bytes, str]] = []
    for entry in entries:
        try:
            doc = orjson.loads(entry.payload)
        except orjson.JSONDecodeError:
            continue
        plaintext = normalize_failed_entry(doc) if isinstance(doc, dict) else None
        if plaintext is not None:
            rows.append((plaintext, entry.payload))
    if not entries:
        return 0
    async with pool.acquire() as conn, conn.transaction():
        await ensure_streams(conn, [stream])
        records = [
            InboxRecord(
                stream=stream,
                platform="dingtalk",
                route=route,
                corp=corp,
                dedupe_key=dedupe_key("dingtalk", p),
                event_type=parse_dingtalk(p).event_type,
                query={},
                body=body.encode(),
                plaintext=p,
            )
            for p, body in rows
        ]
        written = await insert_inbox_rows(conn, inbox_values_of(records))
        await request(conn, corp, "failed_events")
    log.info(
        "failed events drained",
        extra={"action": "failed_events_drained", "corp": corp, "entries": len(entries), "new": len(written)},
    )
    return len(written)
