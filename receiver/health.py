"""Operational endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from receiver import db
from receiver.keys import CONFIG, METRICS, POOL

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and the schema is at head; 503 with the reasons otherwise."""
    reasons: list[str] = []
    version = None
    try:
        async with request.app[POOL].acquire(timeout=2) as conn:
            version = await asyncio.wait_for(db.schema_version(conn), 2)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        reasons.append("database unreachable")
    if version is not None and version != db.head_version():
        reasons.append(f"schema at version {version}, expected {db.head_version()}")
    body = {
        "status": "ready" if not reasons else "not ready",
        "reasons": reasons,
        "schemaVersion": version,
        "corps": sorted(request.app[CONFIG].corps),
    }
    return web.json_response(body, status=200 if not reasons else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), content_type="text/plain", charset="utf-8")
