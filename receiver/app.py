"""The app factory: routes, the answer to unrouted requests, and the resources opened and closed with the app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from handlers.config import AppConfig
from handlers.store import pool as db
from handlers.store.corps import ensure_corps
from receiver import api
from receiver import runtime as services
from receiver.api.guard import http_problem
from receiver.callbacks.endpoints import build_endpoints
from receiver.callbacks.intake import Intake
from receiver.callbacks.routes import Callbacks
from receiver.keys import CONFIG, CORP_ROWS, ENDPOINTS, HTTP, INTAKE, METRICS, POOL, SETTINGS, WORKER
from receiver.ops import health
from receiver.ops.metrics import Metrics
from receiver.settings import Settings

log = logging.getLogger("corpsync.app")

_CALLBACK_KINDS = {
    "wecom": ("wecom", "wecom"),
    "wecom-suite": ("wecom", "wecom-suite"),
    "dingtalk": ("dingtalk", "dingtalk"),
}


def _callback_labels(path: str) -> tuple[str, str] | None:
    """(platform, route) of a path under /callback/, None for any other (never a label made from the path)."""
    parts = path.split("/")
    if len(parts) < 3 or parts[1] != "callback" or parts[2] not in _CALLBACK_KINDS:
        return None
    platform, route = _CALLBACK_KINDS[parts[2]]
    if route == "wecom-suite" and parts[-1] == "data":
        route = "wecom-suite-data"
    return platform, route


def add_unrouted(app: web.Application, metrics: Metrics) -> None:
    """Register, last, the answer to what no route takes: 405 with ``Allow`` where another method would be
    taken, else 404. JSON under /api, as the API's other errors; counted like any answer under /callback."""
    catch_all = app.router.add_resource("/{tail:.*}", name="unrouted")

    async def unrouted(request: web.Request) -> web.StreamResponse:
        allowed: set[str] = set()
        for resource in app.router.resources():
            if resource is not catch_all:
                _, methods = await resource.resolve(request)
                allowed |= methods
        error: web.HTTPException = web.HTTPMethodNotAllowed(request.method, allowed) if allowed else web.HTTPNotFound()
        labels = _callback_labels(request.path)
        if labels is not None:
            metrics.callback_series(*labels).observe(f"http_{error.status}", 0.0)
        if request.path.startswith("/api"):
            return http_problem(error)
        raise error

    catch_all.add_route("*", unrouted)


def create_app(settings: Settings, config: AppConfig, database_url: str) -> web.Application:
    """Build the app; the database pool, HTTP session and background services open in ``cleanup_ctx``."""
    app = web.Application(client_max_size=settings.max_body_bytes)  # no middleware: see receiver.callbacks.routes
    app[SETTINGS] = settings
    app[CONFIG] = config
    app[METRICS] = metrics = Metrics()
    app[ENDPOINTS] = endpoints = build_endpoints(config)

    async def database(app: web.Application) -> AsyncIterator[None]:
        pool = await db.create_pool(database_url)
        async with pool.acquire() as conn:
            await db.migrate(conn)
            app[CORP_ROWS] = await ensure_corps(conn, config)
        app[POOL] = pool
        yield
        await pool.close()

    async def http_session(app: web.Application) -> AsyncIterator[None]:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30, connect=10))
        app[HTTP] = session
        yield
        await session.close()

    async def intake(app: web.Application) -> AsyncIterator[None]:
        writer = Intake(app[POOL], metrics=app[METRICS], on_commit=app[WORKER].wake)
        writer.start()
        app[INTAKE] = writer
        yield
        await writer.close()

    app.cleanup_ctx.extend(
        [database, http_session, services.clients, services.worker, intake, services.scheduler, api.lifecycle]
    )
    app.add_routes(Callbacks(app, endpoints, metrics, settings.callback_max_age).routes())
    app.add_routes(health.routes)
    app.add_routes(api.routes)
    add_unrouted(app, metrics)
    return app
