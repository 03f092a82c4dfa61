"""Export inbox rows as JSON lines, and replay such a file: through the handlers, or to a running receiver.

A line holds the raw request (route, path, query, body), the decrypted plaintext and when it came.
Replaying into a database inserts with the inbox's dedupe rule (an event already there is skipped) and
then applies; replaying to a URL re-sends each raw request as the platform did (its signature still holds).
Exports hold contact data: treat the file like the database.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import aiohttp
import asyncpg
import orjson

from handlers.events.parse import dedupe_key
from handlers.store.corps import corp_id_by_name
from handlers.store.inbox import InboxRecord, ensure_streams, export_page, inbox_values_of, insert_inbox_rows
from handlers.store.pool import Row
from handlers.worker.loop import Worker

log = logging.getLogger("corpsync.replay")

PAGE = 1000


@dataclass(frozen=True, slots=True)
class ReplayReport:
    read: int = 0
    inserted: int = 0  # new inbox rows (database mode)
    duplicates: int = 0  # already in the inbox (database mode)
    sent: int = 0  # answered 2xx (URL mode)
    failed: int = 0  # answered otherwise or not at all (URL mode)
    skipped: int = 0  # no raw request to send (failed-list entries, URL mode)
    applied: int = 0  # rows the worker settled afterwards (database mode)
    why_failed: dict[str, int] = field(default_factory=dict)  # reason → sends that failed for it (URL mode)

    def failures(self) -> str:
        """The reasons sends failed, most frequent first: ``HTTP 403 (2), connection refused (1)``."""
        ordered = sorted(self.why_failed.items(), key=lambda item: -item[1])
        return ", ".join(f"{reason} ({count})" for reason, count in ordered)


class MalformedReplayFile(ValueError):
    """A replay file line that is not an exported event; the message names the file and the line."""


def callback_path(route: str, stream: str, corp_name: str | None, auth_name: str | None) -> str | None:
    """The receiver path a row came in on; None for rows with no HTTP request behind them."""
    if route in ("wecom", "dingtalk"):
        return f"/callback/{route}/{corp_name or stream}"
    if route == "wecom-suite":
        return f"/callback/wecom-suite/{stream.removeprefix('suite:')}"
    if route == "wecom-suite-data":
        auth = auth_name or stream.split("/", 1)[0]
        return f"/callback/wecom-suite/{auth}/data"
    return None


async def _rows(pool: asyncpg.Pool, corp: str | None, since: datetime | None) -> AsyncIterator[Row]:
    last = 0
    while True:
        rows = await export_page(pool, corp, since, last, PAGE)
        for row in rows:
            yield row
        if len(rows) < PAGE:
            return
        last = rows[-1]["id"]


async def export_events(
    pool: asyncpg.Pool, out: IO[str], corp: str | None = None, since: datetime | None = None
) -> int:
    """Write the inbox rows (of one corp or stream, received since a time) to ``out``; return how many."""
    count = 0
    async for row in _rows(pool, corp, since):
        line: dict[str, Any] = {
            "route": row["route"],
            "platform": row["platform"],
            "stream": row["stream"],
            "corp": row["corp_name"],
            "path": callback_path(row["route"], row["stream"], row["corp_name"], row["auth_name"]),
            "query": row["query"],
            "body": row["body"],
            "plaintext": row["plaintext"],
            "received_at": row["received_at"].isoformat(),
            "event_type": row["event_type"],
            "status": row["status"],
        }
        out.write(orjson.dumps(line).decode() + "\n")
        count += 1
    log.info("events exported", extra={"action": "events_exported", "rows": count, "corp": corp})
    return count


_FIELDS = ("route", "platform", "stream", "plaintext")


def read_lines(path: Path | str) -> Iterator[dict[str, Any]]:
    """The events of an export, line by line; MalformedReplayFile names the first line that is not one."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise MalformedReplayFile(
                    f"{path}, line {number}: not JSON (expected one event per line, as export-events writes)"
                ) from None
            if not isinstance(line, dict):
                raise MalformedReplayFile(f"{path}, line {number}: expected a JSON object, as export-events writes")
            missing = [name for name in _FIELDS if not isinstance(line.get(name), str)]
            if missing:
                raise MalformedReplayFile(f"{path}, line {number}: not an exported event (no {', '.join(missing)})")
            yield line


async def _insert(pool: asyncpg.Pool, line: dict[str, Any]) -> bool:
    plaintext = str(line["plaintext"])
    async with pool.acquire() as conn, conn.transaction():
        corp = await corp_id_by_name(conn, line["corp"]) if line.get("corp") else None
        await ensure_streams(conn, [line["stream"]])
        record = InboxRecord(
            stream=line["stream"],
            platform=line["platform"],
            route=line["route"],
            corp=corp,
            dedupe_key=dedupe_key(str(line["platform"]), plaintext.encode()),
            event_type=line.get("event_type"),
            query=line.get("query") or {},
            body=str(line.get("body") or "").encode(),
            plaintext=plaintext.encode(),
        )
        rows = await insert_inbox_rows(conn, inbox_values_of([record]))
    return bool(rows)


SENT, SKIPPED = "sent", "skipped"


async def _send(session: aiohttp.ClientSession, url: str, line: dict[str, Any]) -> str:
    """Re-send one raw request: SENT, SKIPPED (no HTTP request behind the row), or why it failed."""
    path = line.get("path") or callback_path(line["route"], line["stream"], line.get("corp"), None)
    if path is None:
        return SKIPPED
    content = "application/json" if line["platform"] == "dingtalk" else "text/xml"
    try:
        async with session.post(
            url.rstrip("/") + path, params=line.get("query") or {}, data=str(line.get("body") or "").encode(),
            headers={"Content-Type": content},
        ) as response:  # fmt: skip
            await response.read()
            return SENT if 200 <= response.status < 300 else f"HTTP {response.status} on {path}"
    except aiohttp.ClientConnectorError as exc:
        return f"cannot connect to {exc.host}:{exc.port} ({exc.strerror or 'refused'})"
    except TimeoutError:
        return "no answer in time"
    except aiohttp.ClientError as exc:
        return type(exc).__name__


async def replay_file(
    path: Path | str,
    *,
    pool: asyncpg.Pool | None = None,
    worker: Worker | None = None,
    url: str | None = None,
    session: aiohttp.ClientSession | None = None,
) -> ReplayReport:
    """Replay an export: with ``url`` (and an HTTP ``session``), re-send each raw request to that receiver;
    otherwise insert into ``pool``'s inbox and, with a ``worker``, apply everything due."""
    read = inserted = duplicates = sent = failed = skipped = 0
    why: Counter[str] = Counter()
    for line in read_lines(path):
        read += 1
        if url is not None:
            if session is None:
                raise ValueError("replaying to a URL needs an HTTP session")
            outcome = await _send(session, url, line)
            if outcome == SKIPPED:
                skipped += 1
            elif outcome == SENT:
                sent += 1
            else:
                failed += 1
                why[outcome] += 1
        elif pool is not None:
            if await _insert(pool, line):
                inserted += 1
            else:
                duplicates += 1
        else:
            raise ValueError("replay needs a database pool or a URL")
    applied = await worker.run_until_idle() if worker is not None and url is None else 0
    report = ReplayReport(read, inserted, duplicates, sent, failed, skipped, applied, dict(why))
    log.info(
        "events replayed",
        extra={"action": "events_replayed", "read": read, "inserted": inserted, "duplicates": duplicates,
               "sent": sent, "failed": failed, "skipped": skipped, "applied": applied},
    )  # fmt: skip
    return report
