"""Pushing callbacks: requests the crypto core opens, and the platforms' rules for a delivered event."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from receiver.callbacks.crypto import CallbackCipher
from receiver.testing import (
    Simulator,
    describe,
    generate_org,
    main,
    run_simulator,
    sign_dingtalk_callback,
    sign_wecom_url_verification,
)
from receiver.testing import mutations as m

TOKEN = "tok123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


class Receiver:
    """A stand-in for corpsync's callback routes: opens every request with the crypto core."""

    def __init__(self, receive_id: str) -> None:
        self.cipher = CallbackCipher(TOKEN, AES_KEY)
        self.receive_id = receive_id
        self.requests: list[tuple[dict[str, str], bytes, bytes]] = []  # (query, body, plaintext)
        self.status = 200
        self.reply: bytes | None = None  # None: the platform's proper reply

    async def wecom(self, request: web.Request) -> web.Response:
        body = await request.read()
        root = ET.fromstring(body)  # noqa: S314 - our own simulator's output
        assert [child.tag for child in root] == ["ToUserName", "Encrypt", "AgentID"]
        q = request.query
        opened = self.cipher.open(
            q["msg_signature"], q["timestamp"], q["nonce"], root.findtext("Encrypt") or "", {self.receive_id}
        )
        self.requests.append((dict(q), body, opened.message))
        return web.Response(status=self.status, body=self.reply if self.reply is not None else b"")

    async def dingtalk(self, request: web.Request) -> web.Response:
        body = await request.read()
        q = request.query
        assert q["signature"] == q["msg_signature"]
        encrypted = orjson.loads(body)["encrypt"]
        opened = self.cipher.open(q["msg_signature"], q["timestamp"], q["nonce"], encrypted, {self.receive_id})
        self.requests.append((dict(q), body, opened.message))
        if self.reply is not None:
            return web.Response(status=self.status, body=self.reply)
        sealed = self.cipher.seal(b"success", self.receive_id, "1700000000000", "n0nce123")
        reply = {
            "msg_signature": sealed.signature,
            "timeStamp": sealed.timestamp,
            "nonce": sealed.nonce,
            "encrypt": sealed.encrypt,
        }
        return web.json_response(reply, status=self.status)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def serve(aiohttp_server: Any, receiver: Receiver) -> str:
    app = web.Application()
    app.router.add_post("/wecom", receiver.wecom)
    app.router.add_post("/dingtalk", receiver.dingtalk)
    server = await aiohttp_server(app)
    return str(server.make_url(""))


async def test_wecom_push_is_a_signed_xml_envelope(aiohttp_server: Any, http: aiohttp.ClientSession) -> None:
    sim = Simulator()
    corp = sim.add_wecom_corp(generate_org(1, 20, 3, 2), corp_id="wwcorp", token=TOKEN, aes_key=AES_KEY)
    receiver = Receiver("wwcorp")
    base = await serve(aiohttp_server, receiver)
    plaintext = m.add_member(corp.org, "zhangsan").wecom[0]
    pushed = await sim.push(
        base + "/wecom", plaintext, platform="wecom", token=TOKEN, aes_key=AES_KEY, receive_id="wwcorp", session=http
    )
    assert pushed.delivered
    assert pushed.status == 200
    query, body, opened = receiver.requests[0]
    assert opened == plaintext
    assert set(query) == {"msg_signature", "timestamp", "nonce"}
    assert len(query["timestamp"]) == 10
    assert b"<ToUserName><![CDATA[wwcorp]]></ToUserName>" in body


async def test_suite_instruction_url_must_answer_success(aiohttp_server: Any, http: aiohttp.ClientSession) -> None:
    sim = Simulator()
    sim.add_wecom_suite("wwsuite", token=TOKEN, aes_key=AES_KEY)
    receiver = Receiver("wwsuite")
    base = await serve(aiohttp_server, receiver)
    ticket = sim.issue_suite_ticket("wwsuite")
    options: dict[str, Any] = {"platform": "wecom", "token": TOKEN, "aes_key": AES_KEY, "receive_id": "wwsuite"}
    assert not (await sim.push(base + "/wecom", ticket, session=http, **options)).delivered
    receiver.reply = b"success"
    assert (await sim.push(base + "/wecom", ticket, session=http, **options)).delivered
    assert b"<InfoType><![CDATA[suite_ticket]]></InfoType>" in receiver.requests[0][2]


async def test_dingtalk_push_needs_an_encrypted_success(aiohttp_server: Any, http: aiohttp.ClientSession) -> None:
    sim = Simulator()
    app = sim.add_dingtalk_app(generate_org(2, 20, 3, 2), app_key="dingkey", token=TOKEN, aes_key=AES_KEY)
    receiver = Receiver("dingkey")
    url = await serve(aiohttp_server, receiver) + "/dingtalk"
    event = m.add_member(app.org, "lisi").dingtalk[0]
    options: dict[str, Any] = {"platform": "dingtalk", "token": TOKEN, "aes_key": AES_KEY, "receive_id": "dingkey"}
    pushed = await sim.push(url, event, session=http, **options)
    assert pushed.delivered
    query, body, opened = receiver.requests[0]
    assert opened == event
    assert set(query) == {"signature", "msg_signature", "timestamp", "nonce"}
    assert len(query["timestamp"]) == 13
    assert set(orjson.loads(body)) == {"encrypt"}
    assert app.failed == []

    receiver.reply = b"success"  # not encrypted: DingTalk counts it as a failure
    assert not (await sim.push(url, event, session=http, **options)).delivered
    receiver.reply, receiver.status = None, 503
    assert not (await sim.push(url, event, session=http, **options)).delivered
    assert [f["call_back_tag"] for f in app.failed] == ["user_add_org", "user_add_org"]
    assert not (await sim.push(url, event, session=http, record_failure=False, **options)).delivered
    assert len(app.failed) == 2


async def test_unreachable_receiver_is_status_0(http: aiohttp.ClientSession) -> None:
    sim = Simulator()
    sim.add_dingtalk_app(generate_org(2, 5, 1, 1), app_key="dingkey", token=TOKEN, aes_key=AES_KEY)
    pushed = await sim.push(
        "http://127.0.0.1:9/cb",
        b"{}",
        platform="dingtalk",
        token=TOKEN,
        aes_key=AES_KEY,
        receive_id="dingkey",
        session=http,
    )
    assert (pushed.status, pushed.delivered) == (0, False)
    assert len(sim.dingtalk_apps["dingkey"].failed) == 1


def test_url_verification_query_opens_to_the_echo() -> None:
    query = sign_wecom_url_verification("1616140317555161061", token=TOKEN, aes_key=AES_KEY, receive_id="wwcorp")
    opened = CallbackCipher(TOKEN, AES_KEY).open(
        query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"], {"wwcorp"}
    )
    assert opened.message == b"1616140317555161061"


def test_dingtalk_signing_uses_the_given_timestamp_and_nonce() -> None:
    query, body = sign_dingtalk_callback(
        b'{"EventType":"check_url"}',
        token=TOKEN,
        aes_key=AES_KEY,
        receive_id="dingkey",
        timestamp="1700000000123",
        nonce="abcd1234",
    )
    assert (query["timestamp"], query["nonce"]) == ("1700000000123", "abcd1234")
    encrypted = orjson.loads(body)["encrypt"]
    assert query["signature"] == CallbackCipher(TOKEN, AES_KEY).signature("1700000000123", "abcd1234", encrypted)


async def test_run_simulator_serves_on_a_free_port(http: aiohttp.ClientSession) -> None:
    sim = Simulator()
    corp = sim.add_wecom_corp(generate_org(3, 10, 2, 2))
    async with run_simulator(sim) as running:
        assert running.url.startswith("http://127.0.0.1:")
        params = {"corpid": corp.corp_id, "corpsecret": corp.secret}
        async with http.get(running.wecom_api_base + "/cgi-bin/gettoken", params=params) as response:
            assert (await response.json())["errcode"] == 0
        info = describe(running)
        assert info["wecom"][corp.corp_id]["apiBase"] == running.wecom_api_base
        assert info["wecom"][corp.corp_id]["secret"] == corp.secret


def test_cli_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    assert "--members" in capsys.readouterr().out
