"""The ``corpsync`` command line (also ``python -m receiver``): the parser, the table of commands, ``main``.

serve      corpsync serve: the app on its event loop
admin      check-config, migrate, sync
changes    the change feed's webhook subscribers: status, enable, replay
events     export-events, replay (the work itself is in replay)
data       purge, forget: bounded data
simulated  demo (the story is in demo), simulate
common     the database and the app dir every command uses
progress   sync's progress bar
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from handlers.errors import ConfigError, StoreUnavailable
from receiver.cli import admin, changes, data, events, serve, simulated
from receiver.cli.common import Command, CommandFailed
from receiver.ops.logs import configure_logging
from receiver.settings import MAX_PORT, settings_from_env

COMMANDS: dict[str, Command] = {
    "serve": serve.serve,
    "check-config": admin.check_config,
    "migrate": admin.migrate,
    "sync": admin.sync,
    "demo": simulated.demo,
    "export-events": events.export_events,
    "replay": events.replay,
    "simulate": simulated.simulate,
    "changes": changes.changes,
    "purge": data.purge,
    "forget": data.forget,
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("corpsync")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corpsync",
        description="Keep WeCom / DingTalk directories in PostgreSQL.",
        epilog="Exit status: 0 done, 1 failed, 2 configuration or usage error; sync also 3 quarantined, 4 already "
        "running. Settings come from CORPSYNC_* environment variables (see the README); flags override them.",
    )
    parser.add_argument("--version", action="version", version=f"corpsync {_version()}")
    parser.add_argument(
        "--app-dir", type=Path, metavar="DIR", help="the JitAI app dir (env CORPSYNC_APP_DIR, default .)"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--app-dir", type=Path, dest="sub_app_dir", metavar="DIR", help="the JitAI app dir (env CORPSYNC_APP_DIR)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="the command to run")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    def listen(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--host", metavar="HOST", help=f"{what} listen address (env CORPSYNC_HOST, default 127.0.0.1)")
        p.add_argument(
            "--port", type=int, metavar="PORT", help=f"{what} listen port, 0 picks a free one (env CORPSYNC_PORT, "
            "default 8080)"
        )  # fmt: skip

    p = add("serve", "run the receiver, the worker and the scheduled syncs")
    listen(p, "the receiver's")
    add("check-config", "validate the app dir and print the callback URLs to register")
    add("migrate", "apply database migrations")
    p = add("sync", "full sync of one corp now (exit 3 when removals were held, 4 when it runs elsewhere)")
    p.add_argument("corp", metavar="CORP", help="the corp's name in the app dir")
    p.add_argument("--allow-deletes", action="store_true", help="confirm removals the deletion guard would hold")
    p = add("demo", "the whole product against the simulator, no credentials needed (Ctrl-C stops)")
    listen(p, "the receiver's")
    p.add_argument(
        "--seconds", type=float, metavar="N", help="stop after N seconds of changes (default: run until Ctrl-C)"
    )
    p.add_argument("--members", type=int, default=200, metavar="N", help="members per simulated org (default 200)")
    p.add_argument("--rate", type=float, default=2.0, metavar="R", help="org changes per second (default 2)")
    p = add("export-events", "write inbox rows (raw request + plaintext) as JSON lines")
    p.add_argument("--corp", metavar="CORP", help="only this corp (or stream)")
    p.add_argument("--since", metavar="TIME", help="only events received at or after this ISO-8601 time")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    p = add("replay", "re-apply exported events, or re-send them to a running receiver with --url")
    p.add_argument("file", metavar="FILE", help="a file written by export-events")
    p.add_argument("--url", metavar="URL", help="base URL of a running receiver, e.g. http://127.0.0.1:8080")
    p = add("purge", "strip and delete rows older than their retention now (CORPSYNC_RETAIN_*)")
    p.add_argument("--dry-run", action="store_true", help="count what would be purged; change nothing")
    p = add("forget", "erase a departed member's personal fields and the messages of their events")
    p.add_argument("corp", metavar="CORP", help="the corp's name (a suite tenant: AUTH/CORPID)")
    p.add_argument("member", metavar="MEMBER", help="the member's user id on the platform")
    p = add("changes", "the change feed's webhook subscribers: status, enable NAME, replay NAME")
    p.add_argument("action", choices=("status", "enable", "replay"), metavar="ACTION", help="status, enable or replay")
    p.add_argument("name", nargs="?", metavar="NAME", help="the subscriber (subscribers/<name> in the app dir)")
    p.add_argument("--after", metavar="ID", help="replay: the changes after this change id (a cursor)")
    p.add_argument("--since", metavar="TIME", help="replay: the changes at or after this ISO-8601 time")
    p.add_argument("--until", metavar="TIME", help="replay: ... and before this ISO-8601 time")
    p.add_argument("--corp", metavar="CORP", help="replay: only this corp's changes")
    sub.add_parser(
        "simulate", help="run the WeCom + DingTalk upstream simulator (`corpsync simulate --help`)", add_help=False
    )
    return parser


PASSTHROUGH = {"simulate"}  # commands whose own parser reads the rest of the line


_terminated = False  # SIGTERM arrived (the KeyboardInterrupt that unwinds the command is its)


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds the command as Ctrl-C does, so what it started (the embedded PostgreSQL) is stopped: inside
    ``asyncio.run`` the runner's SIGINT handling cancels the main task and lets its cleanup finish before the
    KeyboardInterrupt, rather than an exception raised at whatever point the loop was at; outside a loop the
    KeyboardInterrupt comes at once."""
    global _terminated
    _terminated = True
    signal.raise_signal(signal.SIGINT)


def _fail(message: str, status: int) -> int:
    print(f"corpsync: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every failure a user can cause or fix ends as one line on stderr and a non-zero status:
    2 configuration or usage, 1 the command failed, 130 Ctrl-C, 143 SIGTERM, 141 output closed early."""
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in PASSTHROUGH:
        args.passthrough = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    previous = signal.signal(signal.SIGTERM, _terminate)  # serve's event loop installs its own while it runs
    try:
        settings = settings_from_env().with_overrides(
            app_dir=getattr(args, "sub_app_dir", None) or args.app_dir,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
        )
        if not 0 <= settings.port <= MAX_PORT:
            raise ConfigError(f"--port: expected 0 to {MAX_PORT}, got {settings.port}")
        configure_logging(settings.log_format)
        return COMMANDS[args.command](args, settings)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", 2)
    except (CommandFailed, StoreUnavailable) as exc:
        return _fail(str(exc), getattr(exc, "status", 1))
    except BrokenPipeError:
        # the reader of our output went away (``| head``): stop writing, also at exit's flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return _fail("output closed before it was all written (broken pipe)", 141)
    except KeyboardInterrupt:
        return 143 if _terminated else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
