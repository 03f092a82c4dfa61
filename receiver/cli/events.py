"""``export-events`` and ``replay``: inbox rows out to a file, and back through the handlers or to a receiver
(the work itself is receiver.cli.replay's)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from handlers.errors import ConfigError
from handlers.store import pool as db
from receiver.cli.common import CommandFailed, database, load_config
from receiver.settings import Settings


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since: expected an ISO-8601 time such as 2026-11-21T08:00:00+08:00, got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def export_events(args: argparse.Namespace, settings: Settings) -> int:
    """Inbox rows as JSON lines (raw request and plaintext) on stdout or into --out."""
    from receiver import runtime
    from receiver.cli.replay import export_events as export

    since = _since(args.since)

    async def run(url: str, out: TextIO) -> int:
        async with runtime.database(url, min_size=1, max_size=2) as pool:
            async with pool.acquire() as conn:
                if await db.schema_version(conn) is None:
                    raise CommandFailed(
                        f"database {db.redacted(url)} has no corpsync schema yet, so no events to export "
                        "(run corpsync migrate or corpsync serve first)"
                    )
            return await export(pool, out, args.corp, since)

    with database(settings) as url, contextlib.ExitStack() as files:
        out = files.enter_context(open(args.out, "w", encoding="utf-8")) if args.out else sys.stdout
        count = asyncio.run(run(url, out))
    print(f"exported {count} events", file=sys.stderr)
    return 0


def replay(args: argparse.Namespace, settings: Settings) -> int:
    """Re-apply exported events through the handlers, or re-send their raw requests to a running receiver."""
    from handlers.clients import http_session
    from receiver.cli.replay import MalformedReplayFile, read_lines, replay_file
    from receiver.runtime import open_runtime

    if not Path(args.file).is_file():
        print(f"corpsync: no such file: {args.file}", file=sys.stderr)
        return 2
    try:
        for _ in read_lines(args.file):  # the whole file is checked before anything is sent or inserted
            pass
    except MalformedReplayFile as exc:
        raise CommandFailed(str(exc), 2) from None

    async def resend() -> int:
        async with http_session() as session:
            report = await replay_file(args.file, url=args.url.rstrip("/"), session=session)
        print(f"read {report.read}, sent {report.sent}, failed {report.failed}, skipped {report.skipped}")
        if report.failed:
            raise CommandFailed(f"{report.failed} of {report.read} sends failed: {report.failures()}")
        return 0

    async def reapply(url: str) -> str:
        config = load_config(settings)
        async with open_runtime(url, config, min_size=1, max_size=8) as runtime:
            report = await replay_file(args.file, pool=runtime.pool, worker=runtime.worker())
        return f"read {report.read}, new {report.inserted}, duplicates {report.duplicates}, applied {report.applied}"

    if args.url:
        return asyncio.run(resend())
    with database(settings) as url:
        print(asyncio.run(reapply(url)))
    return 0
