"""DingTalk adapter: signed request, encrypted success reply, and every published event shape."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pytest

from receiver import errors
from receiver.crypto import CallbackCipher
from receiver.dingtalk import DingTalkEvent, DingTalkRequest, FieldDiff, parse_event, parse_request, success_reply

SHARED = Path(os.environ.get("CORPSYNC_SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared")
EVENTS = SHARED / "protocol" / "events" / "dingtalk"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

TOKEN = "mryue"
KEY = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
APP_KEY = "ding6ccabc44d2c8d38b"


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
    files = sorted(EVENTS.rglob("*.json"))
    if not files:
        missing = pytest.mark.skipif(not IN_CI, reason=f"no events in {EVENTS}; set CORPSYNC_SHARED_DIR")
        return [pytest.param(None, id="events-missing", marks=missing)]
    names = [path.relative_to(EVENTS).as_posix() for path in files]
    return [pytest.param(name, id=name) for name in names if name not in NOT_EVENTS]


@pytest.mark.parametrize("name", _event_files())
def test_event_file_parses_to_its_ids(name: str | None) -> None:
    if name is None:
        pytest.fail(f"DingTalk event samples are missing from {EVENTS}")
    expected = EXPECTED.get(name)
    assert expected is not None, f"{name} is new: add its expected ids to EXPECTED"
    event = parse_event((EVENTS / name).read_bytes())
    assert event.event_type == Path(name).name.split(".")[0]
    assert Ids(event.user_ids, event.dept_ids, event.label_ids, event.action) == expected
    if event.event_type != "check_url":
        assert event.corp_id is not None
    if name.startswith(("http_v2/", "stream")):
        assert event.event_id is not None
        assert event.time_ms is not None


def test_every_expected_event_file_exists() -> None:
    if not EVENTS.is_dir():
        if IN_CI:
            pytest.fail(f"DingTalk event samples are missing from {EVENTS}")
        pytest.skip(f"no events in {EVENTS}")
    assert sorted(name for name in EXPECTED if not (EVENTS / name).is_file()) == []


def test_wire_ack_is_not_an_event() -> None:
    with pytest.raises(errors.EnvelopeError, match="EventType"):
        parse_event(b'{"code": 200, "headers": {"messageId": "m"}, "message": "OK", "data": "{}"}')


# --- shapes --------------------------------------------------------------------------------------


def test_reads_legacy_shape() -> None:
    event = parse_event(
        b'{"CorpId":"dingc7","EventType":"user_add_org","UserId":["1849"],"OptStaffId":"m","TimeStamp":"1640921671286"}'
    )
    assert event == DingTalkEvent("user_add_org", None, "dingc7", ("1849",), time_ms=1640921671286)


def test_reads_current_http_shape_with_diff_info() -> None:
    payload = {
        "EventType": "user_modify_org",
        "EventTime": 1663143335567,
        "CorpId": "ding9f",
        "BizId": "1663",
        "eventId": "c7c7",
        "timeStamp": "1608017258073",
        "diffInfo": {
            "prev": {"name": "a", "email": "x", "tel": "1"},
            "curr": {"name": "b", "email": "x"},
            "userid": "u1",
        },
        "userId": ["u1"],
    }
    event = parse_event(orjson.dumps(payload))
    assert event == DingTalkEvent(
        event_type="user_modify_org",
        event_id="c7c7",
        corp_id="ding9f",
        user_ids=("u1",),
        time_ms=1608017258073,
        diff_info=(FieldDiff("u1", ("name", "tel")),),
    )


def test_reads_stream_event_with_data_object() -> None:
    payload = {
        "eventCorpId": "ding9f",
        "eventType": "org_dept_remove",
        "eventId": "e1",
        "eventBornTime": 1683533823336,
        "data": {"deptId": [432825033, 7]},
    }
    event = parse_event(orjson.dumps(payload))
    assert event == DingTalkEvent("org_dept_remove", "e1", "ding9f", dept_ids=("432825033", "7"), time_ms=1683533823336)


def test_reads_stream_wire_frame_with_data_string() -> None:
    frame = {
        "specVersion": "1.0",
        "type": "EVENT",
        "headers": {"eventType": "user_leave_org", "eventId": "e2", "eventCorpId": "ding9f", "eventBornTime": "17"},
        "data": '{"timestamp" : "1685501863357", "userId" : ["u9"]}',
    }
    event = parse_event(orjson.dumps(frame))
    assert event == DingTalkEvent("user_leave_org", "e2", "ding9f", ("u9",), time_ms=1685501863357)


def test_reads_diff_info_as_a_list() -> None:
    payload = {
        "eventType": "user_modify_org",
        "data": {
            "diffInfo": [
                {"prev": {"jobNumber": "1"}, "curr": {"jobNumber": ""}, "userid": "u1"},
                {"prev": {}, "curr": {"name": "n"}, "UserId": "u2"},
                "not an entry",
                {"prev": {}, "curr": {}},
            ],
            "userId": ["u1", "u2"],
        },
    }
    event = parse_event(orjson.dumps(payload))
    assert event.diff_info == (FieldDiff("u1", ("jobNumber",)), FieldDiff("u2", ("name",)))
    user_id, fields = event.diff_info[0]
    assert (user_id, fields) == ("u1", ("jobNumber",))


def test_keys_match_whatever_their_case() -> None:
    event = parse_event(b'{"EVENTTYPE":"label_user_change","USERIDLIST":["a"],"labelidlist":[1],"Action":"remove"}')
    assert (event.event_type, event.user_ids, event.label_ids, event.action) == (
        "label_user_change",
        ("a",),
        ("1",),
        "remove",
    )


def test_merges_and_dedupes_user_id_keys() -> None:
    event = parse_event(b'{"EventType":"x","UserId":["a","b"],"userIdList":["b","c"]}')
    assert event.user_ids == ("a", "b", "c")


def test_accepts_a_single_id_instead_of_a_list() -> None:
    assert parse_event(b'{"EventType":"x","DeptId":5}').dept_ids == ("5",)


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
    ],
)
def test_reads_time_in_milliseconds(time_field: str, expected: int | None) -> None:
    assert parse_event(f'{{"EventType":"x",{time_field}}}'.encode()).time_ms == expected


@pytest.mark.parametrize(
    "plaintext",
    [
        b"not json",
        b'["EventType"]',
        b"{}",
        b'{"EventType":""}',
        b'{"EventType":5}',
        b'{"EventType":"x","UserId":[{"id":"a"}]}',
        b'{"EventType":"x","DeptId":[true]}',
        b'{"eventType":"x","data":"{not json"}',
        b'{"eventType":"x","data":"[1]"}',
        b'{"eventType":"x","data":5}',
    ],
)
def test_rejects_malformed_event(plaintext: bytes) -> None:
    with pytest.raises(errors.EnvelopeError):
        parse_event(plaintext)


# --- request and reply ---------------------------------------------------------------------------


BODY = b'{"encrypt":"abc="}'


def test_request_prefers_msg_signature_and_camel_timestamp() -> None:
    query = {"signature": "old", "msg_signature": "new", "timestamp": "1", "timeStamp": "2", "nonce": "n"}
    assert parse_request(query, BODY) == DingTalkRequest("new", "2", "n", "abc=")


def test_request_falls_back_to_signature_and_timestamp() -> None:
    assert parse_request({"signature": "s", "timestamp": "1", "nonce": "n"}, BODY) == DingTalkRequest(
        "s", "1", "n", "abc="
    )


@pytest.mark.parametrize(
    "query", [{"timestamp": "1", "nonce": "n"}, {"msg_signature": "", "timestamp": "1", "nonce": "n"}]
)
def test_request_without_signature_is_a_signature_error(query: dict[str, str]) -> None:
    with pytest.raises(errors.SignatureError) as caught:
        parse_request(query, BODY)
    assert caught.value.dingtalk_code == 900005


@pytest.mark.parametrize("query", [{"signature": "s", "nonce": "n"}, {"signature": "s", "timestamp": "1"}])
def test_request_without_timestamp_or_nonce_is_an_envelope_error(query: dict[str, str]) -> None:
    with pytest.raises(errors.EnvelopeError):
        parse_request(query, BODY)


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"{}", b'{"encrypt": ""}', b'{"encrypt": 1}', b'{"Encrypt": "a"}'])
def test_request_with_malformed_body_is_an_envelope_error(body: bytes) -> None:
    with pytest.raises(errors.EnvelopeError) as caught:
        parse_request({"signature": "s", "timestamp": "1", "nonce": "n"}, body)
    assert caught.value.dingtalk_code == 900007


def test_success_reply_has_exactly_the_four_keys_and_decrypts_to_success() -> None:
    cipher = CallbackCipher(TOKEN, KEY)
    reply = success_reply(cipher, APP_KEY, timestamp="1608001896814", nonce="WL4PK6yA")
    assert list(reply) == ["msg_signature", "timeStamp", "nonce", "encrypt"]
    assert (reply["timeStamp"], reply["nonce"]) == ("1608001896814", "WL4PK6yA")
    opened = cipher.open(reply["msg_signature"], reply["timeStamp"], reply["nonce"], reply["encrypt"], {APP_KEY})
    assert opened.message == b"success"


def test_success_reply_is_deterministic_with_random16() -> None:
    cipher = CallbackCipher(TOKEN, KEY)
    first = success_reply(cipher, APP_KEY, timestamp="1", nonce="n", random16=b"1234567890123456")
    again = success_reply(cipher, APP_KEY, timestamp="1", nonce="n", random16=b"1234567890123456")
    other = success_reply(cipher, APP_KEY, timestamp="1", nonce="n")
    assert first == again
    assert other["encrypt"] != first["encrypt"]
    sealed = cipher.seal(b"success", APP_KEY, "1", "n", random16=b"1234567890123456")
    assert first["encrypt"] == sealed.encrypt
    assert first["msg_signature"] == sealed.signature


def test_official_check_url_request_round_trips_to_a_reply() -> None:
    cipher = CallbackCipher(TOKEN, KEY)
    query = {
        "signature": "03044561471240d4a14bb09372dfcfd4fd0e40cb",
        "msg_signature": "03044561471240d4a14bb09372dfcfd4fd0e40cb",
        "timestamp": "1608001896814",
        "nonce": "WL4PK6yA",
    }
    body = (
        b'{"encrypt":"0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyDCYx'
        b'xOK+HZeKju4yhELOFchzNukR+t8SB/qk4ROMu3"}'
    )
    request = parse_request(query, body)
    opened = cipher.open(request.signature, request.timestamp, request.nonce, request.encrypt, {APP_KEY})
    assert parse_event(opened.message) == DingTalkEvent("check_url")
