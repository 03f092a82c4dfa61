"""A running world for DingTalk Stream tests: the simulator's Stream gateway and a DingTalk org, and the real app
(one or more, on one database) holding Stream connections to it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from handlers.sync.fullsync import RunStatus
from handlers.sync.scheduler import SchedulerSettings
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.keys import POOL, SCHEDULER, STREAMS
from receiver.settings import Settings
from receiver.stream.consumer import StreamConsumer, StreamSettings
from receiver.testing import Simulator, generate_org, run_simulator, write_dingtalk_corp
from receiver.testing.accounts import DingTalkApp
from tests.support.eventkit import until

CORP = "Field"
# Quick to notice and quick to retry, so that tests take seconds, not the minutes of the defaults.
FAST = StreamSettings(backoff_min=0.05, backoff_max=0.5, heartbeat=2.0, idle=30.0, beat=0.2)


def write_stream_corp(root: Path, app: DingTalkApp, sim: Simulator, name: str = CORP) -> None:
    """A DingTalk corp in Stream mode: the app's credentials, no callback keys."""
    write_dingtalk_corp(root, name, corp_id=app.corp_id, app_key=app.app_key, app_secret=app.app_secret,
                        api_base=sim.dingtalk_api_base,
                        extra={"callback": {"mode": "stream"}, "streamBase": sim.stream_base})  # fmt: skip


@dataclass
class StreamWorld:
    sim: Simulator
    ding: DingTalkApp
    clients: list[TestClient[Any, Any]]

    @property
    def app(self) -> web.Application:
        app: web.Application = self.clients[0].app
        return app

    @property
    def pool(self) -> asyncpg.Pool:
        return self.app[POOL]

    def consumer(self, index: int = 0) -> StreamConsumer:
        app: web.Application = self.clients[index].app
        return app[STREAMS][CORP]

    async def connected(self, count: int = 1, within: float = 5.0) -> float:
        async def enough() -> bool:
            return len(self.sim.stream.links(self.ding.app_key)) >= count

        return await until(enough, within=within)

    async def delivered(self, message_ids: list[str] | None = None, within: float = 20.0) -> None:
        async def done() -> bool:
            return self.sim.stream.delivered(message_ids)

        await until(done, within=within)

    async def drained(self, within: float = 20.0) -> None:
        async def idle() -> bool:
            pending: int = await self.pool.fetchval("SELECT count(*) FROM inbox WHERE status = 'pending'")
            return pending == 0

        await until(idle, within=within)


@contextlib.asynccontextmanager
async def stream_world(
    root: Path,
    db_url: str,
    aiohttp_client: Callable[..., Any],
    *,
    processes: int = 1,
    members: int = 30,
    settings: StreamSettings = FAST,
    clock: Callable[[], float] = time.time,
    ack_timeout: float = 1.0,
) -> AsyncIterator[StreamWorld]:
    """The simulator with a DingTalk org; ``processes`` apps on one database, each with a Stream connection of
    corps/Field; the first full sync done; every app connected."""
    sim = Simulator(seed=5)
    ding = sim.add_dingtalk_app(generate_org(51, members=members, departments=6, depth=3, tags=0))
    sim.stream.ack_timeout = ack_timeout
    async with run_simulator(sim):
        write_stream_corp(root, ding, sim)
        config = load_app_dir(root, {})
        clients = []
        try:
            for _ in range(processes):
                app = create_app(
                    Settings(app_dir=root, run_scheduler=False), config, db_url,
                    scheduler=SchedulerSettings(debounce_seconds=0), stream=settings, clock=clock,
                )  # fmt: skip
                clients.append(await aiohttp_client(app))
            world = StreamWorld(sim, ding, clients)
            result = await world.app[SCHEDULER].request(CORP)
            assert result.status is RunStatus.SUCCEEDED, result
            await world.connected(processes)
            yield world
        finally:
            for client in clients:
                await client.close()
