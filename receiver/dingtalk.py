"""DingTalk adapter: signed request, encrypted ``success`` reply, and one event shape out of three."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import orjson

from receiver.crypto import CallbackCipher
from receiver.errors import EnvelopeError, SignatureError

__all__ = ["DingTalkEvent", "DingTalkRequest", "FieldDiff", "parse_event", "parse_request", "success_reply"]

# Keys are compared case-insensitively: legacy callbacks say UserId/TimeStamp, the current HTTP push
# and Stream say userId/timeStamp (docs: "Stream模式推送格式是以小驼峰的命名方式"). See dingtalk.md §3.2.
_USER_KEYS = ("userid", "useridlist")
_DEPT_KEYS = ("deptid", "deptidlist")
_LABEL_KEYS = ("labelidlist", "labelid")
_CORP_KEYS = ("corpid", "eventcorpid")
_TIME_KEYS = ("timestamp", "eventtime", "eventborntime")

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class DingTalkRequest:
    """The signed parts of one HTTP push."""

    signature: str
    timestamp: str
    nonce: str
    encrypt: str


class FieldDiff(NamedTuple):
    """The org-profile fields of one user that ``user_modify_org`` reports as changed."""

    user_id: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DingTalkEvent:
    """A contact event with the legacy, HTTP-push and Stream shapes folded into one. Ids are strings."""

    event_type: str
    event_id: str | None = None
    corp_id: str | None = None
    user_ids: tuple[str, ...] = ()
    dept_ids: tuple[str, ...] = ()
    label_ids: tuple[str, ...] = ()
    action: str | None = None
    time_ms: int | None = None
    diff_info: tuple[FieldDiff, ...] = ()


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


def parse_event(plaintext: bytes) -> DingTalkEvent:
    """Normalize a decrypted event (legacy, HTTP push, Stream event or Stream wire frame)."""
    fields = _fold(_loads(plaintext))
    event_type = fields.get("eventtype")
    if not isinstance(event_type, str) or not event_type:
        raise EnvelopeError("EventType missing")
    return DingTalkEvent(
        event_type=event_type,
        event_id=_optional_str(fields.get("eventid")),
        corp_id=_first(_optional_str, fields, _CORP_KEYS),
        user_ids=_ids(fields, _USER_KEYS),
        dept_ids=_ids(fields, _DEPT_KEYS),
        label_ids=_ids(fields, _LABEL_KEYS),
        action=_optional_str(fields.get("action")),
        time_ms=_first(_millis, fields, _TIME_KEYS),
        diff_info=_diffs(fields.get("diffinfo")),
    )


def _loads(data: bytes | str) -> dict[str, object]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("malformed JSON") from exc
    if not isinstance(parsed, dict):
        raise EnvelopeError("JSON is not an object")
    return parsed


def _fold(payload: dict[str, object]) -> dict[str, object]:
    """Lower-case keys; a Stream ``data`` object (or JSON string) and wire-frame ``headers`` merge in."""
    folded = {key.lower(): value for key, value in payload.items()}
    layers: list[Mapping[str, object]] = []
    data = folded.pop("data", None)
    if isinstance(data, str):
        layers.append(_loads(data))
    elif isinstance(data, dict):
        layers.append(data)
    elif data is not None:
        raise EnvelopeError("Stream data is neither an object nor a JSON string")
    headers = folded.get("headers")
    if isinstance(headers, dict):
        layers.append(headers)
    for layer in layers:
        for key, value in layer.items():
            folded.setdefault(str(key).lower(), value)
    return folded


def _first(convert: Callable[[object], _T | None], fields: Mapping[str, object], keys: Iterable[str]) -> _T | None:
    """The first of ``keys`` whose value converts to something other than None."""
    for key in keys:
        converted = convert(fields.get(key))
        if converted is not None:
            return converted
    return None


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _id(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise EnvelopeError("an id is neither a string nor an integer")


def _ids(fields: Mapping[str, object], keys: Iterable[str]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for key in keys:
        value = fields.get(key)
        if value is None:
            continue
        for item in value if isinstance(value, list) else (value,):
            found[_id(item)] = None
    return tuple(found)


def _millis(value: object) -> int | None:
    """Milliseconds from an int or a digit string; None for anything else (samples mask some digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _diffs(value: object) -> tuple[FieldDiff, ...]:
    """diffInfo as an object or a list of {userid, prev, curr}; advisory, so odd entries are skipped."""
    entries = value if isinstance(value, list) else [value]
    diffs: list[FieldDiff] = []
    for raw in entries:
        if not isinstance(raw, dict):
            continue
        entry = {str(key).lower(): item for key, item in raw.items()}
        user_id = entry.get("userid")
        prev = entry.get("prev")
        curr = entry.get("curr")
        if not isinstance(user_id, str) or not isinstance(prev, dict) or not isinstance(curr, dict):
            continue
        changed = sorted(key for key in prev.keys() | curr.keys() if prev.get(key) != curr.get(key))
        diffs.append(FieldDiff(user_id, tuple(changed)))
    return tuple(diffs)
