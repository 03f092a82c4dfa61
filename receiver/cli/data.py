"""Bounded data from the command line: ``purge [--dry-run]`` (the retention purge now) and ``forget CORP MEMBER``
(erase a departed member's personal fields and their events' messages)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from handlers.store import retention
from handlers.store.corps import corp_id_by_name
from handlers.worker.purge import DESCRIBE, KINDS, Purger
from receiver.cli.common import database
from receiver.settings import Settings

FORGET_BATCH = 5000  # inbox rows looked at per transaction
DRY_RUN = {
    "inbox_payloads": "inbox payloads to strip",
    "inbox": "inbox rows to delete",
    "change_log": "change_log rows to delete",
    "sync_runs": "sync runs to delete",
}


def purge(args: argparse.Namespace, settings: Settings) -> int:
    """Run the retention purge to the end now, or (``--dry-run``) count what it would purge; print per kind."""
    from receiver import runtime

    async def run(url: str) -> int:
        async with runtime.database(url, min_size=1, max_size=2, migrate=True) as pool:
            report = await Purger(pool, settings.retention).purge(dry_run=args.dry_run)
        if report.skipped:
            print("corpsync: another process is purging now; try again later", file=sys.stderr)
            return 1
        labels = DRY_RUN if args.dry_run else DESCRIBE
        for kind in KINDS:
            period = settings.retention.period(kind)
            if period is None:
                print(f"{kind}: kept forever")
            else:
                print(f"{labels[kind]} (older than {_period(period.total_seconds())}): {report.counts[kind]}")
        return 0

    with database(settings) as url:
        return asyncio.run(run(url))


def _period(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def forget(args: argparse.Namespace, settings: Settings) -> int:
    """Erase an offline member's personal fields and signature, and the messages of the settled events that
    name them. Exit 1 when the member is still active, 2 for an unknown corp or member."""
    from receiver import runtime

    async def run(url: str) -> int:
        async with runtime.database(url, min_size=1, max_size=2, migrate=True) as pool, pool.acquire() as conn:
            corp_row = await corp_id_by_name(conn, args.corp)
            if corp_row is None:
                print(f"corpsync: no corp named {args.corp!r} in the database", file=sys.stderr)
                return 2
            async with conn.transaction():
                status = await retention.forget_member(conn, corp_row, args.member)
            if status is None:
                print(f"corpsync: corp {args.corp} has no member {args.member!r}", file=sys.stderr)
                return 2
            if status != "offline":
                print(
                    f"corpsync: member {args.member!r} of {args.corp} is active; only a departed (offline) "
                    "member can be forgotten",
                    file=sys.stderr,
                )
                return 1
            erased, after = 0, 0
            while True:
                after, count = await retention.forget_events(conn, corp_row, args.member, after, FORGET_BATCH)
                erased += count
                if not after:
                    break
            pending = await retention.pending_events_naming(conn, corp_row, args.member)
        print(f"forgot member {args.member} of {args.corp}: personal fields erased, {erased} event messages erased")
        if pending:
            print(f"{pending} pending events name them; run forget again once they are applied", file=sys.stderr)
        return 0

    with database(settings) as url:
        return asyncio.run(run(url))
