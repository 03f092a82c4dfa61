"""Stream frames: the published wire frame and ACK (protocol-events/dingtalk/stream_wire/), and what we refuse."""

from __future__ import annotations

import random

import orjson
import pytest

from handlers.errors import MalformedMessage
from handlers.events.parse import dedupe_key, parse_dingtalk
from receiver.stream import frames
from receiver.stream.consumer import StreamSettings, backoff
from tests.support.paths import PROTOCOL_EVENTS

WIRE = PROTOCOL_EVENTS / "dingtalk" / "stream_wire"


def test_the_published_event_frame_becomes_the_sdks_event_shape() -> None:
    frame = frames.parse_frame((WIRE / "user_add_org.frame.json").read_bytes())
    assert (frame.type, frame.message_id) == ("EVENT", "213d841d_972_1898bb26334_70a7")
    plaintext = frames.event_plaintext(frame)
    assert orjson.loads(plaintext) == {
        "eventUnifiedAppId": "bbb381b6-f01xxxxx58daac",
        "eventCorpId": "ding9f50b15b***16741",
        "eventType": "user_add_org",
        "eventId": "c7c7120f2c07419***ebdba0318c8",
        "eventBornTime": 1683533823336,
        "data": {"timestamp": "1685501863357", "userId": ["015xxxx227"]},
    }
    event = parse_dingtalk(plaintext)
    assert (event.event_type, event.user_ids, event.time_ms) == ("user_add_org", ("015xxxx227",), 1685501863357)
    assert dedupe_key("dingtalk", plaintext) == "event:c7c7120f2c07419***ebdba0318c8"


def test_our_ack_has_the_published_acks_shape() -> None:
    published = orjson.loads((WIRE / "user_add_org.ack.json").read_bytes())
    ours = orjson.loads(frames.ack("213d841d_972_1898bb26334_70a7"))
    assert ours.keys() == published.keys() and ours["headers"] == published["headers"]
    assert (ours["code"], ours["message"]) == (200, "OK")
    assert orjson.loads(ours["data"]) == {"status": "SUCCESS"}
    assert orjson.loads(orjson.loads(frames.ack("m", frames.ACK_LATER))["data"]) == {"status": "LATER"}


def test_a_ping_is_answered_with_its_opaque() -> None:
    ping = {"specVersion": "1.0", "type": "SYSTEM", "headers": {"topic": "ping", "messageId": "p1"},
            "data": '{"opaque":"8f1c"}'}  # fmt: skip
    answer = orjson.loads(frames.pong(frames.parse_frame(orjson.dumps(ping))))
    assert answer["headers"]["messageId"] == "p1" and orjson.loads(answer["data"]) == {"opaque": "8f1c"}


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1]",
        b'{"type": "EVENT"}',
        b'{"type": "EVENT", "headers": {}}',
        b'{"type": 1, "headers": {"messageId": "m"}}',
        b'{"type": "EVENT", "headers": {"messageId": "' + b"x" * 2000 + b'"}}',
    ],
)
def test_frames_without_type_headers_or_message_id_are_refused(raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        frames.parse_frame(raw)


@pytest.mark.parametrize("data", ['"a string"', "not json", "[]", '{"deep": ' * 100 + "1" + "}" * 100])
def test_event_data_that_is_not_an_object_is_refused(data: str) -> None:
    frame = frames.Frame("EVENT", None, "m", {"messageId": "m", "eventType": "user_add_org"}, data)
    if data.startswith('{"deep"'):
        assert orjson.loads(frames.event_plaintext(frame))["eventType"] == "user_add_org"
        return
    with pytest.raises(MalformedMessage):
        frames.event_plaintext(frame)


def test_a_born_time_too_long_for_a_number_stays_text() -> None:
    frame = frames.Frame("EVENT", None, "m", {"eventType": "x", "eventBornTime": "9" * 40}, "{}")
    assert orjson.loads(frames.event_plaintext(frame))["eventBornTime"] == "9" * 40


def test_backoff_grows_with_jitter_from_one_second_to_a_minute() -> None:
    settings, rng = StreamSettings(), random.Random(1)
    waits = [[backoff(attempt, settings, rng) for _ in range(200)] for attempt in range(12)]
    assert all(w == 1.0 for w in waits[0])
    assert all(1.0 <= w <= 60.0 for row in waits for w in row)
    assert max(waits[11]) <= 60.0 and min(waits[11]) >= 30.0
    assert len({round(w, 6) for w in waits[5]}) > 100  # jittered: not one value
