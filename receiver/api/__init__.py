"""The directory API over HTTP (``/api``), and ``get_corp(app, name)`` for code running in the app.

    guard        authorization (bearer token, or loopback only) and JSON errors, the route table
    params       query and body parsing: 400 naming the field
    read_routes  corps, departments, members, roles, signatures, admins, local data
    write_routes offline a member, set roles, set admins, save a signature (local only)
    sync_routes  start a full sync (through the app's scheduler), read the runs
    openapi      the OpenAPI 3.1 document, served at /api/openapi.json

``create_app`` adds ``routes`` and the ``lifecycle`` cleanup context.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from receiver.api import openapi, read_routes, sync_routes, write_routes
from receiver.api.corps import get_corp
from receiver.api.guard import routes
from receiver.keys import SETTINGS

__all__ = ["get_corp", "lifecycle", "openapi", "read_routes", "routes", "sync_routes", "write_routes"]

log = logging.getLogger("corpsync.api")


async def lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Say once how /api is guarded (the syncs the API starts are the scheduler's: see sync_routes)."""
    if app[SETTINGS].admin_token is None:
        log.warning(
            "api answers loopback only: no admin token",
            extra={"action": "api_loopback_only", "hint": "set CORPSYNC_ADMIN_TOKEN to call /api from elsewhere"},
        )
    yield
