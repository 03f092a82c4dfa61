"""The callback routes the WeCom and DingTalk consoles call: verify, decrypt, commit to the inbox, answer.

Nothing here calls a platform API: the answer must leave within the platforms' deadlines (WeCom 5 s,
suite instructions and URL checks 1 s, DingTalk 2.5 s). Rejections are 4xx and never decrypt before the
signature has been checked (``CallbackCipher.open``).

This is the hot path, so it goes without middleware: each route is wrapped once, at start-up, in
``Callbacks.answered``, which maps the exception tree to statuses and counts and times the answer under the
route's fixed labels. The app has no middleware at all; its route table is ``receiver.app.routes``, and
``receiver.app.unrouted`` answers what no route takes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

import orjson
from aiohttp import web

import handlers.events.parse as plaintexts
import receiver.callbacks.dingtalk as dingtalk
import receiver.callbacks.wecom as wecom
from handlers.errors import MalformedMessage, StoreUnavailable, UnknownCorp
from handlers.model import Platform
from handlers.store.inbox import InboxRecord
from handlers.store.pool import DB_ERRORS
from receiver.bodies import read_body
from receiver.callbacks.crypto import CallbackCipher, Opened, new_nonce
from receiver.callbacks.endpoints import CorpEndpoint, Endpoints, SuiteEndpoint
from receiver.errors import CallbackRejected, EnvelopeError, ReceiveIdError, StaleTimestampError, http_status, rejection
from receiver.keys import CORP_ROWS, INTAKE, RUNTIME
from receiver.ops.metrics import Metrics

log = logging.getLogger("corpsync.callbacks")

_WECOM = Platform.WECOM.value  # read once: an enum member's value is a Python-level property
_DINGTALK = Platform.DINGTALK.value

# What answers 503 so the platform retries: the intake could not commit, or a lookup could not reach the store.
UNSTORED: tuple[type[BaseException], ...] = (StoreUnavailable, *DB_ERRORS)

MAX_TIMESTAMP_DIGITS = 13  # milliseconds until the year 2286: anything longer is no timestamp

# A route's own work: the answer, and the outcome it is counted under.
Route = Callable[[web.Request], Awaitable[tuple[web.StreamResponse, str]]]


def _text(plaintext: bytes) -> str:
    """The decrypted message as text, to read it before the answer (DingTalk's check_url)."""
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError("the decrypted message is not UTF-8") from None


def _stored(new: bool) -> str:
    """The outcome a committed callback is counted under."""
    return "accepted" if new else "duplicate"


def _reject(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)


class Callbacks:
    """The callback routes of one app (``receiver.app.routes`` names their paths, each through ``answered``).
    The runtime (its suite tenants), corp rows and intake are read from the app as it runs."""

    def __init__(self, app: web.Application, endpoints: Endpoints, metrics: Metrics, max_age: int | None) -> None:
        self._app = app
        self._endpoints = endpoints
        self._metrics = metrics
        self._max_age = max_age

    def answered(
        self, platform: str, route: str, handler: Route
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``handler`` with its rejections mapped to statuses, and every answer counted and timed."""
        series = self._metrics.callback_series(platform, route)

        async def answer(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            outcome = "error"
            try:
                response, outcome = await handler(request)
                return response
            except CallbackRejected as exc:
                outcome = f"rejected_{type(exc).__name__.rstrip('_').lower()}"
                log.info(
                    "callback rejected",
                    extra={
                        "action": "callback_rejected",
                        "reason": type(exc).__name__,
                        "wecom_code": exc.wecom_code,
                        "path": request.path,
                    },
                )
                return _reject(http_status(exc) or 400, type(exc).__name__)
            except UnknownCorp:
                outcome = "unknown_corp"
                return _reject(404, "unknown corp")
            except UNSTORED:
                outcome = "unavailable"
                log.warning("callback not stored", extra={"action": "callback_unavailable", "path": request.path})
                return _reject(503, "store unavailable, retry later")
            except web.HTTPException as exc:  # 413 from reading an oversized body
                outcome = f"http_{exc.status}"
                raise
            finally:
                series.observe(outcome, time.perf_counter() - started)

        return answer

    # -- the routes ------------------------------------------------------------------------------------

    async def wecom_verify(self, request: web.Request) -> tuple[web.StreamResponse, str]:
        endpoint = self._wecom_endpoint(request)
        return self._verify_echo(request.query, endpoint.cipher, endpoint.receive_ids), "verified"

    async def wecom_event(self, request: web.Request) -> tuple[web.StreamResponse, str]:
        endpoint = self._wecom_endpoint(request)
        record = self._wecom_post(
            request.query, await read_body(request), endpoint.cipher, endpoint.receive_ids,
            route="wecom", stream=endpoint.name, corp=endpoint.name,
        )  # fmt: skip
        return web.Response(text="success"), _stored(await self._app[INTAKE].submit(record))

    async def suite_verify(self, request: web.Request) -> tuple[web.StreamResponse, str]:
        endpoint = self._suite_endpoint(request)
        return self._verify_echo(request.query, endpoint.cipher, endpoint.instruction_ids), "verified"

    async def suite_instruction(self, request: web.Request) -> tuple[web.StreamResponse, str]:
        endpoint = self._suite_endpoint(request)
        record = self._wecom_post(
            request.query, await read_body(request), endpoint.cipher, endpoint.instruction_ids,
            route="wecom-suite", stream=endpoint.stream, corp=None,
        )  # fmt: skip
        return web.Response(text="success"), _stored(await self._app[INTAKE].submit(record))

    async def suite_data_verify(self, request: web.Request) -> tuple[web.StreamResponse, str]:
        endpoint = self._suite_endpoint(request)
        return self._verify_echo(request.query, endpoint.cipher, endpoint.verify_data_ids), "verified"

    async def suite_data(self, request: web.Request) -> tuple[web.StreamResponse, str]:
        endpoint = self._suite_endpoint(request)
        body = await read_body(request)
        query = request.query
        opened = self._open_wecom_post(query, body, endpoint.cipher, None)
        tenant = opened.receive_id
        configured = tenant in endpoint.configured_tenants
        if not configured and not await self._app[RUNTIME].tenants.is_active(endpoint.auth.name, tenant):
            raise ReceiveIdError("receive-id is not an authorized corp of this suite")
        record = self._wecom_record(
            query,
            body,
            opened,
            route="wecom-suite-data",
            stream=endpoint.tenant_stream(tenant),
            corp=endpoint.configured_tenants.get(tenant),
        )
        return web.Response(text="success"), _stored(await self._app[INTAKE].submit(record))

    async def dingtalk_event(self, request: web.Request) -> tuple[web.StreamResponse, str]:
        endpoint = self._endpoints.dingtalk.get(request.match_info["corp"])
        if endpoint is None:
            raise UnknownCorp("unknown corp")
        body = await read_body(request)
        query = request.query
        parsed = dingtalk.parse_request(query, body)
        self._check_fresh(parsed.timestamp)
        opened = endpoint.cipher.open(
            parsed.signature, parsed.timestamp, parsed.nonce, parsed.encrypt, endpoint.receive_ids
        )
        text = _text(opened.message)
        try:
            event = plaintexts.parse_dingtalk(text)
        except MalformedMessage as exc:
            raise rejection(exc) from None
        if event.event_type == "check_url":
            outcome = "verified"
        else:
            record = self._record(
                query, body, _DINGTALK, opened.message, event.event_type,
                route="dingtalk", stream=endpoint.name, corp=endpoint.name,
            )  # fmt: skip
            outcome = _stored(await self._app[INTAKE].submit(record))
        reply = dingtalk.success_reply(
            endpoint.cipher, opened.receive_id, timestamp=str(int(time.time() * 1000)), nonce=new_nonce()
        )
        return web.Response(body=orjson.dumps(reply), content_type="application/json"), outcome

    # -- the steps -------------------------------------------------------------------------------------

    def _wecom_endpoint(self, request: web.Request) -> CorpEndpoint:
        endpoint = self._endpoints.wecom.get(request.match_info["corp"])
        if endpoint is None:
            raise UnknownCorp("unknown corp")
        return endpoint

    def _suite_endpoint(self, request: web.Request) -> SuiteEndpoint:
        endpoint = self._endpoints.suites.get(request.match_info["auth"])
        if endpoint is None:
            raise UnknownCorp("unknown auth")
        return endpoint

    def _check_fresh(self, timestamp: str) -> None:
        max_age = self._max_age
        if max_age is None:
            return
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > MAX_TIMESTAMP_DIGITS:
            raise StaleTimestampError("timestamp is not a number of seconds or milliseconds")
        stamp = int(timestamp)
        seconds = stamp / 1000 if stamp > 10**11 else stamp  # DingTalk sends milliseconds
        if abs(time.time() - seconds) > max_age:
            raise StaleTimestampError("timestamp outside the accepted window")

    def _verify_echo(self, query: Mapping[str, str], cipher: CallbackCipher, allowed: frozenset[str]) -> web.Response:
        signature, timestamp, nonce, echostr = wecom.signed_query(query, echostr=True)
        self._check_fresh(timestamp)
        opened = cipher.open(signature, timestamp, nonce, echostr, allowed)
        return web.Response(body=wecom.url_verification_reply(opened), content_type="text/plain")

    def _open_wecom_post(
        self, query: Mapping[str, str], body: bytes, cipher: CallbackCipher, allowed: frozenset[str] | None
    ) -> Opened:
        """Verify and decrypt a WeCom POST; ``allowed=None`` leaves the receive-id check to the caller."""
        signature, timestamp, nonce = wecom.signed_query(query, echostr=False)
        envelope = wecom.parse_envelope(body)
        self._check_fresh(timestamp)
        if allowed is None:
            cipher.verify(signature, timestamp, nonce, envelope.encrypt)
            message, receive_id = cipher.decrypt(envelope.encrypt)
            return Opened(message=message, receive_id=receive_id)
        return cipher.open(signature, timestamp, nonce, envelope.encrypt, allowed)

    def _wecom_post(
        self,
        query: Mapping[str, str],
        body: bytes,
        cipher: CallbackCipher,
        allowed: frozenset[str],
        *,
        route: str,
        stream: str,
        corp: str | None,
    ) -> InboxRecord:
        """The inbox row of a WeCom POST whose receive-id must be one of ``allowed``, once verified and decrypted."""
        opened = self._open_wecom_post(query, body, cipher, allowed)
        return self._wecom_record(query, body, opened, route=route, stream=stream, corp=corp)

    def _wecom_record(
        self, query: Mapping[str, str], body: bytes, opened: Opened, *, route: str, stream: str, corp: str | None
    ) -> InboxRecord:
        """The inbox row of a verified WeCom message; every WeCom route answers ``success`` once it is stored.

        The message is not parsed, nor even decoded, here: the database checks that it is UTF-8 as it stores it,
        and the worker reads it (and records its event type) after the answer.
        """
        return self._record(query, body, _WECOM, opened.message, None, route=route, stream=stream, corp=corp)

    def _record(
        self,
        query: Mapping[str, str],
        body: bytes,
        platform: str,
        plaintext: bytes,
        event_type: str | None,
        *,
        route: str,
        stream: str,
        corp: str | None,
    ) -> InboxRecord:
        """The inbox record of a verified callback of ``platform`` (a Platform value), deduplicated as the platform's
        events are (``handlers.events.parse.dedupe_key``)."""
        return InboxRecord(
            stream=stream,
            platform=platform,
            route=route,
            corp=self._app[CORP_ROWS].get(corp) if corp else None,
            dedupe_key=plaintexts.dedupe_key(platform, plaintext),
            event_type=event_type,
            query=dict(query),
            body=body,
            plaintext=plaintext,
        )
