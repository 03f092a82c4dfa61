"""``corpsync serve``: the app on its event loop, with a garbage collector tuned for serving."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import socket

from aiohttp import web

from handlers.errors import ConfigError
from receiver.cli.common import CommandFailed, database, load_config
from receiver.settings import Settings

log = logging.getLogger("corpsync.cli")


async def settle_heap(app: web.Application) -> None:
    """Tune the cyclic garbage collector for serving, once start-up is done (``tune_gc``)."""
    tune_gc()


def tune_gc() -> None:
    """What start-up made (modules, config, the app) lives as long as the process: ``gc.freeze`` takes it out of
    every later collection. And the youngest generation is collected every 7,000 allocations instead of 700:
    each collection walks the requests in flight, and the worker's batch of parsed messages, so fewer walks cost
    less. The benches that stand in for ``serve`` call it too."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(7_000, 10, 10)


def new_event_loop(choice: str) -> tuple[asyncio.AbstractEventLoop, str]:
    """The event loop ``serve`` runs on, and its name: ``choice`` is a ``CORPSYNC_EVENT_LOOP`` value.

    uvloop, where it is installed (every platform but Windows), runs the transports, the timers and the
    ready queue in C, which costs each callback less CPU. ``asyncio`` is there to rule the loop out when
    chasing a bug.
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


def serve(args: argparse.Namespace, settings: Settings) -> int:
    from receiver.app import create_app

    config = load_config(settings)
    loop, loop_name = new_event_loop(settings.event_loop)  # before the database: a missing uvloop fails at once
    with contextlib.closing(loop), database(settings) as url:  # run_app closes it too; closing twice is fine
        app = create_app(settings, config, url)
        app.on_startup.append(settle_heap)

        def listening(_banner: str) -> None:
            """run_app's banner comes once the socket is bound: only then is the process serving."""
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

        try:
            web.run_app(
                app,
                host=settings.host,
                port=settings.port,
                print=listening,
                access_log=None,
                shutdown_timeout=5,
                keepalive_timeout=settings.client_timeout,  # also bounds the wait for a request's headers
                loop=loop,
            )
        except OSError as exc:
            raise CommandFailed(_bind_failure(exc, settings.host, settings.port)) from exc
    log.info("stopped", extra={"action": "serve_stopped"})
    return 0


_BIND_HINTS = {
    errno.EADDRINUSE: "the port is in use by another process (choose another with --port or CORPSYNC_PORT)",
    errno.EACCES: "not allowed to listen on that port (ports below 1024 need privileges)",
    errno.EADDRNOTAVAIL: "the address is not one of this machine's (check --host or CORPSYNC_HOST)",
}


def _bind_failure(exc: OSError, host: str, port: int) -> str:
    """One line for a listen address that cannot be bound; any other OSError is not ours to explain."""
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {host}:{port}: unknown host"
    hint = _BIND_HINTS.get(exc.errno or 0)
    if hint is None:
        raise exc
    return f"cannot listen on {host}:{port}: {hint}"
