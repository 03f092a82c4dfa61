"""DingTalk Stream frames (protocol/dingtalk.md §4.2): what the gateway sends, and what we answer. Pure, no I/O.

A frame is ``{"specVersion", "type": SYSTEM|EVENT|CALLBACK, "headers": {"topic", "messageId", ...}, "data": "<JSON
string>"}``; an EVENT's headers also carry ``eventType``, ``eventId``, ``eventCorpId``, ``eventBornTime`` and
``eventUnifiedAppId``. Every frame is answered with ``{"code": 200, "headers": {"messageId", "contentType"},
"message": "OK", "data": ...}``: for an event ``data`` is ``{"status": "SUCCESS"}``, or ``"LATER"`` to have it
redelivered (the Java SDK's form, developerpedia ``protocol.md``); a ``ping`` echoes its ``data`` (the opaque).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from handlers.errors import MalformedMessage

__all__ = ["ACK_LATER", "ACK_SUCCESS", "Frame", "ack", "event_plaintext", "parse_frame", "pong"]

ACK_SUCCESS = "SUCCESS"
ACK_LATER = "LATER"
SYSTEM, EVENT = "SYSTEM", "EVENT"
PING, DISCONNECT = "ping", "disconnect"

# The event envelope, in the order the SDKs expose it (the stream/ samples); ``data`` follows as an object.
_EVENT_HEADERS = ("eventUnifiedAppId", "eventCorpId", "eventType", "eventId", "eventBornTime")
_MS_DIGITS = 18  # a time in ms as a number (the SDKs' shape); longer stays text (orjson holds 64 bits)
MAX_HEADER_CHARS = 1024  # no header of the protocol comes near this: longer is not a frame of ours


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame from the gateway: its type, topic, messageId, text headers and ``data`` as sent (a JSON string)."""

    type: str
    topic: str | None
    message_id: str
    headers: dict[str, str]
    data: str


def _header(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if len(text) <= MAX_HEADER_CHARS else None


def parse_frame(raw: str | bytes) -> Frame:
    """Read one frame; MalformedMessage when it is not JSON, not an object, or has no type or messageId."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedMessage("frame is not JSON") from None
    if not isinstance(doc, dict):
        raise MalformedMessage("frame is not a JSON object")
    kind, headers = doc.get("type"), doc.get("headers")
    if not isinstance(kind, str) or not isinstance(headers, dict):
        raise MalformedMessage("frame without type or headers")
    text = {str(k): v for k, v in ((k, _header(v)) for k, v in headers.items()) if v is not None}
    message_id = text.get("messageId")
    if not message_id:
        raise MalformedMessage("frame without messageId")
    data = doc.get("data")
    return Frame(kind, text.get("topic"), message_id, text, data if isinstance(data, str) else "")


def _answer(message_id: str, data: str) -> bytes:
    return orjson.dumps(
        {
            "code": 200,
            "headers": {"messageId": message_id, "contentType": "application/json"},
            "message": "OK",
            "data": data,
        }
    )


def ack(message_id: str, status: str = ACK_SUCCESS) -> bytes:
    """The ACK of an event: SUCCESS (stored), or LATER (not stored: redeliver it)."""
    return _answer(message_id, orjson.dumps({"status": status}).decode())


def pong(frame: Frame) -> bytes:
    """The answer to a SYSTEM ``ping``: its data (the opaque) echoed."""
    return _answer(frame.message_id, frame.data)


def event_plaintext(frame: Frame) -> bytes:
    """An EVENT frame as the inbox keeps it: the envelope headers and ``data`` as an object, the shape the SDKs
    expose (``protocol-events/dingtalk/stream/``) and ``handlers.events.parse.parse_dingtalk`` reads.
    MalformedMessage when ``data`` is not a JSON object or ``eventType`` is missing."""
    try:
        data: Any = orjson.loads(frame.data) if frame.data else {}
    except orjson.JSONDecodeError:
        raise MalformedMessage("event data is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedMessage("event data is not a JSON object")
    if not frame.headers.get("eventType"):
        raise MalformedMessage("event without eventType")
    doc: dict[str, Any] = {}
    for name in _EVENT_HEADERS:
        value = frame.headers.get(name)
        if value is not None:
            doc[name] = (
                int(value)
                if name == "eventBornTime" and value.isascii() and value.isdigit() and len(value) <= 18
                else value
            )
    doc["data"] = data
    return orjson.dumps(doc)
