"""Reading a request's body with a deadline, so a client that sends it slowly cannot hold a connection."""

from __future__ import annotations

import asyncio

from aiohttp import web

from receiver.keys import SETTINGS


async def read_body(request: web.Request) -> bytes:
    """The whole body; 408 when it has not all arrived within ``CORPSYNC_CLIENT_TIMEOUT`` seconds, 413 when it is
    over ``CORPSYNC_MAX_BODY_BYTES`` — at once when its ``Content-Length`` says so.

    A callback's body nearly always arrives with its headers: then it is read at once, with no timer.
    """
    limit = request.app[SETTINGS].max_body_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        # aiohttp's read() would take in the body up to the limit first, growing a buffer of up to a MiB a request
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)
    if request.content.is_eof():
        return await request.read()
    try:
        async with asyncio.timeout(request.app[SETTINGS].client_timeout):
            return await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="the request body did not arrive in time") from None
