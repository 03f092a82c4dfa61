"""WeCom adapter: envelopes of the published vectors, hostile XML, fields, event types, query."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from receiver import errors, wecom
from receiver.crypto import CallbackCipher, Opened
from receiver.wecom import (
    WecomEnvelope,
    event_type,
    parse_envelope,
    parse_xml_fields,
    signed_query,
    url_verification_reply,
)

SHARED = Path(os.environ.get("CORPSYNC_SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared")
VECTORS = SHARED / "protocol" / "vectors"
EVENTS = SHARED / "protocol" / "events" / "wecom"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
MISSING = pytest.mark.skipif(not IN_CI, reason=f"no protocol data under {SHARED}; set CORPSYNC_SHARED_DIR")


def _missing(what: str) -> list[Any]:
    return [pytest.param(None, id=f"{what}-missing", marks=MISSING)]


def _wecom_vectors() -> list[Any]:
    vectors = [
        item
        for path in sorted(VECTORS.glob("*.json"))
        for item in json.loads(path.read_text(encoding="utf-8"))
        if "encoding_aes_key" in item
    ]
    if not vectors:
        return _missing("vectors")
    return [pytest.param(item, id=item["id"]) for item in vectors]


def _event_files() -> list[Any]:
    files = sorted(EVENTS.glob("*.xml"))
    return [pytest.param(path, id=path.name) for path in files] if files else _missing("events")


def _expected_event_type(name: str) -> str:
    """selfbuilt.<type>[.note].xml, suite.<info_type>.xml, suite.change_contact.<type>.xml."""
    parts = name.split(".")
    return parts[2] if parts[1] == "change_contact" else parts[1]


@pytest.mark.parametrize("vector", _wecom_vectors())
def test_vector_envelope_parses_and_opens(vector: dict[str, Any] | None) -> None:
    if vector is None:
        pytest.fail(f"protocol vectors are missing from {VECTORS}")
    cipher = CallbackCipher(vector["token"], vector["encoding_aes_key"])
    encrypted = vector["echostr_or_encrypt"]
    if "post_body" in vector:
        envelope = parse_envelope(vector["post_body"].encode())
        assert envelope.encrypt == encrypted
        query = {"msg_signature": vector["msg_signature"], "timestamp": vector["timestamp"], "nonce": vector["nonce"]}
        signature, timestamp, nonce = signed_query(query, echostr=False)
        opened = cipher.open(signature, timestamp, nonce, envelope.encrypt, {vector["receive_id"]})
    else:
        query = {
            "msg_signature": vector["msg_signature"],
            "timestamp": vector["timestamp"],
            "nonce": vector["nonce"],
            "echostr": encrypted,
        }
        signature, timestamp, nonce, echo = signed_query(query, echostr=True)
        opened = cipher.open(signature, timestamp, nonce, echo, {vector["receive_id"]})
        assert url_verification_reply(opened) == vector["expected_plaintext"].encode()
    assert opened.message.decode() == vector["expected_plaintext"]


@pytest.mark.parametrize("path", _event_files())
def test_event_file_gives_its_event_type(path: Path | None) -> None:
    if path is None:
        pytest.fail(f"WeCom event samples are missing from {EVENTS}")
    assert event_type(parse_xml_fields(path.read_bytes())) == _expected_event_type(path.name)


# --- envelope ------------------------------------------------------------------------------------


def test_parses_xml_envelope_with_cdata_and_whitespace() -> None:
    body = b"\n  <xml>\n<ToUserName><![CDATA[ww1]]></ToUserName>\n<Encrypt><![CDATA[abc=]]></Encrypt>\n</xml>"
    assert parse_envelope(body) == WecomEnvelope("abc=", "ww1", None)


def test_parses_xml_envelope_of_suite_with_empty_agent_id() -> None:
    body = b"<xml><ToUserName>suite1</ToUserName><Encrypt>abc=</Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
    assert parse_envelope(body) == WecomEnvelope("abc=", "suite1", None)


def test_parses_json_envelope_with_numeric_agent_id() -> None:
    body = b' { "tousername": "wx58", "encrypt": "abc=", "agentid": 218 }'
    assert parse_envelope(body) == WecomEnvelope("abc=", "wx58", "218")


def test_parses_json_envelope_with_only_encrypt() -> None:
    assert parse_envelope(b'{"encrypt": "abc="}') == WecomEnvelope("abc=", None, None)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"encrypt=abc",
        b"<xml><Encrypt>abc</Encrypt>",
        b"<xml><ToUserName>ww1</ToUserName></xml>",
        b"<xml><Encrypt>  </Encrypt></xml>",
        b'{"encrypt": "abc"',
        b'{"tousername": "ww1"}',
        b'{"encrypt": 5}',
        b'{"encrypt": "abc", "agentid": true}',
        b'{"encrypt": "abc", "agentid": {"id": 1}}',
        b'["encrypt"]',
        b"<xml><Encrypt>\xff\xfe</Encrypt></xml>",
    ],
)
def test_rejects_malformed_envelope(body: bytes) -> None:
    with pytest.raises(errors.EnvelopeError) as caught:
        parse_envelope(body)
    assert (caught.value.wecom_code, caught.value.dingtalk_code) == (-40002, 900007)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<xml><Encrypt>&lol2;</Encrypt></xml>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><Encrypt>&xxe;</Encrypt></xml>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, b"<!doctype xml><xml><Encrypt>a</Encrypt></xml>"])
def test_refuses_doctype_and_entities_in_envelope(body: bytes) -> None:
    with pytest.raises(errors.EnvelopeError, match="DTD"):
        parse_envelope(body)


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE])
def test_refuses_doctype_and_entities_in_decrypted_message(body: bytes) -> None:
    with pytest.raises(errors.EnvelopeError, match="DTD"):
        parse_xml_fields(body)


def test_refuses_utf16_xml_that_would_hide_a_doctype() -> None:
    body = "<!DOCTYPE x [<!ENTITY a 'b'>]><xml><Encrypt>&a;</Encrypt></xml>".encode("utf-16-le")
    with pytest.raises(errors.EnvelopeError):
        parse_envelope(body)


def test_parser_refuses_doctype_even_when_the_text_check_misses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wecom, "_DTD", re.compile("(?!)"))
    with pytest.raises(errors.EnvelopeError, match="DTD"):
        parse_xml_fields(BILLION_LAUGHS)


def test_rejects_undeclared_entity() -> None:
    with pytest.raises(errors.EnvelopeError):
        parse_envelope(b"<xml><Encrypt>&xxe;</Encrypt></xml>")


# --- fields --------------------------------------------------------------------------------------


CREATE_USER = """<xml>
    <ToUserName><![CDATA[ww1]]></ToUserName>
    <MsgType><![CDATA[event]]></MsgType>
    <Event><![CDATA[change_contact]]></Event>
    <ChangeType>create_user</ChangeType>
    <UserID><![CDATA[zhangsan]]></UserID>
    <Name><![CDATA[ 张三 ]]></Name>
    <Department><![CDATA[1,2,3]]></Department>
    <Alias></Alias>
    <ExtAttr>
        <Item><Name><![CDATA[爱好]]></Name><Type>0</Type><Text><Value><![CDATA[旅游]]></Value></Text></Item>
        <Item><Name>卡号</Name><Type>1</Type><Web><Title>企业微信</Title><Url>https://work.weixin.qq.com</Url></Web></Item>
    </ExtAttr>
</xml>""".encode()


def test_fields_map_leaf_tags_to_stripped_text() -> None:
    fields = parse_xml_fields(CREATE_USER)
    assert fields.tag == "xml"
    assert fields["UserID"] == "zhangsan"
    assert fields["Name"] == "张三"
    assert fields.get("ChangeType") == "create_user"
    assert fields.get("Alias") == ""
    assert fields.get("Mobile") is None
    assert "ExtAttr" not in fields
    assert list(fields)[:3] == ["ToUserName", "MsgType", "Event"]
    assert len(fields) == 8


def test_fields_reach_nested_items() -> None:
    items = parse_xml_fields(CREATE_USER).items_of("ExtAttr", "Item")
    assert [item["Name"] for item in items] == ["爱好", "卡号"]
    text = items[0].child("Text")
    web = items[1].child("Web")
    assert text is not None
    assert web is not None
    assert text["Value"] == "旅游"
    assert dict(web) == {"Title": "企业微信", "Url": "https://work.weixin.qq.com"}
    assert items[0].child("Web") is None


def test_fields_of_missing_container_are_empty() -> None:
    fields = parse_xml_fields(CREATE_USER)
    assert fields.child("BatchJob") is None
    assert fields.items_of("BatchJob", "Item") == ()


def test_fields_read_batch_job_result() -> None:
    fields = parse_xml_fields(
        b"<xml><MsgType>event</MsgType><Event>batch_job_result</Event>"
        b"<BatchJob><JobId><![CDATA[S0Mr]]></JobId><JobType>sync_user</JobType><ErrCode>0</ErrCode></BatchJob></xml>"
    )
    job = fields.child("BatchJob")
    assert job is not None
    assert dict(job) == {"JobId": "S0Mr", "JobType": "sync_user", "ErrCode": "0"}
    assert event_type(fields) == "batch_job_result"


def test_fields_are_read_only_and_do_not_leak_values_in_repr() -> None:
    fields = parse_xml_fields(CREATE_USER)
    with pytest.raises(TypeError):
        fields["UserID"] = "lisi"  # type: ignore[index]
    with pytest.raises(AttributeError):
        fields.tag = "other"  # type: ignore[misc]
    assert "zhangsan" not in repr(fields)


def test_strips_leading_space_before_cdata() -> None:
    fields = parse_xml_fields(b"<xml><InfoType> <![CDATA[suite_ticket]]></InfoType><SuiteTicket>t</SuiteTicket></xml>")
    assert event_type(fields) == "suite_ticket"


def test_rejects_nesting_deeper_than_any_wecom_message() -> None:
    with pytest.raises(errors.EnvelopeError):
        parse_xml_fields(b"<xml>" + b"<a>" * 40 + b"x" + b"</a>" * 40 + b"</xml>")


def test_rejects_malformed_decrypted_xml() -> None:
    with pytest.raises(errors.EnvelopeError):
        parse_xml_fields(b"<xml><UserID>zhangsan</xml>")


# --- event type ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"MsgType": "event", "Event": "change_contact", "ChangeType": "update_party"}, "update_party"),
        ({"MsgType": "event", "Event": "batch_job_result"}, "batch_job_result"),
        ({"MsgType": "event", "Event": "change_external_contact", "ChangeType": "add"}, "change_external_contact"),
        ({"InfoType": "change_contact", "ChangeType": "delete_user"}, "delete_user"),
        ({"InfoType": "create_auth", "AuthCode": "x"}, "create_auth"),
        ({"InfoType": "reset_permanent_code"}, "reset_permanent_code"),
        ({"MsgType": "event", "Event": "change_contact"}, None),
        ({"MsgType": "text", "Content": "hello"}, None),
        ({}, None),
    ],
)
def test_event_type_names_what_handlers_are_keyed_on(fields: dict[str, str], expected: str | None) -> None:
    assert event_type(fields) == expected


# --- query and reply -----------------------------------------------------------------------------


def test_signed_query_returns_the_signed_values() -> None:
    query = {"msg_signature": "s", "timestamp": "1", "nonce": "n", "echostr": "e+/="}
    assert signed_query(query, echostr=True) == ("s", "1", "n", "e+/=")
    assert signed_query(query, echostr=False) == ("s", "1", "n")


@pytest.mark.parametrize(
    "query", [{"timestamp": "1", "nonce": "n"}, {"msg_signature": "", "timestamp": "1", "nonce": "n"}]
)
def test_signed_query_without_signature_is_a_signature_error(query: dict[str, str]) -> None:
    with pytest.raises(errors.SignatureError):
        signed_query(query, echostr=False)


@pytest.mark.parametrize("missing", ["timestamp", "nonce"])
def test_signed_query_without_timestamp_or_nonce_is_an_envelope_error(missing: str) -> None:
    query = {"msg_signature": "s", "timestamp": "1", "nonce": "n"}
    del query[missing]
    with pytest.raises(errors.EnvelopeError):
        signed_query(query, echostr=False)


def test_signed_query_requires_echostr_for_url_verification() -> None:
    with pytest.raises(errors.EnvelopeError):
        signed_query({"msg_signature": "s", "timestamp": "1", "nonce": "n"}, echostr=True)


def test_url_verification_reply_is_the_bare_plaintext() -> None:
    assert url_verification_reply(Opened(b"1616140317555161061", "wx5823bf96d3bd56c7")) == b"1616140317555161061"
