"""Typed keys of the objects an app shares (aiohttp ``AppKey``); no module-level singletons."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import asyncpg
from aiohttp import web

from handlers.config import AppConfig
from receiver.ops.metrics import Metrics
from receiver.settings import Settings

if TYPE_CHECKING:
    from handlers.sync.scheduler import SyncScheduler
    from handlers.worker.loop import Worker
    from receiver.callbacks.endpoints import Endpoints
    from receiver.callbacks.intake import Intake

SETTINGS = web.AppKey("settings", Settings)
CONFIG = web.AppKey("config", AppConfig)
METRICS = web.AppKey("metrics", Metrics)
POOL = web.AppKey("pool", asyncpg.Pool)
HTTP = web.AppKey("http", aiohttp.ClientSession)
CORP_ROWS = web.AppKey("corp_rows", dict[str, int])
ENDPOINTS: web.AppKey[Endpoints] = web.AppKey("endpoints")
INTAKE: web.AppKey[Intake] = web.AppKey("intake")
SCHEDULER: web.AppKey[SyncScheduler] = web.AppKey("scheduler")  # set by whoever runs the scheduler; optional
WORKER: web.AppKey[Worker] = web.AppKey("worker")
