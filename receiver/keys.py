"""Typed keys of the objects an app shares (aiohttp ``AppKey``); no module-level singletons."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from handlers.config import AppConfig
from handlers.sync.scheduler import SyncScheduler
from handlers.worker.loop import Worker
from receiver.callbacks.endpoints import Endpoints
from receiver.callbacks.intake import Intake
from receiver.console.state import Console
from receiver.ops.metrics import Metrics
from receiver.runtime import Runtime
from receiver.settings import Settings
from receiver.stream.consumer import StreamConsumer

SETTINGS = web.AppKey("settings", Settings)
CONFIG = web.AppKey("config", AppConfig)
METRICS = web.AppKey("metrics", Metrics)
ENDPOINTS = web.AppKey("endpoints", Endpoints)
RUNTIME = web.AppKey("runtime", Runtime)  # pool, HTTP session, limiters, platform clients: receiver.runtime
POOL = web.AppKey("pool", asyncpg.Pool)  # the runtime's, for the routes
CORP_ROWS = web.AppKey("corp_rows", dict[str, int])  # the runtime's: configured corp name → corps row id
INTAKE = web.AppKey("intake", Intake)
WORKER = web.AppKey("worker", Worker)
SCHEDULER = web.AppKey("scheduler", SyncScheduler)  # the owner of every full sync the app runs
CONSOLE = web.AppKey("console", Console)  # the web console's templates and session signer: receiver.console
STREAMS = web.AppKey("streams", dict[str, StreamConsumer])  # this process's DingTalk Stream consumers, by corp
