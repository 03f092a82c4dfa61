"""The simulated DingTalk Stream gateway (protocol/dingtalk.md §4.2): ``connections/open`` and the WebSocket.

``POST {stream_base}/v1.0/gateway/connections/open`` takes the app's clientId (appKey) and clientSecret and a list
of subscriptions, and answers ``{"endpoint", "ticket"}``; the ticket opens ``{endpoint}?ticket=`` once, within
90 s. Events go to one open connection of the app that subscribed to EVENT, picked at random (the gateway load
balances); one not ACKed SUCCESS within ``ack_timeout`` (no answer, or ``LATER``) is delivered again after
``redeliver_delay``, to whichever connection is open then, up to ``max_attempts`` times. An ACK is SUCCESS when its
``code`` is 200 and its ``data`` is not ``{"status": "LATER"}`` (the Python SDK sends the event data back, the Java
SDK ``{"status": "SUCCESS"}``). ``disconnect`` sends the SYSTEM disconnect frame and closes the socket after
``disconnect_grace`` seconds (10 s upstream); ``drop`` closes it at once; ``mute_pongs`` stops answering WebSocket
pings. Events published while no connection is open wait up to ``offline_window`` seconds, then are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from receiver.testing.events import Callbacks
from receiver.testing.upstream import Upstream

PREFIX = "/stream"  # a corp's streamBase is ``{sim.url}/stream``
TICKET_TTL = 90.0
OnAck = Callable[[str, str], Awaitable[None]]  # (messageId, status) as each ACK arrives


@dataclass(eq=False)
class Link:
    """One open WebSocket of an app."""

    app_key: str
    ws: web.WebSocketResponse
    events: bool  # subscribed to EVENT
    number: int
    opened_at: float


@dataclass(eq=False)
class Delivery:
    message_id: str
    app_key: str
    frame: dict[str, Any]
    attempts: int = 0
    done: bool = False
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # ACKed SUCCESS, or given up on
    status: str | None = None
    links: list[int] = field(default_factory=list)  # the connection each attempt went to


@dataclass(frozen=True, slots=True)
class Ack:
    message_id: str
    status: str  # SUCCESS | LATER | ERROR (a code other than 200)
    link: int


class StreamGateway:
    """The Stream side of one ``Simulator`` (``sim.stream``)."""

    def __init__(self, sim: Upstream) -> None:
        self.sim = sim
        self.ack_timeout = 3.0
        self.redeliver_delay = 0.2
        self.max_attempts = 10
        self.offline_window = 60.0
        self.disconnect_grace = 10.0
        self.ping_interval: float | None = None  # SYSTEM pings to every connection this often (None: on demand)
        self.mute_pongs = False
        self.refuse_open: int | None = None  # connections/open answers this HTTP status (None: serves)
        self.on_ack: OnAck | None = None
        self.opens: list[tuple[str, float]] = []  # (app_key, monotonic time) of each WebSocket opened
        self.acks: list[Ack] = []
        self.pongs: list[str] = []  # the opaque of each ping answered
        self.lost: list[str] = []  # messageIds given up on
        self.deliveries: dict[str, Delivery] = {}
        self._tickets: dict[str, tuple[str, float, bool]] = {}  # ticket -> (app_key, expires, events)
        self._links: dict[str, list[Link]] = {}
        self._numbers = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base(self) -> str:
        return f"{self.sim.url}{PREFIX}"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(PREFIX + "/v1.0/gateway/connections/open", self.open_connection),
            web.get(PREFIX + "/connect", self.connect),
        ]

    def links(self, app_key: str) -> list[Link]:
        return list(self._links.get(app_key, []))

    # -- the gateway ----------------------------------------------------------------------------------

    async def open_connection(self, request: web.Request) -> web.Response:
        if self.refuse_open is not None:
            return web.json_response({"code": "ServiceUnavailable", "message": "simulated"}, status=self.refuse_open)
        try:
            body = await request.json(loads=orjson.loads)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "MissingParameter", "body is not a JSON object")
        app = self.sim.dingtalk_apps.get(str(body.get("clientId", "")))
        if app is None or not secrets.compare_digest(str(body.get("clientSecret", "")), app.app_secret):
            return _error(401, "InvalidAuthentication", "clientId or clientSecret is wrong")
        subscriptions = body.get("subscriptions")
        if not isinstance(subscriptions, list) or not subscriptions:
            return _error(400, "MissingParameter", "subscriptions")
        events = any(isinstance(s, dict) and s.get("type") == "EVENT" and s.get("topic") == "*" for s in subscriptions)
        ticket = secrets.token_hex(16)
        self._tickets[ticket] = (app.app_key, self.sim.clock() + TICKET_TTL, events)
        endpoint = "ws" + self.sim.url.removeprefix("http") + PREFIX + "/connect"
        return web.json_response({"endpoint": endpoint, "ticket": ticket})

    async def connect(self, request: web.Request) -> web.StreamResponse:
        found = self._tickets.pop(request.query.get("ticket", ""), None)  # single use
        if found is None or found[1] < self.sim.clock():
            return _error(401, "InvalidTicket", "ticket unknown, used or expired")
        app_key, _, events = found
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1024 * 1024)
        await ws.prepare(request)
        link = Link(app_key, ws, events, next(self._numbers), time.monotonic())
        self._links.setdefault(app_key, []).append(link)
        self.opens.append((app_key, link.opened_at))
        pinger = self._spawn(self._ping_every(link)) if self.ping_interval else None
        try:
            async for message in ws:
                if message.type == WSMsgType.PING:
                    if not self.mute_pongs:
                        await ws.pong(message.data)
                elif message.type == WSMsgType.TEXT:
                    await self._answer(link, message.data)
        finally:
            if pinger is not None:
                pinger.cancel()
            self._links[app_key].remove(link)
        return ws

    async def _answer(self, link: Link, text: str) -> None:
        try:
            doc = orjson.loads(text)
            message_id = str(doc["headers"]["messageId"])
            code = doc.get("code")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        delivery = self.deliveries.get(message_id)
        if delivery is None:  # a ping's answer echoes its data
            with contextlib.suppress(orjson.JSONDecodeError, TypeError, AttributeError):
                self.pongs.append(str(orjson.loads(doc.get("data") or "{}").get("opaque")))
            return
        status = "ERROR" if code != 200 else _status(doc.get("data"))
        self.acks.append(Ack(message_id, status, link.number))
        if self.on_ack is not None:
            await self.on_ack(message_id, status)
        delivery.status = status
        delivery.answered.set()

    # -- events ---------------------------------------------------------------------------------------

    def publish(self, app_key: str, change: Callbacks) -> list[str]:
        """Send each DingTalk event of one org change as an EVENT frame; their messageIds."""
        return [self.send_event(app_key, event) for event in change.dingtalk_stream]

    def send_event(self, app_key: str, event: dict[str, Any]) -> str:
        """Send one event in the SDKs' shape (``eventType``, ``eventId``, ..., ``data`` object: the samples in
        ``protocol-events/dingtalk/stream/``) as a wire frame; its messageId."""
        app = self.sim.dingtalk_apps[app_key]
        message_id = f"{next(self._message_ids):08x}_{secrets.token_hex(4)}"
        headers = {
            "topic": "*",
            "messageId": message_id,
            "contentType": "application/json",
            "time": str(int(time.time() * 1000)),
        }
        for key in ("eventType", "eventId", "eventCorpId", "eventBornTime", "eventUnifiedAppId"):
            if key in event:
                headers[key] = str(event[key])
        headers.setdefault("eventCorpId", app.corp_id)
        frame = {
            "specVersion": "1.0",
            "type": "EVENT",
            "headers": headers,
            "data": orjson.dumps(event["data"]).decode(),
        }
        delivery = Delivery(message_id, app_key, frame)
        self.deliveries[message_id] = delivery
        self._spawn(self._deliver(delivery))
        return message_id

    def delivered(self, message_ids: list[str] | None = None) -> bool:
        """Every one of ``message_ids`` (default: every event sent) was ACKed SUCCESS."""
        ids = self.deliveries if message_ids is None else message_ids
        return all(self.deliveries[i].done for i in ids)

    async def wait_delivered(self, message_ids: list[str]) -> bool:
        """Wait until each of ``message_ids`` was ACKed SUCCESS or given up on (bound it with ``asyncio.timeout``);
        whether every one was ACKed."""
        await asyncio.gather(*(self.deliveries[m].finished.wait() for m in message_ids))
        return self.delivered(message_ids)

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            await self._attempts(delivery)
        finally:
            delivery.finished.set()

    async def _attempts(self, delivery: Delivery) -> None:
        while not delivery.done and delivery.attempts < self.max_attempts:
            link = await self._pick(delivery.app_key)
            if link is None:
                self.lost.append(delivery.message_id)
                return
            delivery.attempts += 1
            delivery.links.append(link.number)
            delivery.answered.clear()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await link.ws.send_str(orjson.dumps(delivery.frame).decode())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(delivery.answered.wait(), self.ack_timeout)
            if delivery.status == "SUCCESS":
                delivery.done = True
                return
            delivery.status = None
            await asyncio.sleep(self.redeliver_delay)
        if not delivery.done:
            self.lost.append(delivery.message_id)

    async def _pick(self, app_key: str) -> Link | None:
        deadline = time.monotonic() + self.offline_window
        while True:
            open_links = [k for k in self._links.get(app_key, []) if k.events and not k.ws.closed]
            if open_links:
                return self.sim.rng.choice(open_links)
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.02)

    # -- switches -------------------------------------------------------------------------------------

    async def ping(self, app_key: str) -> list[str]:
        """A SYSTEM ping to every connection of the app; the opaques sent."""
        return [await self._ping(link) for link in self.links(app_key)]

    async def _ping(self, link: Link) -> str:
        opaque = secrets.token_hex(8)
        await self._system(link, "ping", {"opaque": opaque})
        return opaque

    async def _ping_every(self, link: Link) -> None:
        while self.ping_interval and not link.ws.closed:
            await asyncio.sleep(self.ping_interval)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._ping(link)

    async def disconnect(self, app_key: str) -> None:
        """The SYSTEM disconnect frame to every connection of the app; each closes ``disconnect_grace`` later."""
        for link in self.links(app_key):
            await self._system(link, "disconnect", {"reason": "simulated"})
            self._spawn(self._close_later(link))

    async def _close_later(self, link: Link) -> None:
        await asyncio.sleep(self.disconnect_grace)
        await link.ws.close()

    async def drop(self, app_key: str) -> None:
        """Close every connection of the app at once (unACKed events are redelivered)."""
        for link in self.links(app_key):
            await link.ws.close()

    async def _system(self, link: Link, topic: str, data: dict[str, Any]) -> None:
        headers = {"topic": topic, "messageId": f"sys_{secrets.token_hex(6)}", "contentType": "application/json"}
        frame = {"specVersion": "1.0", "type": "SYSTEM", "headers": headers, "data": orjson.dumps(data).decode()}
        with contextlib.suppress(ConnectionError, RuntimeError):
            await link.ws.send_str(orjson.dumps(frame).decode())

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Stop delivering and close every connection (``run_simulator`` calls this on the way out)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for links in list(self._links.values()):
            for link in list(links):
                await link.ws.close()


def _status(data: object) -> str:
    """LATER when the ACK's data says so; any other 200 is SUCCESS."""
    try:
        doc = orjson.loads(data) if isinstance(data, str) and data else {}
    except orjson.JSONDecodeError:
        return "SUCCESS"
    return "LATER" if isinstance(doc, dict) and doc.get("status") == "LATER" else "SUCCESS"


def _error(status: int, code: str, message: str) -> web.Response:
    """DingTalk's new-API error body (``{"code", "message", "requestid"}``)."""
    return web.json_response({"code": code, "message": message, "requestid": secrets.token_hex(8)}, status=status)
