"""Background services of ``serve``: platform clients, the inbox worker and the full-sync scheduler, reporting to
the app's metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from handlers.clients import DirectoryClient, LimiterRegistry, make_client
from handlers.config import CorpConfig
from handlers.store.corps import runtime_tenants
from handlers.sync.scheduler import SyncScheduler
from receiver.keys import CONFIG, HTTP, METRICS, POOL, SCHEDULER, SETTINGS, WORKER
from receiver.ops.metrics import ClientMetrics, EventMetrics

log = logging.getLogger("corpsync.services")

LIMITERS = web.AppKey("limiters", LimiterRegistry)


def client_for(app: web.Application, corp: CorpConfig) -> DirectoryClient:
    """The platform client of a corp, sharing the app's HTTP session, rate limiters and metrics."""
    return make_client(corp, app[HTTP], app[POOL], observer=ClientMetrics(app[METRICS]), limiters=app[LIMITERS])


async def clients(app: web.Application) -> AsyncIterator[None]:
    app[LIMITERS] = LimiterRegistry()
    yield


async def worker(app: web.Application) -> AsyncIterator[None]:
    """Applies the inbox, per corp in arrival order; intake wakes it after each commit."""
    from handlers.worker.loop import build_worker, running

    metrics = app[METRICS]
    built = build_worker(
        app[POOL],
        app[CONFIG],
        app[HTTP],
        limiters=app[LIMITERS],
        observer=ClientMetrics(metrics),
        events=EventMetrics(metrics),
    )
    app[WORKER] = built
    if not app[SETTINGS].run_worker:
        yield
        return
    async with running(built):
        yield


async def scheduler(app: web.Application) -> AsyncIterator[None]:
    """Full syncs on start-up (never synced, or too old), on schedule, on demand and on drift."""
    pool, config = app[POOL], app[CONFIG]

    async def discover() -> dict[str, CorpConfig]:
        return dict(await runtime_tenants(pool, config))

    sched = SyncScheduler(
        pool,
        config.corps,
        lambda corp: client_for(app, corp),
        on_finished=app[METRICS].sync_finished,
        discover=discover if config.auths else None,
    )
    app[SCHEDULER] = sched
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    if app[SETTINGS].run_scheduler:
        task = asyncio.create_task(sched.run(stop), name="corpsync-scheduler")
    yield
    stop.set()
    if task is not None:
        await task
