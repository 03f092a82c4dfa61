"""The app factory: routes, the error middleware, and the resources opened and closed with the app."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from handlers.corps import AppConfig
from handlers.registry import ensure_corps
from receiver import api, callbacks, db, health, services
from receiver.endpoints import build_endpoints
from receiver.errors import CallbackRejected, StoreUnavailable, UnknownCorp
from receiver.intake import Intake
from receiver.keys import CONFIG, CORP_ROWS, ENDPOINTS, HTTP, INTAKE, METRICS, OUTCOME, POOL, SETTINGS, WORKER
from receiver.metrics import Metrics
from receiver.settings import Settings

log = logging.getLogger("corpsync.app")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _callback_labels(request: web.Request) -> tuple[str, str] | None:
    """(platform, route) for callback routes, None for the others."""
    parts = request.path.split("/")
    if len(parts) < 3 or parts[1] != "callback":
        return None
    kind = parts[2]
    platform = "dingtalk" if kind == "dingtalk" else "wecom"
    route = "wecom-suite-data" if kind == "wecom-suite" and parts[-1] == "data" else kind
    return platform, route


def _reject(status: int, text: str, api: bool) -> web.Response:
    if api:
        return web.json_response({"error": text}, status=status)
    return web.Response(status=status, text=text)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map the exception tree to statuses in one place; count and time every callback."""
    labels = _callback_labels(request)
    api = request.path.startswith("/api")
    started = time.perf_counter()
    outcome = "error"
    try:
        response = await handler(request)
        outcome = request.get(OUTCOME, "verified" if request.method == "GET" else "accepted")
        return response
    except CallbackRejected as exc:
        outcome = f"rejected_{type(exc).__name__.rstrip('_').lower()}"
        log.info(
            "callback rejected",
            extra={
                "action": "callback_rejected",
                "reason": type(exc).__name__,
                "wecom_code": exc.wecom_code,
                "path": request.path,
            },
        )
        return _reject(exc.status, type(exc).__name__, api)
    except UnknownCorp:
        outcome = "unknown_corp"
        return _reject(404, "unknown corp", api)
    except StoreUnavailable:
        outcome = "unavailable"
        log.warning("callback not stored", extra={"action": "callback_unavailable", "path": request.path})
        return _reject(503, "store unavailable, retry later", api)
    except web.HTTPException as exc:
        outcome = f"http_{exc.status}"
        if api and exc.status >= 400:
            headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "www-authenticate"}}
            return web.json_response({"error": exc.reason.lower()}, status=exc.status, headers=headers)
        raise
    finally:
        if labels is not None:
            request.app[METRICS].callback_answered(*labels, outcome, time.perf_counter() - started)


def create_app(settings: Settings, config: AppConfig, database_url: str) -> web.Application:
    """Build the app; the database pool, HTTP session and background services open in ``cleanup_ctx``."""
    app = web.Application(middlewares=[errors_middleware], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[CONFIG] = config
    app[METRICS] = Metrics()
    app[ENDPOINTS] = build_endpoints(config)

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
    app.add_routes(callbacks.routes)
    app.add_routes(health.routes)
    app.add_routes(api.routes)
    return app
