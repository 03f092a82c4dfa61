"""CallbackCipher: every published vector, round trips, and one test per rejection."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.errors import ConfigError
from receiver import errors
from receiver.callbacks.crypto import CallbackCipher, Opened, new_nonce
from tests.support.paths import VECTORS

TOKEN = "testtoken"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
AES_KEY = base64.b64decode(KEY + "=")
CORP = "ww0123456789abcdef"
TS = "1700000000"
NONCE = "n0nce"
RANDOM16 = b"0123456789abcdef"

_T = TypeVar("_T")


@dataclass(frozen=True)
class Vector:
    """One published vector, WeCom or DingTalk layout, under common names."""

    name: str
    kind: str
    token: str | None
    key: str | None
    receive_id: str | None
    timestamp: str | None
    nonce: str | None
    signature: str | None
    encrypted: str | None
    plaintext: str | None
    random16: bytes | None
    pad: int | None
    expected_error: object
    reply_xml: str | None


def _vector(source: str, index: int, item: dict[str, Any]) -> Vector:
    random16 = item.get("random16") or item.get("random")
    return Vector(
        name=item.get("id") or f"{source}-{index}-{item['kind']}",
        kind=item["kind"],
        token=item.get("token"),
        key=item.get("encoding_aes_key") or item.get("aes_key"),
        receive_id=item["receive_id"] if "receive_id" in item else item.get("key"),
        timestamp=item.get("timestamp"),
        nonce=item.get("nonce"),
        signature=item.get("msg_signature") or item.get("signature"),
        encrypted=item.get("echostr_or_encrypt") or item.get("encrypt"),
        plaintext=item.get("expected_plaintext"),
        random16=random16.encode() if isinstance(random16, str) else None,
        pad=item.get("pkcs7_pad_byte") or item.get("observed_pad_byte"),
        expected_error=item.get("expected_error"),
        reply_xml=item.get("expected_reply_xml"),
    )


def _vector_params() -> list[Any]:
    vectors = [
        _vector(path.stem, index, item)
        for path in sorted(VECTORS.glob("*.json"))
        for index, item in enumerate(json.loads(path.read_text(encoding="utf-8")))
    ]
    return [pytest.param(vector, id=vector.name) for vector in vectors]


def _present(value: _T | None) -> _T:
    assert value is not None, "the vector lacks a field its kind needs"
    return value


def _cipher(vector: Vector) -> CallbackCipher:
    return CallbackCipher(_present(vector.token), _present(vector.key))


def _check_opens(vector: Vector) -> None:
    encrypted = _present(vector.encrypted)
    receive_id = _present(vector.receive_id)
    opened = _cipher(vector).open(
        _present(vector.signature), _present(vector.timestamp), _present(vector.nonce), encrypted, {receive_id}
    )
    assert opened == Opened(_present(vector.plaintext).encode(), receive_id)
    if vector.pad is not None:
        framed = 20 + len(opened.message) + len(receive_id.encode())
        assert len(base64.b64decode(encrypted)) - framed == vector.pad


def _check_decrypts(vector: Vector) -> None:
    decrypter = CallbackCipher(vector.token or TOKEN, _present(vector.key))
    message, receive_id = decrypter.decrypt(_present(vector.encrypted))
    assert message == _present(vector.plaintext).encode()
    assert receive_id == vector.receive_id


def _check_seals(vector: Vector) -> None:
    sealed = _cipher(vector).seal(
        _present(vector.plaintext).encode(),
        _present(vector.receive_id),
        _present(vector.timestamp),
        _present(vector.nonce),
        random16=_present(vector.random16),
    )
    expected = {"encrypt": vector.encrypted, "signature": vector.signature}
    if vector.reply_xml is not None:
        reply = ET.fromstring(vector.reply_xml)  # noqa: S314 - our own test data
        expected = {"encrypt": reply.findtext("Encrypt"), "signature": reply.findtext("MsgSignature")}
    assert expected["encrypt"] or expected["signature"], "a deterministic vector must give an output"
    if expected["encrypt"]:
        assert sealed.encrypt == expected["encrypt"]
    if expected["signature"]:
        assert sealed.signature == expected["signature"]
    opened = _cipher(vector).open(
        sealed.signature, sealed.timestamp, sealed.nonce, sealed.encrypt, {_present(vector.receive_id)}
    )
    assert opened.message == _present(vector.plaintext).encode()


def _check_signs(vector: Vector) -> None:
    signer = CallbackCipher(_present(vector.token), vector.key or KEY)  # signing needs no real key
    signed = signer.signature(_present(vector.timestamp), _present(vector.nonce), _present(vector.encrypted))
    assert signed == vector.signature


def _check_rejects(vector: Vector) -> None:
    with pytest.raises(errors.CallbackRejected) as caught:
        _cipher(vector).open(
            vector.signature or "",
            _present(vector.timestamp),
            _present(vector.nonce),
            _present(vector.encrypted),
            {vector.receive_id or ""},
        )
    if vector.expected_error is not None:
        codes = {caught.value.wecom_code, caught.value.dingtalk_code, type(caught.value).__name__}
        assert str(vector.expected_error) in {str(code) for code in codes}
    elif vector.kind == "signature_negative":
        assert isinstance(caught.value, errors.SignatureError)


CHECKS: dict[str, Callable[[Vector], None]] = {
    "verify_url": _check_opens,
    "post_message": _check_opens,
    "request_decrypt": _check_opens,
    "response_decrypt": _check_opens,
    "decrypt_only": _check_decrypts,
    "encrypt_roundtrip": _check_seals,
    "encrypt_deterministic": _check_seals,
    "signature_only": _check_signs,
    "signature_negative": _check_rejects,
}


@pytest.mark.parametrize("vector", _vector_params())
def test_published_vector_gives_the_published_result(vector: Vector) -> None:
    if vector.kind == "raw_aes_cbc":
        pytest.skip("unframed AES with 16-byte padding is not a callback; outside CallbackCipher")
    if vector.expected_error is not None or vector.kind.endswith("negative"):
        _check_rejects(vector)
        return
    check = CHECKS.get(vector.kind)
    if check is None:
        pytest.fail(f"vector kind {vector.kind!r} has no check: add one")
    check(vector)


# --- round trips ---------------------------------------------------------------------------------

cipher = CallbackCipher(TOKEN, KEY)


@settings(max_examples=300)
@given(
    message=st.binary(max_size=4096),
    receive_id=st.text(max_size=40),
    random16=st.binary(min_size=16, max_size=16),
)
def test_round_trip_restores_any_message_and_receive_id(message: bytes, receive_id: str, random16: bytes) -> None:
    assert cipher.decrypt(cipher.encrypt(message, receive_id, random16=random16)) == (message, receive_id)


@settings(max_examples=200)
@given(text=st.text(max_size=1400), receive_id=st.sampled_from([CORP, "dingabc", "", "企业"]))
def test_round_trip_restores_multibyte_utf8_text(text: str, receive_id: str) -> None:
    sealed = cipher.seal(text.encode(), receive_id, TS, NONCE)
    opened = cipher.open(sealed.signature, TS, NONCE, sealed.encrypt, {receive_id})
    assert opened.message.decode() == text
    assert opened.receive_id == receive_id


@pytest.mark.parametrize("pad", range(1, 33))
def test_pads_to_32_bytes_with_every_pad_value(pad: int) -> None:
    for length in ((8 - pad) % 32, (8 - pad) % 32 + 32 * 37):  # 20 + length + len("corp") ≡ -pad (mod 32)
        message = bytes(range(256)) * (length // 256) + bytes(length % 256)
        encrypted = cipher.encrypt(message, "corp", random16=RANDOM16)
        plain = AES.new(AES_KEY, AES.MODE_CBC, iv=AES_KEY[:16]).decrypt(base64.b64decode(encrypted))
        assert plain[-pad:] == bytes([pad]) * pad
        assert cipher.decrypt(encrypted) == (message, "corp")


def test_aligned_plaintext_gets_a_full_block_of_padding() -> None:
    encrypted = cipher.encrypt(b"x" * 8, "corp", random16=RANDOM16)  # 16 + 4 + 8 + 4 = 32 bytes
    assert len(base64.b64decode(encrypted)) == 64


@settings(max_examples=100)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=6))
def test_decrypt_does_not_depend_on_earlier_messages(messages: list[bytes]) -> None:
    fresh = CallbackCipher(TOKEN, KEY)
    for message in messages:
        with pytest.raises(errors.CallbackRejected):
            fresh.decrypt(_craft(b"\x00" * 48))  # leaves the reused CBC object mid-stream
        assert fresh.decrypt(cipher.encrypt(message, CORP)) == (message, CORP)


def test_decrypt_is_safe_across_threads() -> None:
    shared = CallbackCipher(TOKEN, KEY)
    cases = [(bytes([n % 256]) * (n * 7), f"corp{n}") for n in range(64)]
    encrypted = [shared.encrypt(message, rid) for message, rid in cases]

    def run(offset: int) -> bool:
        return all(shared.decrypt(encrypted[(i + offset) % 64]) == cases[(i + offset) % 64] for i in range(2000))

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(run, range(4)))


def test_seal_signs_what_it_encrypts() -> None:
    sealed = cipher.seal(b"success", "dingkey", TS, NONCE, random16=RANDOM16)
    assert (sealed.timestamp, sealed.nonce) == (TS, NONCE)
    assert sealed.signature == cipher.signature(TS, NONCE, sealed.encrypt)
    assert sealed.encrypt == cipher.encrypt(b"success", "dingkey", random16=RANDOM16)


def test_signature_is_lower_hex_sha1_of_the_sorted_values() -> None:
    expected = hashlib.sha1("".join(sorted([TOKEN, TS, NONCE, "abc"])).encode()).hexdigest()  # noqa: S324
    assert cipher.signature(TS, NONCE, "abc") == expected


def test_encrypt_draws_its_random_prefix_from_the_injected_source() -> None:
    seeded = CallbackCipher(TOKEN, KEY, random_bytes=lambda n: b"r" * n)
    assert seeded.encrypt(b"m", CORP) == cipher.encrypt(b"m", CORP, random16=b"r" * 16)


def test_rejects_random16_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        cipher.encrypt(b"m", CORP, random16=b"short")


# --- rejections ----------------------------------------------------------------------------------


def _frame(message: bytes, receive_id: bytes = CORP.encode(), *, length: int | None = None) -> bytes:
    size = len(message) if length is None else length
    return RANDOM16 + struct.pack(">I", size) + message + receive_id


def _pad(body: bytes) -> bytes:
    pad = 32 - len(body) % 32
    return body + bytes([pad]) * pad


def _craft(plain: bytes) -> str:
    """Encrypt raw bytes (a multiple of 16 long) with the test key and no framing checks at all."""
    return base64.b64encode(AES.new(AES_KEY, AES.MODE_CBC, iv=AES_KEY[:16]).encrypt(plain)).decode()


def _sealed(message: bytes = b"<xml/>", receive_id: str = CORP) -> tuple[str, str]:
    sealed = cipher.seal(message, receive_id, TS, NONCE)
    return sealed.signature, sealed.encrypt


def test_opens_a_message_for_any_allowed_receive_id() -> None:
    signature, encrypted = _sealed(receive_id="suite1")
    opened = cipher.open(signature, TS, NONCE, encrypted, {"provider", "suite1"})
    assert opened == Opened(b"<xml/>", "suite1")


def test_rejects_bad_signature() -> None:
    signature, encrypted = _sealed()
    with pytest.raises(errors.SignatureError) as caught:
        cipher.open(signature[:-1] + ("0" if signature[-1] != "0" else "1"), TS, NONCE, encrypted, {CORP})
    assert (caught.value.wecom_code, caught.value.dingtalk_code) == (-40001, 900005)


def test_rejects_signature_over_other_values() -> None:
    signature, encrypted = _sealed()
    with pytest.raises(errors.SignatureError):
        cipher.open(signature, TS, "other-nonce", encrypted, {CORP})


@pytest.mark.parametrize("signature", ["", "é" * 40, "Ａ"])
def test_rejects_missing_or_non_ascii_signature(signature: str) -> None:
    _, encrypted = _sealed()
    with pytest.raises(errors.SignatureError):
        cipher.open(signature, TS, NONCE, encrypted, {CORP})


def test_rejects_signature_made_with_another_token() -> None:
    signature, encrypted = _sealed()
    with pytest.raises(errors.SignatureError):
        CallbackCipher("othertoken", KEY).verify(signature, TS, NONCE, encrypted)


def test_rejects_wrong_receive_id() -> None:
    signature, encrypted = _sealed(receive_id="wwf181555a13a31443")
    with pytest.raises(errors.ReceiveIdError) as caught:
        cipher.open(signature, TS, NONCE, encrypted, {CORP})
    assert (caught.value.wecom_code, caught.value.dingtalk_code) == (-40005, 900010)


def test_rejects_empty_receive_id_unless_allowed() -> None:
    signature, encrypted = _sealed(receive_id="")
    with pytest.raises(errors.ReceiveIdError):
        cipher.open(signature, TS, NONCE, encrypted, {CORP})
    assert cipher.open(signature, TS, NONCE, encrypted, {""}).receive_id == ""


def test_verifies_before_decrypting(monkeypatch: pytest.MonkeyPatch) -> None:
    decrypted: list[str] = []
    monkeypatch.setattr(CallbackCipher, "decrypt", lambda self, encrypted: decrypted.append(encrypted))
    signature, encrypted = _sealed()
    with pytest.raises(errors.SignatureError):
        cipher.open(signature, TS, "tampered", encrypted, {CORP})
    assert decrypted == []


@pytest.mark.parametrize("encrypted", ["!!!not base64!!!", _craft(b"\x00" * 32)[:-4], "AAAA"])
def test_bad_signature_wins_over_undecryptable_ciphertext(encrypted: str) -> None:
    with pytest.raises(errors.SignatureError):
        cipher.open("0" * 40, TS, NONCE, encrypted, {CORP})


def _decrypt_error(encrypted: str) -> errors.CallbackRejected:
    with pytest.raises(errors.CallbackRejected) as caught:
        cipher.decrypt(encrypted)
    return caught.value


@pytest.mark.parametrize(
    "encrypted",
    [
        "not base64 at all",
        "QUJD*A==",
        "QUJDRA",  # padding missing
        "QUJDRA==\n",
        "-_-_-_-_",  # URL-safe alphabet
        "ＱＵＪＤ",  # non-ASCII
        " QUJDRA==",
        "QUJD RA==",
        "QUJDRA===",  # padding beyond the group
        "QUJDRA==QUJDRA==",  # data after the padding
        "QUJDR===",
        "QUJDRA=A",
        "QUJDRA\x00=",
    ],
)
def test_rejects_bad_base64(encrypted: str) -> None:
    error = _decrypt_error(encrypted)
    assert isinstance(error, errors.Base64Error)
    assert (error.wecom_code, error.dingtalk_code) == (-40010, 900009)


def test_rejects_non_canonical_base64() -> None:
    encrypted = _craft(_pad(_frame(b"hello")))  # 64 bytes: base64 ends in "=="
    assert encrypted.endswith("==")
    last = "AQgw" if encrypted.endswith("==") else "AEIMQUYcgkosw048"
    digits = encrypted.rstrip("=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    index = alphabet.index(digits[-1])
    assert digits[-1] in last
    tweaked = digits[:-1] + alphabet[index + 1] + encrypted[len(digits) :]
    assert base64.b64decode(tweaked) == base64.b64decode(encrypted)  # same bytes, non-zero spare bits
    assert isinstance(_decrypt_error(tweaked), errors.Base64Error)


def test_rejects_pad_byte_zero() -> None:
    body = _frame(b"hello")
    error = _decrypt_error(_craft(body + bytes(32 - len(body) % 32)))
    assert isinstance(error, errors.DecryptError)
    assert (error.wecom_code, error.dingtalk_code) == (-40007, 900008)


@pytest.mark.parametrize("pad", [33, 48, 255])
def test_rejects_pad_byte_above_32(pad: int) -> None:
    body = _frame(b"x" * 60)
    filler = 64 - len(body) % 64
    assert isinstance(_decrypt_error(_craft(body + bytes([pad]) * filler)), errors.DecryptError)


def test_rejects_inconsistent_pad_bytes() -> None:
    padded = bytearray(_pad(_frame(b"hello")))
    padded[-2] ^= 1
    assert isinstance(_decrypt_error(_craft(bytes(padded))), errors.DecryptError)


def test_accepts_16_byte_padding_of_go_and_rust_encoders() -> None:
    body = _frame(b"hello!")  # 16 + 4 + 6 + 18 = 44 -> 16-byte PKCS#7 gives pad 4, still valid for us
    padded = body + bytes([4]) * 4
    assert cipher.decrypt(_craft(padded)) == (b"hello!", CORP)


def test_rejects_truncated_ciphertext() -> None:
    encrypted = _craft(_pad(_frame(b"hello")))
    truncated = base64.b64encode(base64.b64decode(encrypted)[:16]).decode()
    assert isinstance(_decrypt_error(truncated), errors.DecryptError)


def test_rejects_empty_ciphertext() -> None:
    assert isinstance(_decrypt_error(""), errors.DecryptError)


def test_rejects_length_not_multiple_of_16() -> None:
    encrypted = _craft(_pad(_frame(b"hello")))
    ragged = base64.b64encode(base64.b64decode(encrypted) + b"\x00" * 8).decode()
    assert isinstance(_decrypt_error(ragged), errors.DecryptError)


@pytest.mark.parametrize("length", [6, 100, 2**32 - 1])
def test_rejects_length_field_too_big(length: int) -> None:
    error = _decrypt_error(_craft(_pad(_frame(b"hello", b"", length=length))))
    assert isinstance(error, errors.BufferError_)
    assert (error.wecom_code, error.dingtalk_code) == (-40008, 900008)


def test_rejects_plaintext_shorter_than_its_header() -> None:
    assert isinstance(_decrypt_error(_craft(_pad(RANDOM16 + b"\x00\x00"))), errors.BufferError_)


def test_rejects_receive_id_that_is_not_utf8() -> None:
    assert isinstance(_decrypt_error(_craft(_pad(_frame(b"hello", b"\xff\xfe")))), errors.BufferError_)


@pytest.mark.parametrize(
    "key",
    [
        KEY[:42],
        KEY + "A",
        KEY[:42] + "=",
        KEY[:41] + "==",
        KEY[:42] + "+",
        KEY[:42] + "/",
        KEY[:42] + "-",
        KEY[:42] + "é",
        KEY[:42] + " ",
        KEY[:42] + "٣",  # a Unicode digit: isalnum() but not base64
        "",
    ],
    ids=["42-chars", "44-chars", "equals", "two-equals", "plus", "slash", "dash", "accent", "space", "arabic", "empty"],
)
def test_rejects_malformed_encoding_aes_key(key: str) -> None:
    with pytest.raises(errors.IllegalAesKey) as caught:
        CallbackCipher(TOKEN, key)
    assert isinstance(caught.value, ConfigError)
    assert (caught.value.wecom_code, caught.value.dingtalk_code) == (-40004, 900004)


def test_rejects_empty_token() -> None:
    with pytest.raises(ConfigError):
        CallbackCipher("", KEY)


def test_accepts_key_whose_last_digit_has_spare_bits() -> None:
    lenient = CallbackCipher(TOKEN, KEY[:42] + "H")  # H = 7: the two spare bits are 11
    assert lenient.decrypt(lenient.encrypt(b"", "")) == (b"", "")


# --- hygiene -------------------------------------------------------------------------------------


def test_repr_hides_token_and_key() -> None:
    text = repr(CallbackCipher("supersecrettoken", KEY))
    assert "supersecrettoken" not in text
    assert KEY not in text
    assert "abcdef" not in text


def test_opened_repr_hides_the_message() -> None:
    assert "zhangsan" not in repr(Opened(b"<UserID>zhangsan</UserID>", CORP))


def test_new_nonce_is_16_letters_and_digits() -> None:
    nonce = new_nonce()
    assert len(nonce) == 16
    assert nonce.isascii()
    assert nonce.isalnum()
    assert new_nonce() != nonce


def test_new_nonce_uses_the_injected_source_and_skips_biased_bytes() -> None:
    draws = iter([bytes([255, 254, 248] + [0] * 13), bytes(range(16))])
    nonce = new_nonce(lambda n: next(draws))
    assert nonce == "A" * 13 + "ABC"
