"""WeCom plaintext parsing: every published sample, hostile XML refused, fields, event types, the flat fast path."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from handlers import errors
from handlers.events import xmlsafe
from handlers.events.parse import parse_xml, wecom_event_type
from receiver.errors import rejection
from tests.support.paths import PROTOCOL_EVENTS

EVENTS = PROTOCOL_EVENTS / "wecom"


def _event_files() -> list[Any]:
    return [pytest.param(path, id=path.name) for path in sorted(EVENTS.glob("*.xml"))]


def _expected_event_type(name: str) -> str:
    """selfbuilt.<type>[.note].xml, suite.<info_type>.xml, suite.change_contact.<type>.xml."""
    parts = name.split(".")
    return parts[2] if parts[1] == "change_contact" else parts[1]


def _xml(fields: dict[str, str]) -> bytes:
    return ("<xml>" + "".join(f"<{tag}><![CDATA[{text}]]></{tag}>" for tag, text in fields.items()) + "</xml>").encode()


def _refuses(plaintext: bytes, match: str | None = None) -> None:
    with pytest.raises(errors.MalformedMessage, match=match) as caught:
        parse_xml(plaintext)
    assert (rejection(caught.value).wecom_code, rejection(caught.value).dingtalk_code) == (-40002, 900007)


@pytest.mark.parametrize("path", _event_files())
def test_event_file_gives_its_event_type(path: Path) -> None:
    plaintext = path.read_bytes()
    expected = _expected_event_type(path.name)
    assert wecom_event_type(parse_xml(plaintext)) == expected
    assert wecom_event_type(parse_xml(plaintext.decode())) == expected


# --- hostile XML ---------------------------------------------------------------------------------


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<xml><ChangeType>&lol2;</ChangeType></xml>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ChangeType>&xxe;</ChangeType></xml>"""
ENTITY_ATTACK = '<!DOCTYPE x [<!ENTITY a "expanded">]><xml><ChangeType>&a;</ChangeType></xml>'


@pytest.mark.parametrize(
    "plaintext",
    [BILLION_LAUGHS, XXE, b"<!doctype xml><xml><Event>a</Event></xml>", b"<! ENTITY a 'b'><xml/>"],
    ids=["billion-laughs", "xxe", "bare-doctype", "entity"],
)
def test_refuses_doctype_and_entities(plaintext: bytes) -> None:
    _refuses(plaintext, match="DTD")


def test_refuses_utf16_without_bom_that_expat_would_expand() -> None:
    attack = ENTITY_ATTACK.encode("utf-16-le")
    expanded = ET.fromstring(attack).find("ChangeType")  # noqa: S314 - shows the attack works on a bare parser
    assert expanded is not None and expanded.text == "expanded"
    _refuses(attack, match="NUL")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32"])
def test_refuses_every_wide_encoding(codec: str) -> None:
    _refuses(ENTITY_ATTACK.encode(codec))
    _refuses("<xml><Event>change_contact</Event></xml>".encode(codec))


def test_refuses_nul() -> None:
    _refuses(b"<xml><Event>a\x00</Event></xml>", match="NUL")
    with pytest.raises(errors.MalformedMessage, match="NUL"):
        parse_xml("<xml><Event>a\x00</Event></xml>")


@pytest.mark.parametrize("plaintext", [b"<xml><Event>\xff\xfe</Event></xml>", "<xml>é</xml>".encode("latin-1")])
def test_refuses_bytes_that_are_not_utf8(plaintext: bytes) -> None:
    _refuses(plaintext, match="UTF-8")


def test_parser_refuses_doctype_even_when_the_text_check_misses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xmlsafe, "DTD_DECLARATION", re.compile("(?!)"))
    _refuses(BILLION_LAUGHS, match="DTD")
    _refuses(XXE, match="DTD")


def test_reads_utf8_whatever_the_declaration_says() -> None:
    plaintext = '<?xml version="1.0" encoding="ISO-8859-1"?><xml><Name>张三</Name></xml>'.encode()
    assert parse_xml(plaintext).get("Name") == "张三"


def test_rejects_undeclared_entity() -> None:
    _refuses(b"<xml><ChangeType>&xxe;</ChangeType></xml>", match="malformed")


@pytest.mark.parametrize("plaintext", [b"<xml><UserID>zhangsan</xml>", b"", b"not xml", b"<xml/><xml/>"])
def test_rejects_malformed_xml(plaintext: bytes) -> None:
    _refuses(plaintext, match="malformed")


def _nested(depth: int) -> bytes:
    """``<xml>`` holding a chain of ``depth`` elements, the last a leaf."""
    return b"<xml>" + b"<a>" * depth + b"x" + b"</a>" * depth + b"</xml>"


def test_rejects_nesting_deeper_than_any_wecom_message() -> None:
    _refuses(_nested(40), match="deeply")
    _refuses(_nested(xmlsafe.MAX_DEPTH + 1), match="deeply")


def test_accepts_nesting_up_to_the_limit() -> None:
    fields = parse_xml(_nested(xmlsafe.MAX_DEPTH))
    for _ in range(xmlsafe.MAX_DEPTH - 1):
        found = fields.child("a")
        assert found is not None
        fields = found
    assert fields.get("a") == "x"


def test_deep_nesting_does_not_hit_the_recursion_limit() -> None:
    _refuses(_nested(5000), match="deeply")


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


def test_fields_give_the_stripped_text_of_each_child() -> None:
    fields = parse_xml(CREATE_USER)
    assert fields.tag == "xml"
    assert fields.get("UserID") == "zhangsan"
    assert fields.get("Name") == "张三"
    assert fields.get("ChangeType") == "create_user"
    assert [child.tag for child in fields.children][:3] == ["ToUserName", "MsgType", "Event"]
    assert len(fields.children) == 9


def test_an_empty_child_is_none_and_still_present() -> None:
    fields = parse_xml(CREATE_USER)
    assert fields.get("Alias") is None
    assert fields.has("Alias")
    assert fields.get("Mobile") is None
    assert not fields.has("Mobile")
    assert "Alias" in fields.names() and "Mobile" not in fields.names()


def test_fields_reach_nested_items() -> None:
    items = parse_xml(CREATE_USER).items_of("ExtAttr", "Item")
    assert [item.get("Name") for item in items] == ["爱好", "卡号"]
    text = items[0].child("Text")
    web = items[1].child("Web")
    assert text is not None and web is not None
    assert text.get("Value") == "旅游"
    assert {child.tag: child.text for child in web.children} == {
        "Title": "企业微信",
        "Url": "https://work.weixin.qq.com",
    }
    assert items[0].child("Web") is None


def test_a_repeated_tag_reads_as_its_first_element() -> None:
    fields = parse_xml(b"<xml><Name>first</Name><Id>1</Id><Name>second</Name><Name>third</Name></xml>")
    assert fields.get("Name") == "first"
    child = fields.child("Name")
    assert child is not None and child is fields.children[0]
    assert [c.text for c in fields.children] == ["first", "1", "second", "third"]


def test_fields_of_missing_container_are_empty() -> None:
    fields = parse_xml(CREATE_USER)
    assert fields.child("BatchJob") is None
    assert fields.items_of("BatchJob", "Item") == ()


def test_fields_read_batch_job_result() -> None:
    plaintext = (
        b"<xml><MsgType>event</MsgType><Event>batch_job_result</Event>"
        b"<BatchJob><JobId><![CDATA[S0Mr]]></JobId><JobType>sync_user</JobType><ErrCode>0</ErrCode></BatchJob></xml>"
    )
    fields = parse_xml(plaintext)
    job = fields.child("BatchJob")
    assert job is not None
    assert {child.tag: child.text for child in job.children} == {
        "JobId": "S0Mr",
        "JobType": "sync_user",
        "ErrCode": "0",
    }
    assert wecom_event_type(fields) == "batch_job_result"


def test_fields_are_read_only_and_do_not_leak_values_in_repr() -> None:
    fields = parse_xml(CREATE_USER)
    with pytest.raises(AttributeError):
        fields.tag = "other"  # type: ignore[misc]
    assert "zhangsan" not in repr(fields)
    assert "UserID" in repr(fields)


def test_strips_leading_space_before_cdata() -> None:
    plaintext = b"<xml><InfoType> <![CDATA[suite_ticket]]></InfoType><SuiteTicket>t</SuiteTicket></xml>"
    assert wecom_event_type(parse_xml(plaintext)) == "suite_ticket"


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
        ({"InfoType": "", "Event": "batch_job_result"}, "batch_job_result"),
        ({"MsgType": "event", "Event": "change_contact"}, None),
        ({"MsgType": "event", "Event": "change_contact", "ChangeType": " "}, None),
        ({"MsgType": "text", "Content": "hello"}, None),
        ({}, None),
    ],
)
def test_event_type_names_what_handlers_are_keyed_on(fields: dict[str, str], expected: str | None) -> None:
    assert wecom_event_type(parse_xml(_xml(fields))) == expected
