"""One DingTalk corp's Stream connection: open it, keep it, store every event durably, then ACK it.

``connections/open`` (the app's clientId and clientSecret, an EVENT subscription) gives a WebSocket endpoint and
a single-use ticket (protocol/dingtalk.md §4.2). On the socket: a SYSTEM ``ping`` is echoed; a SYSTEM
``disconnect`` makes us reconnect at once with a new ticket; an EVENT goes through the same intake as an HTTP push
(``receiver.callbacks.intake``: one inbox row, deduplicated on its eventId) and is ACKed SUCCESS only after the row
is committed, LATER when it could not be (DingTalk redelivers). Frames are handed to the intake in arrival order,
so the inbox keeps the order the socket gave; up to ``in_flight`` of them wait for their commit at once.

A dropped socket, a WebSocket ping without its pong, a silence longer than ``idle`` or a failed open are retried
for as long as the consumer runs, after a backoff with jitter from ``backoff_min`` up to ``backoff_max``. Time
without a live connection is blind time: on each connect ``handlers.sync.drift.stream_connected`` asks for a full
sync when no process of the corp had one for longer than ``max_gap``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import asyncpg

import handlers.events.parse as plaintexts
from handlers.config import DingTalkCorp
from handlers.errors import MalformedMessage, StoreUnavailable
from handlers.store.inbox import InboxRecord
from handlers.store.pool import DB_ERRORS
from handlers.sync import drift
from receiver.callbacks.intake import Intake
from receiver.errors import EnvelopeError
from receiver.ops.metrics import Metrics
from receiver.stream import frames

log = logging.getLogger("corpsync.stream")

OPEN_PATH = "/v1.0/gateway/connections/open"
UNSTORED: tuple[type[BaseException], ...] = (StoreUnavailable, *DB_ERRORS)  # answered LATER: DingTalk redelivers
ROUTE = "dingtalk-stream"  # the inbox route of a Stream event (HTTP push: "dingtalk")
USER_AGENT = "corpsync-stream/1.0"
CLOSE_WAIT = 1.0  # seconds a closing socket waits for the gateway's close frame: a reconnect never waits longer


@dataclass(frozen=True, slots=True)
class StreamSettings:
    backoff_min: float = 1.0  # seconds before the first retry after a failure
    backoff_max: float = 60.0  # the longest wait between tries
    heartbeat: float = 30.0  # WebSocket ping interval; no pong within half of it drops the connection
    idle: float = 150.0  # no frame at all for this long (the gateway pings every minute or so): reconnect
    beat: float = 30.0  # how often a live connection is recorded (blind time, across processes)
    max_gap: float = 300.0  # blind longer than this: a full sync after reconnecting (as a receiver gap)
    max_frame: int = 1024 * 1024  # a frame larger than this closes the connection
    in_flight: int = 256  # events handed to the intake and not yet ACKed
    open_timeout: float = 10.0  # connections/open and the WebSocket handshake


class StreamOpenFailed(Exception):
    """``connections/open`` answered something other than an endpoint and a ticket."""


def backoff(attempt: int, settings: StreamSettings, rng: random.Random) -> float:
    """Seconds before try ``attempt`` (0 first): exponential, with jitter, within [backoff_min, backoff_max]."""
    ceiling = min(settings.backoff_max, settings.backoff_min * 2.0 ** min(attempt, 30))
    return max(settings.backoff_min, ceiling * (0.5 + rng.random() / 2))


@dataclass(slots=True)
class LinkState:
    """What /readyz shows of one corp's connection (times are the consumer's clock, seconds since the epoch)."""

    connected_since: float | None = None
    last_frame_at: float | None = None
    last_error: str | None = None  # a kind (``closed``, ``missed_ping``, ``open_401``, ...), never a message
    reconnects: int = 0

    def json(self, now: float) -> dict[str, Any]:
        def ago(at: float | None) -> float | None:
            return None if at is None else round(max(now - at, 0.0), 3)

        def iso(at: float | None) -> str | None:
            return None if at is None else datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")

        return {
            "connected": self.connected_since is not None,
            "connectedSince": iso(self.connected_since),
            "connectedSeconds": ago(self.connected_since),
            "lastFrameAt": iso(self.last_frame_at),
            "lastFrameSeconds": ago(self.last_frame_at),
            "lastError": self.last_error,
            "reconnects": self.reconnects,
        }


class StreamConsumer:
    """The Stream connection of one corp in this process (several processes may each hold one)."""

    def __init__(
        self,
        corp: DingTalkCorp,
        corp_row: int,
        *,
        session: aiohttp.ClientSession,
        intake: Intake,
        pool: asyncpg.Pool,
        process: str,
        metrics: Metrics | None = None,
        settings: StreamSettings | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if corp.stream_base is None:
            raise ValueError(f"corps/{corp.name} is not in Stream mode")
        self.corp = corp
        self.state = LinkState()
        self.settings = settings or StreamSettings()
        self._row = corp_row
        self._base = corp.stream_base
        self._session = session
        self._intake = intake
        self._pool = pool
        self._process = process
        self._metrics = metrics
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._slots = asyncio.Semaphore(self.settings.in_flight)
        self._acks: set[asyncio.Task[None]] = set()
        self._blind_since: float | None = clock()
        self._attempt = 0  # tries since the last connection that opened: the backoff grows with it

    @property
    def name(self) -> str:
        return self.corp.name

    def now(self) -> float:
        """The consumer's clock (seconds since the epoch), which its state's times are read on."""
        return self._clock()

    async def run(self) -> None:
        """Connect and reconnect until cancelled."""
        while True:
            reason = "closed"
            try:
                endpoint, ticket = await self._open()
                reason = await self._connected(endpoint, ticket)
            except StreamOpenFailed as exc:
                reason = str(exc)
            except aiohttp.WSServerHandshakeError as exc:  # the ticket refused, or no WebSocket there
                reason = f"handshake_{exc.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                reason = "unreachable" if isinstance(exc, aiohttp.ClientConnectionError | OSError) else "timeout"
            except Exception as exc:  # whatever ends a connection (a bug included), the consumer goes on trying
                reason = "error"
                log.error("stream connection failed", extra={"action": "stream_failed", "corp": self.name,
                                                              "error": type(exc).__name__})  # fmt: skip
            self.state.last_error = None if reason == "disconnect" else reason
            self.state.reconnects += 1
            if self._metrics is not None:
                self._metrics.stream_reconnects.labels(self.name, reason.split("_")[0]).inc()
            delay = 0.0 if reason == "disconnect" else backoff(self._attempt, self.settings, self._rng)
            self._attempt += 1
            log.info(
                "stream reconnecting",
                extra={"action": "stream_reconnect", "corp": self.name, "reason": reason, "delay": round(delay, 2)},
            )
            await asyncio.sleep(delay)

    async def close(self) -> None:
        """Wait for the ACKs in flight (the caller cancels ``run``), then record the end of the connection."""
        if self._acks:
            await asyncio.gather(*self._acks, return_exceptions=True)
        if self.state.connected_since is not None:
            await self._mark_down()

    # -- the connection ---------------------------------------------------------------------------------

    async def _open(self) -> tuple[str, str]:
        body = {
            "clientId": self.corp.app_key,
            "clientSecret": self.corp.app_secret.reveal(),
            "subscriptions": [{"type": "EVENT", "topic": "*"}],
            "ua": USER_AGENT,
            "localIp": "",
        }
        timeout = aiohttp.ClientTimeout(total=self.settings.open_timeout)
        async with self._session.post(self._base + OPEN_PATH, json=body, timeout=timeout) as response:
            if response.status != 200:
                raise StreamOpenFailed(f"open_{response.status}")
            try:
                doc = await response.json(content_type=None)
            except ValueError:
                raise StreamOpenFailed("open_malformed") from None
        endpoint = doc.get("endpoint") if isinstance(doc, dict) else None
        ticket = doc.get("ticket") if isinstance(doc, dict) else None
        if not isinstance(endpoint, str) or not isinstance(ticket, str) or not endpoint or not ticket:
            raise StreamOpenFailed("open_malformed")
        return endpoint, ticket

    async def _connected(self, endpoint: str, ticket: str) -> str:
        """Hold one connection until it ends; the reason it ended."""
        separator = "&" if "?" in endpoint else "?"
        async with self._session.ws_connect(
            f"{endpoint}{separator}ticket={quote_plus(ticket)}",
            heartbeat=self.settings.heartbeat,
            max_msg_size=self.settings.max_frame,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_WAIT),
        ) as ws:
            await self._mark_up()
            beating = asyncio.create_task(self._beat(), name=f"corpsync-stream-beat-{self.name}")
            try:
                reason = await self._read(ws)
                if reason == "disconnect" and self._acks:  # the socket still works: its last ACKs go out first
                    await asyncio.wait(set(self._acks), timeout=self.settings.open_timeout)
                return reason
            finally:
                beating.cancel()
                await asyncio.gather(beating, return_exceptions=True)
                await self._mark_down()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        while True:
            try:
                message = await ws.receive(timeout=self.settings.idle)
            except TimeoutError:
                return "idle"
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                if await self._frame(ws, message.data):
                    return "disconnect"
                continue
            if isinstance(ws.exception(), aiohttp.ServerTimeoutError):
                return "missed_ping"
            return "closed"

    async def _frame(self, ws: aiohttp.ClientWebSocketResponse, raw: str | bytes) -> bool:
        """Handle one frame; True for a ``disconnect``."""
        self.state.last_frame_at = self._clock()
        try:
            frame = frames.parse_frame(raw)
        except MalformedMessage:
            self._count_frame("malformed")
            log.info("stream frame malformed", extra={"action": "stream_frame_malformed", "corp": self.name})
            return False
        if frame.type == frames.SYSTEM:
            self._count_frame(frame.topic if frame.topic in (frames.PING, frames.DISCONNECT) else "system")
            if frame.topic == frames.PING and not ws.closed:
                with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                    await ws.send_str(frames.pong(frame).decode())
            return frame.topic == frames.DISCONNECT
        if frame.type != frames.EVENT:  # CALLBACK (bots, cards): not subscribed, never ours
            self._count_frame("other")
            return False
        self._count_frame("event")
        await self._event(ws, frame, raw if isinstance(raw, bytes) else raw.encode())
        return False

    async def _event(self, ws: aiohttp.ClientWebSocketResponse, frame: frames.Frame, raw: bytes) -> None:
        try:
            plaintext = frames.event_plaintext(frame)
            event = plaintexts.parse_dingtalk(plaintext)
        except MalformedMessage:
            await self._ack(ws, frame.message_id, frames.ACK_SUCCESS, "rejected")  # never readable: no redelivery
            return
        if event.corp_id is not None and event.corp_id != self.corp.corp_id:
            log.warning("stream event of another corp", extra={"action": "stream_foreign_corp", "corp": self.name})
            await self._ack(ws, frame.message_id, frames.ACK_SUCCESS, "foreign")
            return
        record = InboxRecord(
            stream=self.name,
            platform="dingtalk",
            route=ROUTE,
            corp=self._row,
            dedupe_key=plaintexts.dedupe_key("dingtalk", plaintext),
            event_type=event.event_type,
            query={"messageId": frame.message_id},
            body=raw,
            plaintext=plaintext,
        )
        await self._slots.acquire()
        try:
            stored = self._intake.submit(record)  # in arrival order: the inbox keeps the socket's order
        except (StoreUnavailable, EnvelopeError):
            self._slots.release()
            await self._ack(ws, frame.message_id, frames.ACK_LATER, "unavailable")
            return
        task = asyncio.create_task(self._after_commit(ws, frame.message_id, stored))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _after_commit(
        self, ws: aiohttp.ClientWebSocketResponse, message_id: str, stored: asyncio.Future[bool]
    ) -> None:
        try:
            new = await stored
        except EnvelopeError:  # text PostgreSQL cannot hold: it never will, so no redelivery
            await self._ack(ws, message_id, frames.ACK_SUCCESS, "rejected")
        except UNSTORED:
            await self._ack(ws, message_id, frames.ACK_LATER, "unavailable")
        else:
            await self._ack(ws, message_id, frames.ACK_SUCCESS, "accepted" if new else "duplicate")
        finally:
            self._slots.release()

    async def _ack(self, ws: aiohttp.ClientWebSocketResponse, message_id: str, status: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.stream_acks.labels(self.name, status, outcome).inc()
        if ws.closed:  # no answer: the gateway redelivers
            return
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await ws.send_str(frames.ack(message_id, status).decode())

    def _count_frame(self, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.stream_frames.labels(self.name, kind).inc()

    # -- live and blind time ----------------------------------------------------------------------------

    async def _mark_up(self) -> None:
        now = self._clock()
        self._attempt = 0
        self.state.connected_since = now
        if self._metrics is not None:
            self._metrics.stream_connected.labels(self.name).set(1)
            if self._blind_since is not None:
                self._metrics.stream_disconnected_seconds.labels(self.name).inc(max(now - self._blind_since, 0.0))
        self._blind_since = None
        log.info("stream connected", extra={"action": "stream_connected", "corp": self.name})
        try:
            async with self._pool.acquire() as conn:
                await drift.stream_connected(conn, self._row, self._process, now, self.settings.max_gap)
        except DB_ERRORS as exc:
            log.warning("stream link not recorded", extra={"action": "stream_link_failed", "error": type(exc).__name__})

    async def _mark_down(self) -> None:
        now = self._clock()
        if self.state.connected_since is None:
            return
        self.state.connected_since = None
        self._blind_since = now
        if self._metrics is not None:
            self._metrics.stream_connected.labels(self.name).set(0)
        await self._live(now)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.beat)
            await self._live(self._clock())

    async def _live(self, now: float) -> None:
        try:
            async with self._pool.acquire() as conn:
                await drift.stream_live(conn, self._row, self._process, now)
        except DB_ERRORS as exc:
            log.warning("stream link not recorded", extra={"action": "stream_link_failed", "error": type(exc).__name__})
