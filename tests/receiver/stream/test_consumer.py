"""The Stream consumer against a gateway that misbehaves: it keeps trying, backing off, and says why."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from handlers.config import DingTalkCorp, Secret
from receiver.callbacks.intake import Intake
from receiver.ops.metrics import Metrics
from receiver.stream.consumer import StreamConsumer, StreamSettings
from tests.support.eventkit import until

QUICK = StreamSettings(backoff_min=0.01, backoff_max=0.04)


def corp(base: str) -> DingTalkCorp:
    return DingTalkCorp(name="Field", title="Field", corp_id="dingcorp", agent_id=None, app_key="dingkey",
                        app_secret=Secret("s"), callback=None, stream_base=base)  # fmt: skip


async def consume(server_app: web.Application, aiohttp_server: Callable[..., Any], pool: asyncpg.Pool,
                  until_tries: int) -> tuple[StreamConsumer, Metrics]:  # fmt: skip
    server = await aiohttp_server(server_app)
    metrics = Metrics()
    async with aiohttp.ClientSession() as session:
        consumer = StreamConsumer(corp(str(server.make_url("")).rstrip("/")), 1, session=session,
                                  intake=Intake(pool), pool=pool, process="p", metrics=metrics,
                                  settings=QUICK)  # fmt: skip
        task = asyncio.create_task(consumer.run())

        async def tried() -> bool:
            return consumer.state.reconnects >= until_tries

        try:
            await until(tried, within=5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return consumer, metrics


async def test_a_refused_ticket_is_retried_with_a_growing_backoff(
    aiohttp_server: Callable[..., Any], pool: asyncpg.Pool
) -> None:
    opened: list[dict[str, Any]] = []

    async def open_connection(request: web.Request) -> web.Response:
        opened.append(await request.json())
        endpoint = str(request.url.with_path("/connect").with_query(None)).replace("http", "ws", 1)
        return web.json_response({"endpoint": endpoint, "ticket": "t+1/="})

    async def connect(request: web.Request) -> web.Response:
        assert request.query["ticket"] == "t+1/="  # sent URL-encoded, read back as issued
        return web.Response(status=401)

    app = web.Application()
    app.add_routes([web.post("/v1.0/gateway/connections/open", open_connection), web.get("/connect", connect)])
    consumer, metrics = await consume(app, aiohttp_server, pool, until_tries=4)
    assert consumer.state.last_error == "handshake_401" and consumer.state.connected_since is None
    assert opened[0]["clientId"] == "dingkey" and opened[0]["clientSecret"] == "s"
    assert opened[0]["subscriptions"] == [{"type": "EVENT", "topic": "*"}]
    assert consumer._attempt >= 4  # never connected: the backoff was never reset
    assert 'corpsync_stream_reconnects_total{corp="Field",reason="handshake"}' in metrics.render().decode()


async def test_a_failing_open_is_retried_and_named(aiohttp_server: Callable[..., Any], pool: asyncpg.Pool) -> None:
    async def open_connection(request: web.Request) -> web.Response:
        return web.json_response({"code": "InvalidAuthentication"}, status=401)

    app = web.Application()
    app.add_routes([web.post("/v1.0/gateway/connections/open", open_connection)])
    consumer, _ = await consume(app, aiohttp_server, pool, until_tries=3)
    assert consumer.state.last_error == "open_401"


async def test_an_open_answer_without_a_ticket_is_retried(
    aiohttp_server: Callable[..., Any], pool: asyncpg.Pool
) -> None:
    async def open_connection(request: web.Request) -> web.Response:
        return web.json_response({"endpoint": "ws://127.0.0.1:9/connect"})

    app = web.Application()
    app.add_routes([web.post("/v1.0/gateway/connections/open", open_connection)])
    consumer, _ = await consume(app, aiohttp_server, pool, until_tries=3)
    assert consumer.state.last_error == "open_malformed"
