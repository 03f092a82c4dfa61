"""Typed keys of the objects an app shares (aiohttp ``AppKey``); no module-level singletons."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from handlers.config import AppConfig
from receiver.ops.metrics import Metrics
from receiver.runtime import Runtime
from receiver.settings import Settings

if TYPE_CHECKING:
    from handlers.sync.scheduler import SyncScheduler
    from handlers.worker.loop import Worker
    from receiver.callbacks.endpoints import Endpoints
    from receiver.callbacks.intake import Intake

SETTINGS = web.AppKey("settings", Settings)
CONFIG = web.AppKey("config", AppConfig)
METRICS = web.AppKey("metrics", Metrics)
RUNTIME = web.AppKey("runtime", Runtime)  # pool, HTTP session, limiters, platform clients: receiver.runtime
POOL = web.AppKey("pool", asyncpg.Pool)  # the runtime's, for the routes
CORP_ROWS = web.AppKey("corp_rows", dict[str, int])  # the runtime's: configured corp name → corps row id
ENDPOINTS: web.AppKey[Endpoints] = web.AppKey("endpoints")
INTAKE: web.AppKey[Intake] = web.AppKey("intake")
SCHEDULER: web.AppKey[SyncScheduler] = web.AppKey("scheduler")  # the owner of every full sync the app runs
WORKER: web.AppKey[Worker] = web.AppKey("worker")
