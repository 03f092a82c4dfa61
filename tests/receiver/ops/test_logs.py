"""Structured logs: junk requests are quiet INFO lines, bounded per window, with no bytes of the request."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from receiver.ops.logs import RequestRejections, quiet_rejections

JUNK = [
    b"\x00\x01garbage secret-token-123\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: " + b"secret-token-123" * 1000 + b"\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app = web.Application()
    app.router.add_route("*", "/", echo)
    running = TestServer(app)
    await running.start_server()
    yield running
    await running.close()


async def send(server: TestServer, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(64), 5)
    writer.close()
    return answer


@pytest.fixture
def quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("aiohttp.server", "corpsync.callbacks")]
    before = [list(logger.filters) for logger in loggers]
    quiet_rejections()
    yield
    for logger, filters in zip(loggers, before, strict=True):
        logger.filters[:] = filters


async def test_malformed_requests_are_info_lines_without_their_bytes(
    server: TestServer, quiet: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    for data in JUNK:
        assert (await send(server, data)).startswith(b"HTTP/1.")
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert records and all(r.levelno <= logging.INFO and r.exc_info is None for r in records)
    assert {getattr(r, "action", None) for r in records} == {"request_rejected"}
    assert "secret-token-123" not in caplog.text


def test_rejections_beyond_the_burst_are_counted_into_the_next_window() -> None:
    now = [0.0]
    quiet = RequestRejections(burst=3, window=10.0, clock=lambda: now[0])

    def rejected() -> logging.LogRecord:
        try:
            raise ConnectionResetError("Connection lost")
        except ConnectionResetError:
            record = logging.getLogger("aiohttp.server").makeRecord(
                "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s", ("1.2.3.4",),
                sys.exc_info(),
            )  # fmt: skip
        return record

    passed = [quiet.filter(rejected()) for _ in range(5)]
    assert passed == [True, True, True, False, False]
    now[0] = 10.0
    record = rejected()
    assert quiet.filter(record) and getattr(record, "left_out", None) == 2 and record.levelno == logging.INFO


def test_errors_that_are_not_the_clients_pass_untouched() -> None:
    quiet = RequestRejections(burst=0)
    record = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "boom", (), None)
    assert quiet.filter(record) and record.levelno == logging.ERROR


def test_callback_rejections_share_the_bound(quiet: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="corpsync.callbacks")
    callbacks = logging.getLogger("corpsync.callbacks")
    for _ in range(50):
        callbacks.info("callback rejected", extra={"action": "callback_rejected", "reason": "SignatureError"})
    callbacks.info("callback not stored", extra={"action": "callback_unavailable"})
    actions = [getattr(r, "action", None) for r in caplog.records]
    assert actions.count("callback_rejected") == 20 and actions.count("callback_unavailable") == 1
