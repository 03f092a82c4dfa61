"""DingTalk plaintext parsing: every published event shape, the intake's dedupe key, malformed events."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pytest

from handlers import errors
from handlers.events.parse import DingTalkEvent, dedupe_key, parse_dingtalk
from receiver.errors import rejection
from tests.support.paths import PROTOCOL_EVENTS

EVENTS = PROTOCOL_EVENTS / "dingtalk"
WECOM_EVENTS = PROTOCOL_EVENTS / "wecom"


class Ids(NamedTuple):
    users: tuple[str, ...] = ()
    depts: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    action: str | None = None


LEGACY_USER = "011505184066774889"
LEGACY = {
    "check_url": Ids(),
    "user_add_org": Ids(users=("184919295227658120",)),
    "user_modify_org": Ids(users=("manager164",)),
    "user_leave_org": Ids(users=("16399780922588973",)),
    "user_active_org": Ids(users=("0119296xxx",)),
    "org_admin_add": Ids(users=(LEGACY_USER,)),
    "org_admin_remove": Ids(users=(LEGACY_USER,)),
    "org_dept_create": Ids(depts=("581208264",)),
    "org_dept_modify": Ids(depts=("581208264",)),
    "org_dept_remove": Ids(depts=("581208264",)),
    "org_change": Ids(),
    "org_remove": Ids(),
    "label_user_change": Ids(users=(LEGACY_USER,), labels=("1299380990",), action="add"),
    "label_conf_add": Ids(labels=("2393600321",)),
    "label_conf_del": Ids(labels=("2393849326",)),
    "label_conf_modify": Ids(labels=("2393865715",)),
}
CURRENT_USER = "015xxxx227"
CURRENT = {  # http_v2/ and stream/ carry the same doc samples
    "user_add_org": Ids(users=(CURRENT_USER,)),
    "user_modify_org": Ids(users=("user123456",)),
    "user_leave_org": Ids(users=(CURRENT_USER,)),
    "user_active_org": Ids(users=(CURRENT_USER,)),
    "org_admin_add": Ids(users=(CURRENT_USER,)),
    "org_admin_remove": Ids(users=(CURRENT_USER,)),
    "org_dept_create": Ids(depts=("432825033",)),
    "org_dept_modify": Ids(depts=("432825033",)),
    "org_dept_remove": Ids(depts=("432825033",)),
    "org_change": Ids(),
    "org_remove": Ids(),
    "label_user_change": Ids(users=("84597xxx464",), labels=("1881",), action="add"),
    "label_conf_add": Ids(labels=("1688607309",)),
    "label_conf_del": Ids(labels=("1688607309",)),
    "label_conf_modify": Ids(labels=("1234",)),
}
EXPECTED: dict[str, Ids] = {
    **{f"{name}.json": ids for name, ids in LEGACY.items()},
    **{f"{folder}/{name}.json": ids for folder in ("http_v2", "stream") for name, ids in CURRENT.items()},
    "stream_variants/user_modify_org.diffinfo_list.json": Ids(users=("014728xxx8602",)),
    "stream_wire/user_add_org.frame.json": Ids(users=(CURRENT_USER,)),
}
NOT_EVENTS = {"stream_wire/user_add_org.ack.json"}  # the client's answer to a frame


def _event_files() -> list[Any]:
    names = [path.relative_to(EVENTS).as_posix() for path in sorted(EVENTS.rglob("*.json"))]
    return [pytest.param(name, id=name) for name in names if name not in NOT_EVENTS]


def _sha(plaintext: bytes) -> str:
    return hashlib.sha256(plaintext).hexdigest()


def _event_id_as_the_intake_read_it(doc: dict[str, Any]) -> str | None:
    """The rule the callback route has always keyed on: the first of top level, ``data`` (object or JSON
    string) and ``headers`` that has an eventId (any case) decides; only a non-empty string counts."""
    data = doc.get("data")
    for layer in (doc, orjson.loads(data) if isinstance(data, str) else data, doc.get("headers")):
        if not isinstance(layer, dict):
            continue
        found = [value for key, value in layer.items() if key.lower() == "eventid"]
        if found:
            return found[0] if isinstance(found[0], str) and found[0] else None
    return None


@pytest.mark.parametrize("name", _event_files())
def test_event_file_parses_to_its_ids(name: str) -> None:
    expected = EXPECTED.get(name)
    assert expected is not None, f"{name} is new: add its expected ids to EXPECTED"
    event = parse_dingtalk((EVENTS / name).read_bytes())
    assert event.event_type == Path(name).name.split(".")[0]
    assert Ids(event.user_ids, event.dept_ids, event.label_ids, event.action) == expected
    if event.event_type != "check_url":
        assert event.corp_id is not None
    if name.startswith(("http_v2/", "stream")):
        assert event.event_id is not None
        assert event.time_ms is not None


@pytest.mark.parametrize("name", _event_files())
def test_event_file_dedupes_on_its_event_id_else_its_hash(name: str) -> None:
    plaintext = (EVENTS / name).read_bytes()
    event_id = _event_id_as_the_intake_read_it(orjson.loads(plaintext))
    assert dedupe_key("dingtalk", plaintext) == (f"event:{event_id}" if event_id else _sha(plaintext))
    if name.startswith(("http_v2/", "stream")):
        assert event_id is not None


def test_every_expected_event_file_exists() -> None:
    assert sorted(name for name in EXPECTED if not (EVENTS / name).is_file()) == []


def test_wire_ack_is_not_an_event() -> None:
    with pytest.raises(errors.MalformedMessage, match="EventType"):
        parse_dingtalk(b'{"code": 200, "headers": {"messageId": "m"}, "message": "OK", "data": "{}"}')


# --- shapes --------------------------------------------------------------------------------------


def _event(event_type: str, **fields: Any) -> DingTalkEvent:
    base: dict[str, Any] = {
        "event_id": None,
        "corp_id": None,
        "user_ids": (),
        "dept_ids": (),
        "label_ids": (),
        "action": None,
        "time_ms": None,
    }
    return DingTalkEvent(event_type, **{**base, **fields})


def test_reads_legacy_shape() -> None:
    event = parse_dingtalk(
        b'{"CorpId":"dingc7","EventType":"user_add_org","UserId":["1849"],"OptStaffId":"m","TimeStamp":"1640921671286"}'
    )
    assert event == _event("user_add_org", corp_id="dingc7", user_ids=("1849",), time_ms=1640921671286)


def test_reads_current_http_shape() -> None:
    payload = {
        "EventType": "user_modify_org",
        "EventTime": 1663143335567,
        "CorpId": "ding9f",
        "BizId": "1663",
        "eventId": "c7c7",
        "timeStamp": "1608017258073",
        "diffInfo": {"prev": {"name": "a"}, "curr": {"name": "b"}, "userid": "u1"},
        "userId": ["u1"],
    }
    event = parse_dingtalk(orjson.dumps(payload))
    assert event == _event(
        "user_modify_org", event_id="c7c7", corp_id="ding9f", user_ids=("u1",), time_ms=1608017258073
    )


def test_reads_stream_event_with_data_object() -> None:
    payload = {
        "eventCorpId": "ding9f",
        "eventType": "org_dept_remove",
        "eventId": "e1",
        "eventBornTime": 1683533823336,
        "data": {"deptId": [432825033, 7]},
    }
    event = parse_dingtalk(orjson.dumps(payload))
    assert event == _event(
        "org_dept_remove", event_id="e1", corp_id="ding9f", dept_ids=("432825033", "7"), time_ms=1683533823336
    )


def test_reads_stream_wire_frame_with_headers_and_data_string() -> None:
    frame = {
        "specVersion": "1.0",
        "type": "EVENT",
        "headers": {"eventType": "user_leave_org", "eventId": "e2", "eventCorpId": "ding9f", "eventBornTime": "17"},
        "data": '{"timestamp" : "1685501863357", "userId" : ["u9"]}',
    }
    event = parse_dingtalk(orjson.dumps(frame))
    assert event == _event("user_leave_org", event_id="e2", corp_id="ding9f", user_ids=("u9",), time_ms=1685501863357)


def test_top_level_wins_over_data_and_data_over_headers() -> None:
    frame = {"eventType": "top", "data": {"eventType": "data", "eventId": "d"}, "headers": {"eventId": "h"}}
    event = parse_dingtalk(orjson.dumps(frame))
    assert (event.event_type, event.event_id) == ("top", "d")


def test_keys_match_whatever_their_case() -> None:
    event = parse_dingtalk(b'{"EVENTTYPE":"label_user_change","USERIDLIST":["a"],"labelidlist":[1],"Action":"Remove"}')
    assert (event.event_type, event.user_ids, event.label_ids, event.action) == (
        "label_user_change",
        ("a",),
        ("1",),
        "remove",
    )


def test_merges_and_dedupes_user_id_keys() -> None:
    event = parse_dingtalk(b'{"EventType":"x","UserId":["a","b"],"userIdList":["b","c"],"DeptId":[1],"deptIdList":[2]}')
    assert (event.user_ids, event.dept_ids) == (("a", "b", "c"), ("1", "2"))


def test_accepts_a_single_id_instead_of_a_list() -> None:
    assert parse_dingtalk(b'{"EventType":"x","DeptId":5}').dept_ids == ("5",)


@pytest.mark.parametrize(
    ("time_field", "expected"),
    [
        ('"TimeStamp":"1640921671286"', 1640921671286),
        ('"timeStamp":1640921671286', 1640921671286),
        ('"timestamp":"17"', 17),
        ('"EventTime":1663143335567', 1663143335567),
        ('"timeStamp":"168****362","eventBornTime":1684467623381', 1684467623381),
        ('"timeStamp":"168****362"', None),
        ('"timeStamp":true', None),
        ('"timeStamp":"١٢"', None),
        ('"timeStamp":"' + "9" * 5000 + '"', None),  # more digits than int() converts
        ('"timeStamp":"' + "9" * 20 + '"', None),  # more than 64 bits
        ('"timeStamp":' + "9" * 20, None),
        ('"timeStamp":"9223372036854775807"', 2**63 - 1),
    ],
)
def test_reads_time_in_milliseconds(time_field: str, expected: int | None) -> None:
    assert parse_dingtalk(f'{{"EventType":"x",{time_field}}}'.encode()).time_ms == expected


@pytest.mark.parametrize(
    "plaintext",
    [b"not json", b'["EventType"]', b"{}", b'{"EventType":""}', b'{"EventType":" "}', b'{"EventType":5}', b""],
)
def test_rejects_malformed_event(plaintext: bytes) -> None:
    with pytest.raises(errors.MalformedMessage) as caught:
        parse_dingtalk(plaintext)
    assert rejection(caught.value).dingtalk_code == 900007


@pytest.mark.parametrize(
    ("plaintext", "users", "depts"),
    [
        (b'{"EventType":"x","UserId":[{"id":"a"},"b"]}', ("b",), ()),
        (b'{"EventType":"x","DeptId":[true,3]}', (), ("3",)),
        (b'{"EventType":"x","UserId":{"id":"a"}}', (), ()),
        (b'{"eventType":"x","data":"{not json"}', (), ()),
        (b'{"eventType":"x","data":"[1]"}', (), ()),
        (b'{"eventType":"x","data":5,"userId":["u"]}', ("u",), ()),
    ],
)
def test_ids_and_data_that_are_not_ids_are_skipped(
    plaintext: bytes, users: tuple[str, ...], depts: tuple[str, ...]
) -> None:
    event = parse_dingtalk(plaintext)
    assert (event.event_type, event.user_ids, event.dept_ids) == ("x", users, depts)


# --- dedupe key ----------------------------------------------------------------------------------


def test_dedupe_key_is_the_event_id_wherever_the_shape_puts_it() -> None:
    assert dedupe_key("dingtalk", b'{"EventType":"x","eventId":"top"}') == "event:top"
    assert dedupe_key("dingtalk", b'{"eventType":"x","data":{"eventId":"inner"}}') == "event:inner"
    assert dedupe_key("dingtalk", b'{"headers":{"eventType":"x","eventId":"head"},"data":"{}"}') == "event:head"


@pytest.mark.parametrize(
    "plaintext",
    [
        b'{"EventType":"x","UserId":["u"]}',
        b'{"EventType":"x","eventId":""}',
        b'{"EventType":"x","eventId":12345}',
        b'{"EventType":"x","eventId":null}',
        b'{"UserId":["u"],"eventId":"no-type"}',
        b"not json",
    ],
)
def test_dedupe_key_is_the_sha256_without_a_usable_event_id(plaintext: bytes) -> None:
    assert dedupe_key("dingtalk", plaintext) == _sha(plaintext)


def test_wecom_dedupe_key_is_always_the_sha256() -> None:
    plaintext = b"<xml><EventId>abc</EventId><eventId>abc</eventId></xml>"
    assert dedupe_key("wecom", plaintext) == _sha(plaintext)
    for path in sorted(WECOM_EVENTS.glob("*.xml")):
        assert dedupe_key("wecom", path.read_bytes()) == _sha(path.read_bytes())


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_rejects_json_nested_deeper_than_the_decoder_goes(depth: int) -> None:
    nested = b'{"EventType":"user_add_org","x":' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(errors.MalformedMessage):
        parse_dingtalk(nested)


def test_a_stream_data_string_nested_too_deep_is_ignored_not_raised() -> None:
    data = "[" * 100_000 + "]" * 100_000
    event = parse_dingtalk(orjson.dumps({"EventType": "user_add_org", "data": data, "UserId": ["u1"]}))
    assert event.user_ids == ("u1",)
