"""One-shot commands on the app dir and the database: ``check-config``, ``migrate`` and ``sync``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from handlers.store import pool as db
from receiver.appdir.registration import registration_lines
from receiver.cli.common import database, load_config
from receiver.settings import Settings


def check_config(args: argparse.Namespace, settings: Settings) -> int:
    config = load_config(settings)
    if settings.public_url is None:
        print(
            f"corpsync: warning: CORPSYNC_PUBLIC_URL is not set, so the URLs below use {settings.base_url}, which "
            "the platforms cannot reach; set it to the HTTPS address they call",
            file=sys.stderr,
        )
    for line in registration_lines(config, settings.base_url):
        print(line)
    return 0


def migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def run(url: str) -> list[int]:
        conn = await db.connect(url)
        try:
            return await db.migrate(conn)
        finally:
            await conn.close()

    with database(settings) as url:
        applied = asyncio.run(run(url))
    print(f"schema at version {db.head_version()}" + (f" (applied {applied})" if applied else " (nothing to do)"))
    return 0


SYNC_EXIT = {"succeeded": 0, "failed": 1, "quarantined": 3, "already_running": 4}


def sync(args: argparse.Namespace, settings: Settings) -> int:
    """Full sync of one corp now: progress bar on a terminal, then the summary. Exit 3 when quarantined."""
    from handlers.store.corps import ensure_corp
    from handlers.sync.fullsync import format_summary, run_full_sync
    from receiver.cli.progress import ProgressBar
    from receiver.runtime import open_runtime

    config = load_config(settings)
    corp = config.corps.get(args.corp)
    if corp is None:
        known = ", ".join(sorted(config.corps)) or "none"
        print(f"corpsync: no corp named {args.corp!r} in {settings.app_dir} (corps: {known})", file=sys.stderr)
        return 2

    async def run(url: str) -> str:
        bar = ProgressBar()
        try:
            async with open_runtime(url, config, min_size=1, max_size=8, register=False) as runtime:
                async with runtime.pool.acquire() as conn:
                    row = await ensure_corp(conn, corp)
                result = await run_full_sync(
                    runtime.pool,
                    row,
                    corp,
                    runtime.client(corp),
                    trigger="manual",
                    allow_deletes=args.allow_deletes,
                    progress=bar if bar.enabled else None,
                )
        finally:
            bar.close()
        print(format_summary(result))
        return str(result.status.value)

    with database(settings) as url:
        status = asyncio.run(run(url))
    return SYNC_EXIT.get(status, 1)
