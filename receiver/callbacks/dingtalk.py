"""DingTalk adapter: the signed request and the encrypted ``success`` reply (events: handlers.events.parse)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from receiver.callbacks.crypto import CallbackCipher
from receiver.errors import EnvelopeError, SignatureError

__all__ = ["DingTalkRequest", "parse_request", "success_reply"]


@dataclass(frozen=True, slots=True)
class DingTalkRequest:
    """The signed parts of one HTTP push."""

    signature: str
    timestamp: str
    nonce: str
    encrypt: str


def parse_request(query: Mapping[str, str], body: bytes) -> DingTalkRequest:
    """Read ``msg_signature`` (else ``signature``), ``timeStamp`` (else ``timestamp``), ``nonce``, body."""
    signature = query.get("msg_signature") or query.get("signature")
    if not signature:
        raise SignatureError("signature missing")
    timestamp = query.get("timeStamp") or query.get("timestamp")
    nonce = query.get("nonce")
    if not timestamp or not nonce:
        raise EnvelopeError("timestamp or nonce missing")
    parsed = _loads(body)
    encrypt = parsed.get("encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        raise EnvelopeError("encrypt missing from the body")
    return DingTalkRequest(signature, timestamp, nonce, encrypt)


def success_reply(
    cipher: CallbackCipher,
    owner_key: str,
    *,
    timestamp: str,
    nonce: str,
    random16: bytes | None = None,
) -> dict[str, str]:
    """The JSON DingTalk expects back: the literal ``success`` encrypted for ``owner_key`` and signed."""
    sealed = cipher.seal(b"success", owner_key, timestamp, nonce, random16=random16)
    return {
        "msg_signature": sealed.signature,
        "timeStamp": sealed.timestamp,
        "nonce": sealed.nonce,
        "encrypt": sealed.encrypt,
    }


def _loads(data: bytes) -> dict[str, object]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("malformed JSON") from exc
    if not isinstance(parsed, dict):
        raise EnvelopeError("JSON is not an object")
    return parsed
