"""``get_corp(app, name)``: a ``Corp`` on the running app's runtime (pool, HTTP session, platform clients)."""

from __future__ import annotations

from aiohttp import web

from handlers.api import Corp
from receiver.keys import RUNTIME


async def get_corp(app: web.Application, name: str) -> Corp:
    """The corp named ``name``: configured (``corps/<name>``) or a suite tenant (``<auth>/<corpid>``).

    Raises ``UnknownCorp`` for any other name. Call it while the app runs (its pool and session are open).
    """
    return await app[RUNTIME].corp(name)
