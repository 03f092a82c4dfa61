"""The callback routes the WeCom and DingTalk consoles call: verify, decrypt, commit to the inbox, answer.

Nothing here calls a platform API: the answer must leave within the platforms' deadlines (WeCom 5 s,
suite instructions and URL checks 1 s, DingTalk 2.5 s). Rejections are 4xx and never decrypt before the
signature has been checked (``CallbackCipher.open``).
"""

from __future__ import annotations

import time

import orjson
from aiohttp import web

import handlers.events.parse as plaintexts
import receiver.dingtalk as dingtalk
import receiver.wecom as wecom
from handlers.model import Platform
from receiver.crypto import CallbackCipher, Opened, new_nonce
from receiver.endpoints import CorpEndpoint, SuiteEndpoint
from receiver.errors import EnvelopeError, ReceiveIdError, StaleTimestampError, UnknownCorp
from receiver.intake import InboxRecord
from receiver.keys import CORP_ROWS, ENDPOINTS, INTAKE, OUTCOME, POOL, SETTINGS

routes = web.RouteTableDef()

SUITE_TENANT_SQL = "SELECT 1 FROM suite_tenants WHERE auth_name = $1 AND corp_id = $2 AND status = 'active'"


def _text(plaintext: bytes) -> str:
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError("the decrypted message is not UTF-8") from None
    if "\x00" in text:
        raise EnvelopeError("the decrypted message holds a NUL character")
    return text


def _check_fresh(request: web.Request, timestamp: str) -> None:
    max_age = request.app[SETTINGS].callback_max_age
    if max_age is None:
        return
    try:
        stamp = int(timestamp)
    except ValueError:
        raise StaleTimestampError("timestamp is not a number") from None
    seconds = stamp / 1000 if stamp > 10**11 else stamp  # DingTalk sends milliseconds
    if abs(time.time() - seconds) > max_age:
        raise StaleTimestampError("timestamp outside the accepted window")


def _wecom_endpoint(request: web.Request) -> CorpEndpoint:
    endpoint = request.app[ENDPOINTS].wecom.get(request.match_info["corp"])
    if endpoint is None:
        raise UnknownCorp("unknown corp")
    return endpoint


def _suite_endpoint(request: web.Request) -> SuiteEndpoint:
    endpoint = request.app[ENDPOINTS].suites.get(request.match_info["auth"])
    if endpoint is None:
        raise UnknownCorp("unknown auth")
    return endpoint


def _verify_echo(request: web.Request, cipher: CallbackCipher, allowed: frozenset[str]) -> web.Response:
    signature, timestamp, nonce, echostr = wecom.signed_query(request.query, echostr=True)
    _check_fresh(request, timestamp)
    opened = cipher.open(signature, timestamp, nonce, echostr, allowed)
    return web.Response(body=wecom.url_verification_reply(opened), content_type="text/plain")


async def _open_wecom_post(request: web.Request, cipher: CallbackCipher, allowed: frozenset[str] | None) -> Opened:
    """Verify and decrypt a WeCom POST; ``allowed=None`` leaves the receive-id check to the caller."""
    signature, timestamp, nonce = wecom.signed_query(request.query, echostr=False)
    body = await request.read()
    envelope = wecom.parse_envelope(body)
    _check_fresh(request, timestamp)
    if allowed is None:
        cipher.verify(signature, timestamp, nonce, envelope.encrypt)
        message, receive_id = cipher.decrypt(envelope.encrypt)
        return Opened(message=message, receive_id=receive_id)
    return cipher.open(signature, timestamp, nonce, envelope.encrypt, allowed)


async def _record(
    request: web.Request,
    *,
    platform: Platform,
    route: str,
    stream: str,
    corp_name: str | None,
    plaintext: str,
    dedupe_key: str,
    event_type: str | None,
) -> bool:
    body = (await request.read()).decode("utf-8", errors="replace")
    record = InboxRecord(
        stream=stream,
        platform=platform.value,
        route=route,
        corp=request.app[CORP_ROWS].get(corp_name) if corp_name else None,
        dedupe_key=dedupe_key,
        event_type=event_type,
        query=dict(request.query),
        body=body,
        plaintext=plaintext,
    )
    new = await request.app[INTAKE].submit(record)
    request[OUTCOME] = "accepted" if new else "duplicate"
    return new


async def _record_wecom(
    request: web.Request, opened: Opened, *, route: str, stream: str, corp_name: str | None
) -> web.Response:
    """Commit a verified WeCom message to the inbox; every WeCom route answers ``success`` once it is stored.

    The message is not parsed here: the worker reads it (and records its event type) after the answer.
    """
    text = _text(opened.message)
    await _record(
        request,
        platform=Platform.WECOM,
        route=route,
        stream=stream,
        corp_name=corp_name,
        plaintext=text,
        dedupe_key=plaintexts.dedupe_key(Platform.WECOM, opened.message),
        event_type=None,
    )
    return web.Response(text="success")


@routes.get("/callback/wecom/{corp}")
async def wecom_verify(request: web.Request) -> web.Response:
    endpoint = _wecom_endpoint(request)
    return _verify_echo(request, endpoint.cipher, endpoint.receive_ids)


@routes.post("/callback/wecom/{corp}")
async def wecom_event(request: web.Request) -> web.Response:
    endpoint = _wecom_endpoint(request)
    opened = await _open_wecom_post(request, endpoint.cipher, endpoint.receive_ids)
    return await _record_wecom(request, opened, route="wecom", stream=endpoint.name, corp_name=endpoint.name)


@routes.get("/callback/wecom-suite/{auth}")
async def suite_verify(request: web.Request) -> web.Response:
    endpoint = _suite_endpoint(request)
    return _verify_echo(request, endpoint.cipher, endpoint.instruction_ids)


@routes.post("/callback/wecom-suite/{auth}")
async def suite_instruction(request: web.Request) -> web.Response:
    endpoint = _suite_endpoint(request)
    opened = await _open_wecom_post(request, endpoint.cipher, endpoint.instruction_ids)
    return await _record_wecom(request, opened, route="wecom-suite", stream=endpoint.stream, corp_name=None)


@routes.get("/callback/wecom-suite/{auth}/data")
async def suite_data_verify(request: web.Request) -> web.Response:
    endpoint = _suite_endpoint(request)
    return _verify_echo(request, endpoint.cipher, endpoint.verify_data_ids)


async def _authorized_tenant(request: web.Request, endpoint: SuiteEndpoint, corp_id: str) -> bool:
    if corp_id in endpoint.configured_tenants:
        return True
    found = await request.app[POOL].fetchval(SUITE_TENANT_SQL, endpoint.auth.name, corp_id)
    return found is not None


@routes.post("/callback/wecom-suite/{auth}/data")
async def suite_data(request: web.Request) -> web.Response:
    endpoint = _suite_endpoint(request)
    opened = await _open_wecom_post(request, endpoint.cipher, None)
    if not await _authorized_tenant(request, endpoint, opened.receive_id):
        raise ReceiveIdError("receive-id is not an authorized corp of this suite")
    return await _record_wecom(
        request,
        opened,
        route="wecom-suite-data",
        stream=endpoint.tenant_stream(opened.receive_id),
        corp_name=endpoint.configured_tenants.get(opened.receive_id),
    )


@routes.post("/callback/dingtalk/{corp}")
async def dingtalk_event(request: web.Request) -> web.Response:
    endpoint = request.app[ENDPOINTS].dingtalk.get(request.match_info["corp"])
    if endpoint is None:
        raise UnknownCorp("unknown corp")
    parsed = dingtalk.parse_request(request.query, await request.read())
    _check_fresh(request, parsed.timestamp)
    opened = endpoint.cipher.open(
        parsed.signature, parsed.timestamp, parsed.nonce, parsed.encrypt, endpoint.receive_ids
    )
    text = _text(opened.message)
    event = plaintexts.parse_dingtalk(text)
    if event.event_type == "check_url":
        request[OUTCOME] = "verified"
    else:
        await _record(
            request,
            platform=Platform.DINGTALK,
            route="dingtalk",
            stream=endpoint.name,
            corp_name=endpoint.name,
            plaintext=text,
            dedupe_key=plaintexts.dedupe_key(Platform.DINGTALK, opened.message),
            event_type=event.event_type,
        )
    reply = dingtalk.success_reply(
        endpoint.cipher, opened.receive_id, timestamp=str(int(time.time() * 1000)), nonce=new_nonce()
    )
    return web.Response(body=orjson.dumps(reply), content_type="application/json")
