"""The app factory: the one route table, the answer to unrouted requests, and the resources opened and closed with
the app (built by receiver.runtime)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from handlers.config import AppConfig, DingTalkCorp
from handlers.feed.delivery import Delivery, FeedSettings
from handlers.feed.delivery import declare as declare_subscribers
from handlers.feed.watch import ChangeWatch
from handlers.store import pool as db
from handlers.sync.scheduler import SchedulerSettings
from handlers.worker.loop import running
from handlers.worker.purge import Purger, purging
from receiver.api import feed_routes, openapi, read_routes, sync_routes, write_routes
from receiver.api.guard import http_problem, warn_if_loopback_only
from receiver.callbacks.endpoints import build_endpoints
from receiver.callbacks.intake import Intake
from receiver.callbacks.routes import Callbacks
from receiver.console.routes import routes as console_routes
from receiver.console.state import Console, console_sessions
from receiver.keys import (
    CONFIG,
    CONSOLE,
    CORP_ROWS,
    DELIVERY,
    ENDPOINTS,
    FEED_WATCH,
    INTAKE,
    METRICS,
    POOL,
    RUNTIME,
    SCHEDULER,
    SETTINGS,
    STREAMS,
    WORKER,
)
from receiver.ops import health
from receiver.ops.metrics import FeedMetrics, Metrics
from receiver.runtime import open_runtime, pool_size
from receiver.settings import Settings
from receiver.stream.consumer import StreamConsumer, StreamSettings

log = logging.getLogger("corpsync.app")

CORP = "/api/corps/{corp}"

_CALLBACK_KINDS = {
    "wecom": ("wecom", "wecom"),
    "wecom-suite": ("wecom", "wecom-suite"),
    "dingtalk": ("dingtalk", "dingtalk"),
}


def routes(callbacks: Callbacks) -> list[web.AbstractRouteDef]:
    """Every route of the app, in match order: the catch-all ``unrouted`` is last."""
    answered, c = callbacks.answered, callbacks
    read, write, sync, feed = read_routes, write_routes, sync_routes, feed_routes
    return [
        # the platforms' callbacks: receiver.callbacks.routes
        web.get("/callback/wecom/{corp}", answered("wecom", "wecom", c.wecom_verify)),
        web.post("/callback/wecom/{corp}", answered("wecom", "wecom", c.wecom_event)),
        web.get("/callback/wecom-suite/{auth}", answered("wecom", "wecom-suite", c.suite_verify)),
        web.post("/callback/wecom-suite/{auth}", answered("wecom", "wecom-suite", c.suite_instruction)),
        web.get("/callback/wecom-suite/{auth}/data", answered("wecom", "wecom-suite-data", c.suite_data_verify)),
        web.post("/callback/wecom-suite/{auth}/data", answered("wecom", "wecom-suite-data", c.suite_data)),
        web.post("/callback/dingtalk/{corp}", answered("dingtalk", "dingtalk", c.dingtalk_event)),
        # probes and metrics: receiver.ops.health
        web.get("/healthz", health.healthz),
        web.get("/readyz", health.readyz),
        web.get("/metrics", health.metrics),
        # the directory API: receiver.api, every handler behind receiver.api.guard.endpoint
        web.get("/api/openapi.json", openapi.openapi),
        web.get("/api/corps", read.list_corps),
        web.get("/api/agent-id", read.agent_id),
        web.get(CORP, read.corp_info),
        web.get(CORP + "/root-dept", read.root_dept),
        web.get(CORP + "/depts", read.depts),
        web.get(CORP + "/depts/{deptId}", read.dept),
        web.get(CORP + "/members", read.members),
        web.get(CORP + "/members/{memberId}", read.member),
        web.post(CORP + "/members/{memberId}/offline", write.offline_member),
        web.post(CORP + "/offline", write.offline_members),
        web.get(CORP + "/members/{memberId}/roles", read.member_roles),
        web.put(CORP + "/members/{memberId}/roles", write.set_roles),
        web.get(CORP + "/members/{memberId}/signature", read.signature),
        web.put(CORP + "/members/{memberId}/signature", write.save_signature),
        web.get(CORP + "/admins", read.admins),
        web.put(CORP + "/admins", write.set_admins),
        web.get(CORP + "/local-data", read.local_data),
        web.get(CORP + "/third-data", read.third_data),
        web.post(CORP + "/init", sync.init_corp),
        web.post(CORP + "/sync", sync.start_sync),
        web.post(CORP + "/bulk-register", sync.bulk_register),
        web.get(CORP + "/sync-runs", sync.sync_runs),
        web.get(CORP + "/sync-runs/{runId}", sync.sync_run),
        # the change feed: receiver.api.feed_routes
        web.get("/api/changes", feed.changes),
        web.get("/api/subscribers", feed.subscribers),
        web.post("/api/subscribers/{name}/enable", feed.enable_subscriber),
        web.post("/api/subscribers/{name}/replay", feed.replay_subscriber),
        # the operators' web console: receiver.console, every page behind receiver.console.base.page / action
        *console_routes(),
        # what no route above takes
        web.route("*", "/{tail:.*}", unrouted, name="unrouted"),
    ]


def _callback_labels(path: str) -> tuple[str, str] | None:
    """(platform, route) of a path under /callback/, None for any other (never a label made from the path)."""
    parts = path.split("/")
    if len(parts) < 3 or parts[1] != "callback" or parts[2] not in _CALLBACK_KINDS:
        return None
    platform, route = _CALLBACK_KINDS[parts[2]]
    if route == "wecom-suite" and parts[-1] == "data":
        route = "wecom-suite-data"
    return platform, route


async def unrouted(request: web.Request) -> web.StreamResponse:
    """The answer to what no route takes: 405 with ``Allow`` where another method would be taken, else 404.
    JSON under /api, as the API's other errors; counted like any answer under /callback."""
    catch_all = request.match_info.route.resource
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not catch_all:
            _, methods = await resource.resolve(request)
            allowed |= methods
    error: web.HTTPException = web.HTTPMethodNotAllowed(request.method, allowed) if allowed else web.HTTPNotFound()
    labels = _callback_labels(request.path)
    if labels is not None:
        request.app[METRICS].callback_series(*labels).observe(f"http_{error.status}", 0.0)
    if request.path.startswith("/api"):
        return http_problem(error)
    raise error


def feed_settings(settings: Settings) -> FeedSettings:
    return FeedSettings(
        retry_schedule=settings.feed_retry_schedule,
        disable_after=float(settings.feed_disable_after),
        retention=float(settings.feed_retention),
        timeout=float(settings.feed_timeout),
    )


def create_app(
    settings: Settings,
    config: AppConfig,
    database_url: str,
    *,
    scheduler: SchedulerSettings | None = None,
    stream: StreamSettings | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the app; its runtime (pool, HTTP session, clients), worker, intake, DingTalk Stream consumers and
    scheduler open in ``cleanup_ctx``. ``scheduler`` tunes the full-sync scheduler (tests tick one without the
    drift debounce); ``stream`` the Stream consumers, and ``clock`` their wall clock (tests simulate blind time)."""
    app = web.Application(client_max_size=settings.max_body_bytes)  # no middleware: see receiver.callbacks.routes
    app[SETTINGS] = settings
    app[CONFIG] = config
    app[METRICS] = metrics = Metrics()
    app[ENDPOINTS] = endpoints = build_endpoints(config)
    app[CONSOLE] = Console(console_sessions(settings))

    async def runtime(app: web.Application) -> AsyncIterator[None]:
        async with open_runtime(
            database_url, config, metrics=metrics, max_size=pool_size(settings.sync_parallel)
        ) as opened:
            app[RUNTIME] = opened
            app[POOL] = opened.pool
            app[CORP_ROWS] = opened.corp_rows
            yield

    async def worker(app: web.Application) -> AsyncIterator[None]:
        """Applies the inbox, per corp in arrival order; intake wakes it after each commit."""
        app[WORKER] = built = app[RUNTIME].worker()
        if not settings.run_worker:
            yield
            return
        async with running(built):
            yield

    async def purge(app: web.Application) -> AsyncIterator[None]:
        """Old rows purged in the background, beside the worker (handlers.worker.purge)."""
        if not settings.run_worker or not settings.retention.interval:
            yield
            return
        async with purging(Purger(app[POOL], settings.retention, on_purged=metrics.purged)):
            yield

    async def intake(app: web.Application) -> AsyncIterator[None]:
        writer = Intake(app[POOL], metrics=metrics, on_commit=app[WORKER].wake)
        writer.start()
        app[INTAKE] = writer
        yield
        await writer.close()

    async def streams(app: web.Application) -> AsyncIterator[None]:
        """One DingTalk Stream connection per Stream-mode corp, for as long as the app runs."""
        runtime = app[RUNTIME]
        consumers: dict[str, StreamConsumer] = {}
        for name, corp in config.corps.items():
            if isinstance(corp, DingTalkCorp) and corp.stream:
                consumers[name] = StreamConsumer(
                    corp, runtime.corp_rows[name], session=runtime.session, intake=app[INTAKE], pool=runtime.pool,
                    process=app[WORKER].process, metrics=metrics, settings=stream, clock=clock,
                )  # fmt: skip
        app[STREAMS] = consumers
        tasks = [asyncio.create_task(c.run(), name=f"corpsync-stream-{c.name}") for c in consumers.values()]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in consumers.values()))

    async def full_syncs(app: web.Application) -> AsyncIterator[None]:
        """On start-up (never synced, or too old), on schedule, on demand (the API's too) and on drift."""
        app[SCHEDULER] = sched = app[RUNTIME].scheduler(
            scheduler
            or SchedulerSettings(max_parallel=settings.sync_parallel, debounce_seconds=settings.drift_debounce)
        )
        stop = asyncio.Event()
        task = asyncio.create_task(sched.run(stop), name="corpsync-scheduler") if settings.run_scheduler else None
        yield
        stop.set()
        if task is not None:
            await task
        await sched.close()  # the syncs the API started when the loop does not run

    async def change_feed(app: web.Application) -> AsyncIterator[None]:
        """LISTEN for committed changes (long polls wait on it) and send the webhooks from the outbox."""
        app[FEED_WATCH] = watch = ChangeWatch(database_url)
        await watch.start()
        app[DELIVERY] = delivery = Delivery(
            app[POOL], config.subscribers, app[RUNTIME].session, feed_settings(settings), observer=FeedMetrics(metrics)
        )
        watch.on_change(delivery.wake)
        if not settings.run_feed:  # the delivery declares the app dir's subscribers when it starts; else now
            with contextlib.suppress(*db.DB_ERRORS):
                await declare_subscribers(app[POOL], config.subscribers)
        stop = asyncio.Event()
        task = asyncio.create_task(delivery.run(stop), name="corpsync-feed") if settings.run_feed else None
        yield
        stop.set()
        if task is not None:
            await task
        await watch.close()

    app.cleanup_ctx.extend([runtime, worker, purge, intake, streams, full_syncs, change_feed])
    app.on_startup.append(warn_if_loopback_only)
    app.add_routes(routes(Callbacks(app, endpoints, metrics, settings.callback_max_age)))
    return app
