"""``get_corp(app, name)``: a ``Corp`` on the running app's pool, config and HTTP session."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from handlers.api import Corp
from receiver.keys import CONFIG, CORP_ROWS, HTTP, POOL
from receiver.runtime import client_for


async def get_corp(app: web.Application, name: str) -> Corp:
    """The corp named ``name``: configured (``corps/<name>``) or a suite tenant (``<auth>/<corpid>``).

    Raises ``UnknownCorp`` for any other name. Call it while the app runs (its pool and session are open).
    """
    config = app[CONFIG]
    corp = config.corps.get(name)
    row_id = app[CORP_ROWS].get(name) if corp is not None else None
    clients = partial(client_for, app)  # the app's limiters and metrics
    if corp is not None and row_id is not None:
        return Corp(app[POOL], config, corp, row_id, session=app[HTTP], clients=clients)
    return await Corp.open(app[POOL], config, name, session=app[HTTP], clients=clients)
