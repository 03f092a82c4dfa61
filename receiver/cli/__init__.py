"""The ``corpsync`` command line (also ``python -m receiver``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from aiohttp import web

from handlers.config import AppConfig
from handlers.errors import ConfigError
from handlers.store import pool as db
from receiver.appdir import describe, load_app_dir
from receiver.embedded import EmbeddedPostgres, start_embedded
from receiver.ops.logs import configure_logging
from receiver.settings import Settings, settings_from_env

log = logging.getLogger("corpsync.cli")

Command = Callable[[argparse.Namespace, Settings], int]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        COMMANDS[name] = fn
        return fn

    return register


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The database URL to use: CORPSYNC_DATABASE_URL, or the embedded server (stopped on exit)."""
    if settings.database_url:
        yield settings.database_url
        return
    embedded: EmbeddedPostgres = start_embedded(settings.app_dir)
    try:
        yield embedded.url
    finally:
        embedded.stop()


def load_config(settings: Settings) -> AppConfig:
    import os

    return load_app_dir(settings.app_dir, os.environ)


async def settle_heap(app: web.Application) -> None:
    """Tune the cyclic garbage collector for serving, once start-up is done.

    What start-up made (modules, config, the app) lives as long as the process: ``gc.freeze`` takes it out of
    every later collection. And a collection of the youngest objects every 7,000 allocations instead of 700:
    each one walks what is in flight then (the requests being answered), so ten times fewer walks cost a
    tenth; at the default, collections were about 3% of the instructions a callback costs (callgrind).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(7_000, 10, 10)


def new_event_loop(choice: str) -> tuple[asyncio.AbstractEventLoop, str]:
    """The event loop ``serve`` runs on, and its name: ``choice`` is a ``CORPSYNC_EVENT_LOOP`` value.

    uvloop, where it is installed (every platform but Windows), runs the transports, the timers and the
    ready queue in C: at bench/ingest.py's closed loop `corpsync serve` spent 90-110 us of CPU per callback on it
    against 96-119 us on asyncio's own loop (same machine, back to back). ``asyncio`` is there to rule the loop
    out when chasing a bug.
    """
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigError("CORPSYNC_EVENT_LOOP=uvloop, but uvloop is not installed") from None
        else:
            return uvloop.new_event_loop(), "uvloop"
    return asyncio.new_event_loop(), "asyncio"


@command("serve")
def serve(args: argparse.Namespace, settings: Settings) -> int:
    from receiver.app import create_app

    config = load_config(settings)
    loop, loop_name = new_event_loop(settings.event_loop)  # before the database: a missing uvloop fails at once
    with contextlib.closing(loop), database(settings) as url:  # run_app closes it too; closing twice is fine
        app = create_app(settings, config, url)
        app.on_startup.append(settle_heap)
        log.info(
            "serving",
            extra={
                "action": "serve_started",
                "host": settings.host,
                "port": settings.port,
                "corps": len(config.corps),
                "event_loop": loop_name,
            },
        )
        web.run_app(
            app, host=settings.host, port=settings.port, print=None, access_log=None, shutdown_timeout=5, loop=loop
        )
    log.info("stopped", extra={"action": "serve_stopped"})
    return 0


@command("migrate")
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


@command("sync")
def sync(args: argparse.Namespace, settings: Settings) -> int:
    """Full sync of one corp now: progress bar on a terminal, then the summary. Exit 3 when quarantined."""
    import aiohttp

    from handlers.clients import make_client
    from handlers.store.corps import ensure_corp
    from handlers.sync.fullsync import format_summary, run_full_sync
    from receiver.cli.progress import ProgressBar

    config = load_config(settings)
    corp = config.corps.get(args.corp)
    if corp is None:
        known = ", ".join(sorted(config.corps)) or "none"
        print(f"corpsync: no corp named {args.corp!r} in {settings.app_dir} (corps: {known})", file=sys.stderr)
        return 2

    async def run(url: str) -> str:
        pool = await db.create_pool(url, min_size=1, max_size=8)
        bar = ProgressBar()
        try:
            async with pool.acquire() as conn:
                await db.migrate(conn)
                row = await ensure_corp(conn, corp)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30, connect=10)) as session:
                result = await run_full_sync(
                    pool,
                    row,
                    corp,
                    make_client(corp, session, pool),
                    trigger="manual",
                    allow_deletes=args.allow_deletes,
                    progress=bar if bar.enabled else None,
                )
        finally:
            bar.close()
            await pool.close()
        print(format_summary(result))
        return str(result.status.value)

    with database(settings) as url:
        status = asyncio.run(run(url))
    return SYNC_EXIT.get(status, 1)


@command("demo")
def demo(args: argparse.Namespace, settings: Settings) -> int:
    from receiver.cli.demo import main as demo_main

    return demo_main(settings.host, args.port if args.port is not None else 8080, args.seconds, args.members, args.rate)


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


@command("export-events")
def export_events(args: argparse.Namespace, settings: Settings) -> int:
    """Inbox rows as JSON lines (raw request and plaintext) on stdout or into --out."""
    from receiver.cli.replay import export_events as export

    since = _since(args.since)

    async def run(url: str, out: TextIO) -> int:
        pool = await db.create_pool(url, min_size=1, max_size=2)
        try:
            return await export(pool, out, args.corp, since)
        finally:
            await pool.close()

    with database(settings) as url, contextlib.ExitStack() as files:
        out = files.enter_context(open(args.out, "w", encoding="utf-8")) if args.out else sys.stdout
        count = asyncio.run(run(url, out))
    print(f"exported {count} events", file=sys.stderr)
    return 0


@command("replay")
def replay(args: argparse.Namespace, settings: Settings) -> int:
    """Re-apply exported events through the handlers, or re-send their raw requests to a running receiver."""
    import aiohttp

    from handlers.store.corps import ensure_corps
    from handlers.worker.loop import build_worker
    from receiver.cli.replay import replay_file

    if not Path(args.file).is_file():
        print(f"corpsync: no such file: {args.file}", file=sys.stderr)
        return 2

    async def resend() -> str:
        async with aiohttp.ClientSession() as session:
            report = await replay_file(args.file, url=args.url.rstrip("/"), session=session)
        return f"read {report.read}, sent {report.sent}, failed {report.failed}, skipped {report.skipped}"

    async def reapply(url: str) -> str:
        config = load_config(settings)
        pool = await db.create_pool(url, min_size=1, max_size=8)
        try:
            async with pool.acquire() as conn:
                await db.migrate(conn)
                await ensure_corps(conn, config)
            async with aiohttp.ClientSession() as session:
                report = await replay_file(args.file, pool=pool, worker=build_worker(pool, config, session))
        finally:
            await pool.close()
        return f"read {report.read}, new {report.inserted}, duplicates {report.duplicates}, applied {report.applied}"

    if args.url:
        print(asyncio.run(resend()))
        return 0
    with database(settings) as url:
        print(asyncio.run(reapply(url)))
    return 0


@command("check-config")
def check_config(args: argparse.Namespace, settings: Settings) -> int:
    config = load_config(settings)
    for line in describe(config, settings.base_url):
        print(line)
    return 0


@command("simulate")
def simulate(args: argparse.Namespace, settings: Settings) -> int:
    from receiver.testing import main as simulator_main

    return simulator_main(list(args.passthrough))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="corpsync", description="Keep WeCom / DingTalk directories in PostgreSQL.")
    parser.add_argument("--app-dir", type=Path, help="the JitAI app dir (env CORPSYNC_APP_DIR, default .)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--app-dir", type=Path, dest="sub_app_dir", help="the JitAI app dir (env CORPSYNC_APP_DIR)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, parents=[common])

    p = add("serve", "run the receiver, the worker and the scheduled syncs")
    p.add_argument("--host", help="listen address (env CORPSYNC_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (env CORPSYNC_PORT, default 8080)")
    add("check-config", "validate the app dir and print the callback URLs to register")
    add("migrate", "apply database migrations")
    p = add("sync", "full sync of one corp now (exit 3 when removals were held)")
    p.add_argument("corp", help="the corp's name in the app dir")
    p.add_argument("--allow-deletes", action="store_true", help="confirm removals the deletion guard would hold")
    p = add("demo", "the whole product against the simulator, no credentials needed (Ctrl-C stops)")
    p.add_argument("--port", type=int, help="receiver port (default 8080; 0 picks a free one)")
    p.add_argument("--seconds", type=float, help="stop after this many seconds of changes (default: run until Ctrl-C)")
    p.add_argument("--members", type=int, default=200, help="members per simulated org (default 200)")
    p.add_argument("--rate", type=float, default=2.0, help="org changes per second (default 2)")
    p = add("export-events", "write inbox rows (raw request + plaintext) as JSON lines")
    p.add_argument("--corp", help="only this corp (or stream)")
    p.add_argument("--since", help="only events received at or after this ISO-8601 time")
    p.add_argument("--out", help="write to this file instead of stdout")
    p = add("replay", "re-apply exported events, or re-send them to a running receiver with --url")
    p.add_argument("file", help="a file written by export-events")
    p.add_argument("--url", help="base URL of a running receiver, e.g. http://127.0.0.1:8080")
    sub.add_parser(
        "simulate", help="run the WeCom + DingTalk upstream simulator (`corpsync simulate --help`)", add_help=False
    )
    return parser


PASSTHROUGH = {"simulate"}  # commands whose own parser reads the rest of the line


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in PASSTHROUGH:
        args.passthrough = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        settings = settings_from_env().with_overrides(
            app_dir=getattr(args, "sub_app_dir", None) or args.app_dir,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
        )
        configure_logging(settings.log_format)
        return COMMANDS[args.command](args, settings)
    except ConfigError as exc:
        print(f"corpsync: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
