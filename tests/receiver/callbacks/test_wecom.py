"""WeCom adapter: published vectors, hostile XML, query, reply (messages: handlers/events/test_parse_wecom)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.errors import MalformedMessage
from handlers.events import xmlsafe
from receiver import errors
from receiver.callbacks import wecom
from receiver.callbacks.crypto import CallbackCipher, Opened
from receiver.callbacks.wecom import WecomEnvelope, parse_envelope, signed_query, url_verification_reply
from tests.support.paths import VECTORS


def _wecom_vectors() -> list[Any]:
    vectors = [
        item
        for path in sorted(VECTORS.glob("*.json"))
        for item in json.loads(path.read_text(encoding="utf-8"))
        if "encoding_aes_key" in item
    ]
    return [pytest.param(item, id=item["id"]) for item in vectors]


@pytest.mark.parametrize("vector", _wecom_vectors())
def test_vector_envelope_parses_and_opens(vector: dict[str, Any]) -> None:
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


# --- envelope ------------------------------------------------------------------------------------


def test_parses_xml_envelope_with_cdata_and_whitespace() -> None:
    body = b"\n  <xml>\n<ToUserName><![CDATA[ww1]]></ToUserName>\n<Encrypt><![CDATA[abc=]]></Encrypt>\n</xml>"
    assert parse_envelope(body) == WecomEnvelope("abc=", "ww1", None)


def test_parses_xml_envelope_of_suite_with_empty_agent_id() -> None:
    body = b"<xml><ToUserName>suite1</ToUserName><Encrypt>abc=</Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
    assert parse_envelope(body) == WecomEnvelope("abc=", "suite1", None)


def test_parses_xml_envelope_after_a_utf8_byte_order_mark() -> None:
    body = b"\xef\xbb\xbf<xml><ToUserName>ww1</ToUserName><Encrypt>abc=</Encrypt></xml>"
    assert parse_envelope(body) == WecomEnvelope("abc=", "ww1", None)


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
        b"<xml><Encrypt><![CDATA[ab\x01cd]]></Encrypt></xml>",  # not a character XML allows
        b"<xml><Encrypt><![CDATA[ab\xffcd]]></Encrypt></xml>",  # not UTF-8
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


def test_refuses_utf16_xml_that_would_hide_a_doctype() -> None:
    body = "<!DOCTYPE x [<!ENTITY a 'b'>]><xml><Encrypt>&a;</Encrypt></xml>".encode("utf-16-le")
    with pytest.raises(errors.EnvelopeError):
        parse_envelope(body)


def test_parser_refuses_doctype_even_when_the_text_check_misses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xmlsafe, "DTD_DECLARATION", re.compile("(?!)"))
    with pytest.raises(errors.EnvelopeError, match="DTD"):
        parse_envelope(BILLION_LAUGHS)


def test_rejects_undeclared_entity() -> None:
    with pytest.raises(errors.EnvelopeError):
        parse_envelope(b"<xml><Encrypt>&xxe;</Encrypt></xml>")


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


# -- the fast path for WeCom's own envelope shape must read exactly what the parser reads ------------------

_TAGS = ("ToUserName", "Encrypt", "AgentID", "MsgType")
_SPACE = st.sampled_from(["", " ", "\n", "\r\n  ", "\t", "\f", "\v"])
_VALUES = st.one_of(
    st.text(alphabet="ABCxyz019+/=_.@-", max_size=12),
    st.text(max_size=6),  # anything: markup, entities, spaces, "]]>", control and non-ASCII characters
)


@st.composite
def _envelopes(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):  # WeCom's order, which the fast path takes when the values allow
        tags = [tag for tag in _TAGS[:3] if tag == "Encrypt" or draw(st.booleans())]
    else:
        tags = draw(st.lists(st.sampled_from(_TAGS), max_size=5))
    children = []
    for tag in tags:
        value = draw(_VALUES)
        body = f"<![CDATA[{value}]]>" if draw(st.booleans()) else value
        close = tag if draw(st.integers(0, 20)) else draw(st.sampled_from(_TAGS))
        children.append(f"<{tag}>{body}</{close}>{draw(_SPACE)}")
    text = f"{draw(_SPACE)}<xml>{draw(_SPACE)}{''.join(children)}</xml>{draw(_SPACE)}"
    return text.encode("utf-8", "surrogatepass")


def _through_parser(body: bytes) -> WecomEnvelope | str:
    """The envelope as the XML parser reads it: each element's stripped text, None when absent or empty."""
    try:
        root = xmlsafe.parse_untrusted(body)
    except MalformedMessage:
        return "rejected"
    encrypt, to_user, agent = (_parsed_text(root, tag) for tag in ("Encrypt", "ToUserName", "AgentID"))
    return "rejected" if encrypt is None else WecomEnvelope(encrypt, to_user, agent)


def _parsed_text(root: ET.Element, tag: str) -> str | None:
    node = root.find(tag)
    return ((node.text or "").strip() if node is not None else "") or None


def _through_parse_envelope(body: bytes) -> WecomEnvelope | str:
    try:
        return parse_envelope(body)
    except errors.EnvelopeError:
        return "rejected"


@settings(max_examples=600, deadline=None)
@given(_envelopes())
def test_envelope_fast_path_reads_what_the_xml_parser_reads(body: bytes) -> None:
    assert _through_parse_envelope(body) == _through_parser(body)


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><ToUserName><![CDATA[ww1]]></ToUserName><Encrypt><![CDATA[abc=]]></Encrypt>"
        b"<AgentID><![CDATA[]]></AgentID></xml>",
        b"<xml>\n  <ToUserName>ww1</ToUserName>\n  <Encrypt><![CDATA[a+b/c==]]></Encrypt>\n</xml>\n",
        b"<xml><Encrypt>abc=</Encrypt><AgentID>218</AgentID></xml>",
    ],
)
def test_wecom_shaped_envelopes_take_the_fast_path(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _through_parser(body)

    def no_parser(data: bytes | str) -> Any:
        raise AssertionError("the XML parser was used for a WeCom-shaped envelope")

    monkeypatch.setattr(wecom, "parse_untrusted", no_parser)
    assert parse_envelope(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0" encoding="UTF-8"?><xml><Encrypt>abc</Encrypt></xml>',
        b"<xml><Encrypt>a&amp;b</Encrypt></xml>",
        b"<xml><Encrypt> abc </Encrypt></xml>",
        b"<xml><Extra/><Encrypt>abc</Encrypt></xml>",
        b"\xef\xbb\xbf<xml><Encrypt>abc</Encrypt></xml>",
        b"<xml><AgentID>218</AgentID><Encrypt>abc</Encrypt></xml>",
        b"<xml><Encrypt>first</Encrypt><Encrypt>second</Encrypt></xml>",
        b"<xml><Encrypt><![CDATA[a<b&c]]></Encrypt></xml>",  # Encrypt's CDATA is scanned to "]", then checked
        b"<xml><Encrypt><![CDATA[abc \xc3\xa9]]></Encrypt></xml>",
    ],
)
def test_other_envelopes_go_to_the_xml_parser(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes | str] = []
    real = xmlsafe.parse_untrusted  # what wecom calls

    def spy(data: bytes | str) -> Any:
        seen.append(data)
        return real(data)

    monkeypatch.setattr(wecom, "parse_untrusted", spy)
    assert parse_envelope(body) == _through_parser(body)
    assert seen == [body]
