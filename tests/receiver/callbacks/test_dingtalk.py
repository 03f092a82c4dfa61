"""DingTalk adapter: signed request and encrypted success reply (events: handlers/events/test_parse_dingtalk)."""

from __future__ import annotations

import pytest

from handlers.events.parse import parse_dingtalk
from receiver import errors
from receiver.callbacks.crypto import CallbackCipher
from receiver.callbacks.dingtalk import DingTalkRequest, parse_request, success_reply

TOKEN = "mryue"
KEY = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
APP_KEY = "ding6ccabc44d2c8d38b"


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
    event = parse_dingtalk(opened.message)
    assert (event.event_type, event.event_id, event.user_ids) == ("check_url", None, ())
