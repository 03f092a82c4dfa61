"""The callback routes end to end: signed requests through the real app into the real inbox."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient
from Crypto.Cipher import AES

from handlers.config import AppConfig
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.callbacks.crypto import CallbackCipher
from receiver.keys import METRICS, RUNTIME
from receiver.settings import Settings
from receiver.testing import (
    push_event,
    sign_dingtalk_callback,
    sign_wecom_callback,
    sign_wecom_url_verification,
    write_dingtalk_corp,
    write_proxy_corp,
    write_suite,
    write_wecom_corp,
)
from receiver.testing.harness import (
    DINGTALK_AES_KEY,
    DINGTALK_TOKEN,
    SUITE_AES_KEY,
    SUITE_TOKEN,
    WECOM_AES_KEY,
    WECOM_TOKEN,
)

HQ_CORP = "wx5823bf96d3bd56c7"
SALES_KEY = "ding6ccabc44d2c8d38b"
SALES_CORP = "dingcorp0000000001"
SUITE_ID = "dk0000000000000001"
PROVIDER = "wwprovider00000001"
TENANT = "wwtenant0000000001"

CREATE_USER = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
    "<CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>"
    "<ChangeType>create_user</ChangeType><UserID><![CDATA[zhangsan]]></UserID><Department><![CDATA[1,2]]></Department>"
    "</xml>"
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    write_wecom_corp(tmp_path, "HQ", corp_id=HQ_CORP)
    write_dingtalk_corp(tmp_path, "Sales", corp_id=SALES_CORP, app_key=SALES_KEY)
    write_suite(tmp_path, "Suite", suite_id=SUITE_ID, provider_corp_id=PROVIDER)
    write_proxy_corp(tmp_path, "T1", corp_id=TENANT, auth="Suite")
    return tmp_path


@pytest.fixture
def config(app_dir: Path) -> AppConfig:
    return load_app_dir(app_dir, {})


@pytest.fixture
def settings(app_dir: Path) -> Settings:
    return Settings(app_dir=app_dir, max_body_bytes=64 * 1024, run_worker=False, run_scheduler=False)


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Any], settings: Settings, config: AppConfig, db_url: str
) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings, config, db_url))
    return client


@pytest.fixture
async def inbox(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db_url)
    yield conn
    await conn.close()


def wecom_query(body_plain: str = CREATE_USER, **kw: Any) -> tuple[dict[str, str], bytes]:
    opts: dict[str, Any] = {"token": WECOM_TOKEN, "aes_key": WECOM_AES_KEY, "receive_id": HQ_CORP} | kw
    return sign_wecom_callback(body_plain.encode(), **opts)


def resign(query: dict[str, str], encrypt: str, token: str = WECOM_TOKEN) -> tuple[dict[str, str], bytes]:
    """A validly signed request around an arbitrary ``Encrypt`` value (to reach the checks after the signature)."""
    sig = CallbackCipher(token, WECOM_AES_KEY).signature(query["timestamp"], query["nonce"], encrypt)
    body = f"<xml><ToUserName>x</ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    return {**query, "msg_signature": sig}, body


def raw_ciphertext(plain: bytes) -> str:
    """AES-CBC with the test key and NO padding of our own: the caller controls every byte."""
    key = base64.b64decode(WECOM_AES_KEY + "=")
    return base64.b64encode(AES.new(key, AES.MODE_CBC, key[:16]).encrypt(plain)).decode()


# ---- accepted ---------------------------------------------------------------------------------------


async def test_wecom_url_verification_echoes_plaintext_only(client: TestClient[Any, Any]) -> None:
    query = sign_wecom_url_verification(
        "1616140317555161061", token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, receive_id=HQ_CORP
    )
    response = await client.get("/callback/wecom/HQ", params=query)
    assert response.status == 200
    assert await response.read() == b"1616140317555161061"


async def test_wecom_event_is_committed_before_the_answer(
    client: TestClient[Any, Any], inbox: asyncpg.Connection
) -> None:
    query, body = wecom_query()
    response = await client.post("/callback/wecom/HQ", params=query, data=body)
    assert response.status == 200
    row = await inbox.fetchrow("SELECT * FROM inbox")
    assert row["stream"] == "HQ" and row["route"] == "wecom" and row["status"] == "pending"
    assert row["event_type"] is None  # not parsed before the answer; the worker records it when it applies
    assert row["plaintext"] == CREATE_USER
    assert row["body"] == body.decode()
    assert orjson.loads(row["query"]) == query
    assert row["corp"] is not None


async def test_redelivered_duplicate_is_success_and_not_queued_again(
    client: TestClient[Any, Any], inbox: asyncpg.Connection
) -> None:
    query, body = wecom_query()
    first = await client.post("/callback/wecom/HQ", params=query, data=body)
    again = await client.post("/callback/wecom/HQ", params=query, data=body)
    # A retry is re-signed with a new nonce: still the same event.
    query2, body2 = wecom_query()
    third = await client.post("/callback/wecom/HQ", params=query2, data=body2)
    assert [first.status, again.status, third.status] == [200, 200, 200]
    assert await inbox.fetchval("SELECT count(*) FROM inbox") == 1


async def test_wecom_json_envelope_is_accepted(client: TestClient[Any, Any], inbox: asyncpg.Connection) -> None:
    query, xml_body = wecom_query()
    encrypt = xml_body.decode().split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    body = orjson.dumps({"tousername": HQ_CORP, "encrypt": encrypt, "agentid": ""})
    response = await client.post("/callback/wecom/HQ", params=query, data=body)
    assert response.status == 200
    assert await inbox.fetchval("SELECT count(*) FROM inbox") == 1


async def test_proxy_corp_callback_uses_its_auth_keys(
    client: TestClient[Any, Any], config: AppConfig, inbox: asyncpg.Connection
) -> None:
    pushed = await push_event(client, config, "T1", CREATE_USER.replace(HQ_CORP, TENANT))
    assert pushed.status == 200
    assert await inbox.fetchval("SELECT stream FROM inbox") == "T1"


async def test_suite_instruction_answers_success_and_keeps_the_ticket(
    client: TestClient[Any, Any], inbox: asyncpg.Connection
) -> None:
    ticket = (
        f"<xml><SuiteId><![CDATA[{SUITE_ID}]]></SuiteId><InfoType> <![CDATA[suite_ticket]]></InfoType>"
        "<TimeStamp>1403610513</TimeStamp><SuiteTicket><![CDATA[t1]]></SuiteTicket></xml>"
    )
    for receive_id in (SUITE_ID, PROVIDER):
        query, body = sign_wecom_callback(
            ticket.replace("t1", receive_id).encode(), token=SUITE_TOKEN, aes_key=SUITE_AES_KEY, receive_id=receive_id
        )
        response = await client.post("/callback/wecom-suite/Suite", params=query, data=body)
        assert response.status == 200
        assert await response.text() == "success"
    rows = await inbox.fetch("SELECT stream, route, status, plaintext FROM inbox ORDER BY id")
    assert [tuple(r)[:3] for r in rows] == [("suite:Suite", "wecom-suite", "pending")] * 2
    tickets = [ticket.replace("t1", receive_id) for receive_id in (SUITE_ID, PROVIDER)]
    assert [r["plaintext"] for r in rows] == tickets


async def test_suite_instruction_rejects_a_tenant_receive_id(client: TestClient[Any, Any]) -> None:
    query, body = sign_wecom_callback(b"<xml/>", token=SUITE_TOKEN, aes_key=SUITE_AES_KEY, receive_id=TENANT)
    response = await client.post("/callback/wecom-suite/Suite", params=query, data=body)
    assert response.status == 403


async def test_suite_data_accepts_configured_and_stored_tenants_only(
    client: TestClient[Any, Any], inbox: asyncpg.Connection
) -> None:
    async def post(receive_id: str) -> int:
        query, body = sign_wecom_callback(
            CREATE_USER.encode(), token=SUITE_TOKEN, aes_key=SUITE_AES_KEY, receive_id=receive_id
        )
        return (await client.post("/callback/wecom-suite/Suite/data", params=query, data=body)).status

    assert await post(TENANT) == 200
    assert await post("wwstranger00000001") == 403
    await inbox.execute(
        "INSERT INTO suite_tenants (auth_name, corp_id, permanent_code) VALUES ('Suite', 'wwnew0000000000001', 'p')"
    )
    assert await post("wwnew0000000000001") == 200
    streams = [r["stream"] for r in await inbox.fetch("SELECT stream FROM inbox ORDER BY id")]
    assert streams == ["T1", "Suite/wwnew0000000000001"]


async def test_suite_data_url_verification_uses_the_provider_corpid(client: TestClient[Any, Any]) -> None:
    query = sign_wecom_url_verification("42", token=SUITE_TOKEN, aes_key=SUITE_AES_KEY, receive_id=PROVIDER)
    response = await client.get("/callback/wecom-suite/Suite/data", params=query)
    assert (response.status, await response.text()) == (200, "42")


def open_dingtalk_reply(reply: dict[str, str]) -> bytes:
    cipher = CallbackCipher(DINGTALK_TOKEN, DINGTALK_AES_KEY)
    opened = cipher.open(reply["msg_signature"], reply["timeStamp"], reply["nonce"], reply["encrypt"], {SALES_KEY})
    return opened.message


async def test_dingtalk_check_url_is_answered_with_encrypted_success_and_not_stored(
    client: TestClient[Any, Any], inbox: asyncpg.Connection
) -> None:
    query, body = sign_dingtalk_callback(
        b'{"EventType":"check_url"}', token=DINGTALK_TOKEN, aes_key=DINGTALK_AES_KEY, receive_id=SALES_KEY
    )
    response = await client.post("/callback/dingtalk/Sales", params=query, data=body)
    assert response.status == 200
    reply = await response.json()
    assert set(reply) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert open_dingtalk_reply(reply) == b"success"
    assert len(base64.b64decode(reply["encrypt"])) % 32 == 0
    assert await inbox.fetchval("SELECT count(*) FROM inbox") == 0


async def test_dingtalk_event_dedupes_on_event_id_and_accepts_the_corp_id(
    client: TestClient[Any, Any], inbox: asyncpg.Connection
) -> None:
    event = {"EventType": "user_add_org", "eventId": "e-1", "CorpId": SALES_CORP, "userId": ["u1"]}
    statuses = []
    for owner, extra in ((SALES_KEY, {}), (SALES_CORP, {"timeStamp": "1"})):
        query, body = sign_dingtalk_callback(
            orjson.dumps(event | extra), token=DINGTALK_TOKEN, aes_key=DINGTALK_AES_KEY, receive_id=owner
        )
        statuses.append((await client.post("/callback/dingtalk/Sales", params=query, data=body)).status)
    assert statuses == [200, 200]
    rows = await inbox.fetch("SELECT dedupe_key, event_type FROM inbox")
    assert [tuple(r) for r in rows] == [("event:e-1", "user_add_org")]


# ---- rejected ---------------------------------------------------------------------------------------


async def expect(
    client: TestClient[Any, Any], status: int, query: dict[str, str], body: bytes, path: str = "/callback/wecom/HQ"
) -> None:
    response = await client.post(path, params=query, data=body)
    text = await response.text()
    assert response.status == status, text
    assert "Traceback" not in text and len(text) < 200


async def test_rejects_bad_signature(client: TestClient[Any, Any]) -> None:
    query, body = wecom_query()
    await expect(client, 401, {**query, "msg_signature": "0" * 40}, body)


async def test_rejects_missing_signature(client: TestClient[Any, Any]) -> None:
    query, body = wecom_query()
    del query["msg_signature"]
    await expect(client, 401, query, body)


async def test_rejects_signature_made_with_another_token(client: TestClient[Any, Any]) -> None:
    query, body = wecom_query(token="AnotherToken")
    await expect(client, 401, query, body)


async def test_rejects_wrong_receive_id(client: TestClient[Any, Any]) -> None:
    query, body = wecom_query(receive_id="wwsomebodyelse0001")
    await expect(client, 403, query, body)


async def test_rejects_bad_base64(client: TestClient[Any, Any]) -> None:
    query, _ = wecom_query()
    await expect(client, 400, *resign(query, "not*base64!"))


async def test_rejects_bad_padding(client: TestClient[Any, Any]) -> None:
    query, _ = wecom_query()
    plain = os.urandom(16) + (5).to_bytes(4, "big") + b"hello" + HQ_CORP.encode()
    plain += bytes([33]) * (64 - len(plain))  # pad byte 33 is never valid
    await expect(client, 400, *resign(query, raw_ciphertext(plain)))


async def test_rejects_truncated_ciphertext(client: TestClient[Any, Any]) -> None:
    query, body = wecom_query()
    encrypt = body.decode().split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    truncated = base64.b64encode(base64.b64decode(encrypt)[:-16]).decode()
    await expect(client, 400, *resign(query, truncated))


async def test_rejects_length_field_beyond_the_message(client: TestClient[Any, Any]) -> None:
    query, _ = wecom_query()
    plain = os.urandom(16) + (4000).to_bytes(4, "big") + b"hi"
    plain += bytes([32 - len(plain) % 32]) * (32 - len(plain) % 32)
    await expect(client, 400, *resign(query, raw_ciphertext(plain)))


async def test_rejects_malformed_xml(client: TestClient[Any, Any]) -> None:
    query, _ = wecom_query()
    await expect(client, 400, query, b"<xml><Encrypt>abc</Encr")


async def test_rejects_xml_with_a_doctype(client: TestClient[Any, Any]) -> None:
    query, _ = wecom_query()
    body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>'
    await expect(client, 400, query, body)


async def test_rejects_malformed_json(client: TestClient[Any, Any]) -> None:
    query, _ = sign_dingtalk_callback(b"{}", token=DINGTALK_TOKEN, aes_key=DINGTALK_AES_KEY, receive_id=SALES_KEY)
    await expect(client, 400, query, b'{"encrypt": ', path="/callback/dingtalk/Sales")


async def test_rejects_a_nul_the_inbox_cannot_hold_without_failing_its_group(
    client: TestClient[Any, Any], inbox: asyncpg.Connection
) -> None:
    # Query parameters outside the signature are stored as they came; PostgreSQL holds no NUL in text or
    # jsonb. A request carrying one is refused on its own, before it joins a group of other callbacks.
    query, body = wecom_query()
    await expect(client, 400, {**query, "extra": "\x00"}, body)
    await expect(client, 400, *wecom_query("<xml><Name>a\x00b</Name></xml>"))
    latin1 = sign_wecom_callback(
        "<xml><Name>café</Name></xml>".encode("latin-1"), token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, receive_id=HQ_CORP
    )
    await expect(client, 400, *latin1)  # a decrypted message that is not UTF-8
    good_query, good_body = wecom_query()
    bad = client.post("/callback/wecom/HQ", params={**query, "extra": "a\x00"}, data=body)
    good = client.post("/callback/wecom/HQ", params=good_query, data=good_body)
    statuses = [r.status for r in await asyncio.gather(bad, good)]
    assert statuses == [400, 200]
    assert await inbox.fetchval("SELECT count(*) FROM inbox") == 1


async def test_rejects_wrong_method(client: TestClient[Any, Any]) -> None:
    put = await client.put("/callback/wecom/HQ")
    assert (put.status, set(put.headers["Allow"].split(","))) == (405, {"GET", "HEAD", "POST"})
    assert (await client.get("/callback/dingtalk/Sales")).status == 405
    assert (await client.get("/callback/nowhere/x")).status == 404
    metrics = client.app[METRICS].registry
    assert (
        metrics.get_sample_value(
            "corpsync_callbacks_total", {"platform": "wecom", "route": "wecom", "outcome": "http_405"}
        )
        == 1
    )
    assert (
        metrics.get_sample_value(
            "corpsync_callbacks_total", {"platform": "dingtalk", "route": "dingtalk", "outcome": "http_405"}
        )
        == 1
    )
    assert "nowhere" not in (await (await client.get("/metrics")).text())  # no label is made from a path


async def test_rejects_body_over_the_limit(client: TestClient[Any, Any], inbox: asyncpg.Connection) -> None:
    query, _ = wecom_query()
    await expect(client, 413, query, b"<xml>" + b"a" * (65 * 1024) + b"</xml>")
    assert await inbox.fetchval("SELECT count(*) FROM inbox") == 0


@pytest.mark.parametrize("path", ["/callback/wecom/HQ", "/callback/dingtalk/Sales", "/api/corps/HQ/admins"])
async def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(
    client: TestClient[Any, Any], path: str
) -> None:
    # Only the head: a receiver that waited for the body (to count it up to the limit) would answer 408, and only
    # after CORPSYNC_CLIENT_TIMEOUT, having buffered up to the limit of a real one.
    reader, writer = await asyncio.open_connection(client.host, client.port)
    method = "PUT" if path.startswith("/api") else "POST"
    head = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {65 * 1024}",
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    async with asyncio.timeout(2):
        status = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status.split(b" ", 2)[1] == b"413"


async def test_unknown_corp_is_404(client: TestClient[Any, Any]) -> None:
    query, body = wecom_query()
    await expect(client, 404, query, body, path="/callback/wecom/Nobody")
    await expect(client, 404, query, body, path="/callback/dingtalk/HQ")
    await expect(client, 404, query, body, path="/callback/wecom-suite/Nobody")


async def test_a_corp_without_a_callback_block_has_no_callback_url(
    aiohttp_client: Callable[..., Any], settings: Settings, db_url: str, app_dir: Path
) -> None:
    write_wecom_corp(app_dir, "Pull", corp_id="wwpullonly")
    write_dingtalk_corp(app_dir, "PullDing", corp_id="dingpull", app_key="dingpullkey")
    for name in ("Pull", "PullDing"):  # the JitAI seeds' form: no callback block
        path = app_dir / "corps" / name / f"{name}.json"
        doc = json.loads(path.read_text())
        del doc["callback"]
        path.write_text(json.dumps(doc))
    config = load_app_dir(app_dir, {})
    client = await aiohttp_client(create_app(settings, config, db_url))
    query, body = sign_wecom_callback(
        CREATE_USER.encode(), token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, receive_id="wwpullonly"
    )
    await expect(client, 404, query, body, path="/callback/wecom/Pull")
    await expect(client, 404, query, body, path="/callback/dingtalk/PullDing")
    await expect(client, 200, *wecom_query(), path="/callback/wecom/HQ")  # the others keep theirs


async def test_stale_timestamp_rejected_only_when_a_window_is_set(
    aiohttp_client: Callable[..., Any], settings: Settings, config: AppConfig, db_url: str
) -> None:
    strict = await aiohttp_client(
        create_app(Settings(**{**_fields(settings), "callback_max_age": 300}), config, db_url)
    )
    query, body = wecom_query(timestamp="1403610513")
    assert (await strict.post("/callback/wecom/HQ", params=query, data=body)).status == 401
    fresh_q, fresh_b = wecom_query()
    assert (await strict.post("/callback/wecom/HQ", params=fresh_q, data=fresh_b)).status == 200


@pytest.mark.parametrize("timestamp", ["9" * 400, "-" + "9" * 400, "1e999", "١٤٠٣٦١٠٥١٣", " 1403610513"])
async def test_a_timestamp_that_is_no_number_of_seconds_is_stale_not_an_error(
    aiohttp_client: Callable[..., Any], settings: Settings, config: AppConfig, db_url: str, timestamp: str
) -> None:
    strict = await aiohttp_client(
        create_app(Settings(**{**_fields(settings), "callback_max_age": 300}), config, db_url)
    )
    query, body = wecom_query()
    unsigned = {**query, "timestamp": timestamp}
    assert (await strict.post("/callback/wecom/HQ", params=unsigned, data=body)).status == 401
    ding = {"signature": "x", "timestamp": timestamp, "nonce": "n"}
    assert (await strict.post("/callback/dingtalk/Sales", params=ding, json={"encrypt": "abc"})).status == 401


async def test_dingtalk_event_nested_deeper_than_the_decoder_goes_is_rejected(client: TestClient[Any, Any]) -> None:
    deep = b'{"EventType":"user_add_org","x":' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    query, body = sign_dingtalk_callback(deep, token=DINGTALK_TOKEN, aes_key=DINGTALK_AES_KEY, receive_id=SALES_KEY)
    assert (await client.post("/callback/dingtalk/Sales", params=query, data=body)).status == 400


async def test_dingtalk_event_with_a_timestamp_of_5000_digits_is_stored_not_an_error(
    client: TestClient[Any, Any], inbox: asyncpg.Connection
) -> None:
    plaintext = b'{"EventType":"user_add_org","UserId":["u1"],"TimeStamp":"' + b"9" * 5000 + b'"}'
    query, body = sign_dingtalk_callback(
        plaintext, token=DINGTALK_TOKEN, aes_key=DINGTALK_AES_KEY, receive_id=SALES_KEY
    )
    assert (await client.post("/callback/dingtalk/Sales", params=query, data=body)).status == 200
    assert await inbox.fetchval("SELECT count(*) FROM inbox WHERE stream = 'Sales'") == 1


def _fields(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__slots__}


# ---- the store --------------------------------------------------------------------------------------


async def test_database_down_answers_503_and_nothing_is_acknowledged(
    client: TestClient[Any, Any], inbox: asyncpg.Connection
) -> None:
    await inbox.execute("ALTER TABLE inbox RENAME TO inbox_away")
    query, body = wecom_query()
    await expect(client, 503, query, body)
    await inbox.execute("ALTER TABLE inbox_away RENAME TO inbox")
    await expect(client, 200, query, body)
    assert await inbox.fetchval("SELECT count(*) FROM inbox") == 1


async def test_suite_data_answers_503_when_its_tenant_lookup_cannot_reach_the_store(
    client: TestClient[Any, Any], inbox: asyncpg.Connection
) -> None:
    query, body = sign_wecom_callback(
        CREATE_USER.encode(), token=SUITE_TOKEN, aes_key=SUITE_AES_KEY, receive_id="wwnew0000000000001"
    )
    await inbox.execute("ALTER TABLE suite_tenants RENAME TO suite_tenants_away")
    assert (await client.post("/callback/wecom-suite/Suite/data", params=query, data=body)).status == 503
    await inbox.execute("ALTER TABLE suite_tenants_away RENAME TO suite_tenants")
    assert (await client.post("/callback/wecom-suite/Suite/data", params=query, data=body)).status == 403


async def test_suite_data_answers_a_tenant_it_has_read_without_asking_the_store(
    client: TestClient[Any, Any], inbox: asyncpg.Connection
) -> None:
    await inbox.execute(
        "INSERT INTO suite_tenants (auth_name, corp_id, permanent_code) VALUES ('Suite', 'wwnew0000000000001', 'p')"
    )
    query, body = sign_wecom_callback(
        CREATE_USER.encode(), token=SUITE_TOKEN, aes_key=SUITE_AES_KEY, receive_id="wwnew0000000000001"
    )
    assert (await client.post("/callback/wecom-suite/Suite/data", params=query, data=body)).status == 200
    tenants = client.app[RUNTIME].tenants
    for _ in range(200):  # the first answer started a read of every tenant
        if tenants._reading is None:
            break
        await asyncio.sleep(0.01)
    await inbox.execute("ALTER TABLE suite_tenants RENAME TO suite_tenants_away")
    try:
        assert (await client.post("/callback/wecom-suite/Suite/data", params=query, data=body)).status == 200
    finally:
        await inbox.execute("ALTER TABLE suite_tenants_away RENAME TO suite_tenants")


async def test_metrics_count_callbacks_by_outcome(client: TestClient[Any, Any]) -> None:
    query, body = wecom_query()
    await client.post("/callback/wecom/HQ", params=query, data=body)
    await client.post("/callback/wecom/HQ", params=query, data=body)
    await client.post("/callback/wecom/HQ", params={**query, "msg_signature": "0" * 40}, data=body)
    text = await (await client.get("/metrics")).text()
    assert 'corpsync_callbacks_total{outcome="accepted",platform="wecom",route="wecom"} 1.0' in text
    assert 'corpsync_callbacks_total{outcome="duplicate",platform="wecom",route="wecom"} 1.0' in text
    assert 'outcome="rejected_signatureerror"' in text
    metrics = client.app[METRICS]
    assert (
        metrics.registry.get_sample_value(
            "corpsync_callback_answer_seconds_count", {"platform": "wecom", "route": "wecom"}
        )
        == 3
    )


async def test_healthz_answers(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json())["status"] == "ok"
