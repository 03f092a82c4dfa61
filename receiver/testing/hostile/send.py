"""Sending a hostile request: its own connection, written in pieces when it is slow, the answer read whole."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from receiver.testing.hostile.shapes import HostileRequest


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None  # None: the connection closed, or the wait ran out, before a status line came
    seconds: float


async def send(host: str, port: int, req: HostileRequest, *, within: float = 30.0) -> Answer:
    """Send ``req`` on a new connection; the status of the answer, and how long it took to come whole (None after
    ``within`` seconds).

    The answer ends where its ``Content-Length`` says: after answering, aiohttp keeps reading a body that has not
    all arrived for up to ten seconds (its lingering time) before it closes the connection.
    """
    started = time.perf_counter()
    status: int | None = None
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(host, port)
            writing = asyncio.create_task(_write(writer, req))
            try:
                status = _status(await reader.readline())
                await _read_answer(reader, req.method == b"HEAD")
            finally:
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)
                writer.close()
    except (TimeoutError, OSError, asyncio.IncompleteReadError):
        pass
    return Answer(status, time.perf_counter() - started)


async def _read_answer(reader: asyncio.StreamReader, head_only: bool) -> None:
    """The rest of an answer after its status line: its headers, then its body."""
    length = None
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
    if head_only:
        return
    if length is not None:
        await reader.readexactly(length)
        return
    while await reader.read(65536):  # no length: the answer ends when the server closes the connection
        pass


async def _write(writer: asyncio.StreamWriter, req: HostileRequest) -> None:
    data = req.head + req.body
    step = -(-len(data) // req.pieces)
    try:
        for i in range(0, len(data), step):
            if i:
                await asyncio.sleep(req.pause)
            writer.write(data[i : i + step])
            await writer.drain()
        if req.stall:
            await asyncio.sleep(3600)  # silent, the connection open: until the answer comes or the caller gives up
    except OSError:  # the server answered and closed while the request was still being sent
        pass


def _status(line: bytes) -> int | None:
    parts = line.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None
