"""Pure parsers for decrypted callback plaintexts: WeCom XML → fields, DingTalk JSON (any shape) → one event."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from handlers.errors import MalformedMessage
from handlers.events.xmlsafe import MAX_DEPTH, check_depth, parse_untrusted

_CHANGE_CONTACT = "change_contact"


class XmlFields(NamedTuple):
    """One XML element: its stripped text (empty → None), its children, and the first child of each tag.

    A named tuple rather than a frozen dataclass, built with ``tuple.__new__``: a message is about 20 elements,
    and building them was most of the worker's parsing time (bench/README.md, "Applying events")."""

    tag: str
    text: str | None
    children: tuple[XmlFields, ...]
    first: Mapping[str, XmlFields]  # the first child of each tag

    def __repr__(self) -> str:  # tag names only: the texts are personal data
        return f"XmlFields({self.tag!r}, children={[c.tag for c in self.children]!r})"

    def get(self, name: str) -> str | None:
        found = self.first.get(name)
        return None if found is None else found.text

    def child(self, name: str) -> XmlFields | None:
        return self.first.get(name)

    def has(self, name: str) -> bool:
        return name in self.first

    def items_of(self, name: str, item: str = "Item") -> tuple[XmlFields, ...]:
        parent = self.first.get(name)
        return () if parent is None else tuple(c for c in parent.children if c.tag == item)

    def names(self) -> frozenset[str]:
        return frozenset(self.first)


_NO_CHILDREN: Mapping[str, XmlFields] = MappingProxyType({})
_new_fields = tuple.__new__


def _freeze(element: ET.Element, depth: int = 0) -> XmlFields:
    """``element`` and its children as XmlFields. A leaf child (most of a message) is built here rather than by a
    call of its own, and each child is put in ``first`` as it is made: half the work per element."""
    check_depth(depth)
    text = element.text
    if text:
        text = text.strip() or None
    children: list[XmlFields] = []
    first: dict[str, XmlFields] = {}
    for child in element:
        if len(child):
            made = _freeze(child, depth + 1)
        else:
            if depth >= MAX_DEPTH:
                check_depth(depth + 1)
            leaf = child.text
            if leaf:
                leaf = leaf.strip() or None
            made = _new_fields(XmlFields, (child.tag, leaf, (), _NO_CHILDREN))
        children.append(made)
        first.setdefault(child.tag, made)  # the first of a tag wins
    if not children:
        return _new_fields(XmlFields, (element.tag, text, (), _NO_CHILDREN))
    return _new_fields(XmlFields, (element.tag, text, tuple(children), MappingProxyType(first)))


def parse_xml(plaintext: bytes | str) -> XmlFields:
    """Parse a WeCom message with the hardened parser (no DTD, UTF-8 only, bounded depth); MalformedMessage else."""
    return _freeze(parse_untrusted(plaintext))


def wecom_event_type(fields: XmlFields) -> str | None:
    """ChangeType for contact events (both envelopes), InfoType for suite instructions, else Event."""
    return _event_type(fields.get)


def _event_type(get: Callable[[str], str | None]) -> str | None:
    info = get("InfoType")
    if info == _CHANGE_CONTACT or get("Event") == _CHANGE_CONTACT:
        return get("ChangeType")
    if info is not None:
        return info
    return get("Event")


def split_ids(value: str | None) -> tuple[str, ...] | None:
    """A WeCom comma list (``1,2,3``) as a tuple; absent → None; blanks dropped."""
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


# --- DingTalk -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelInfo:
    """One entry of DingTalk ``postLabelList``: a role (label) as it is after the change."""

    label_id: str
    name: str | None
    group_id: str | None


@dataclass(frozen=True, slots=True)
class DingTalkEvent:
    event_type: str
    event_id: str | None
    corp_id: str | None
    user_ids: tuple[str, ...]
    dept_ids: tuple[str, ...]
    label_ids: tuple[str, ...]
    action: str | None
    time_ms: int | None
    post_labels: tuple[LabelInfo, ...] = ()


def _lower_keys(obj: Mapping[str, object]) -> dict[str, object]:
    return {str(k).lower(): v for k, v in obj.items()}


def _flatten(obj: Mapping[str, object]) -> dict[str, object]:
    """One lower-cased map: the top level, then the Stream ``data`` object (or JSON string), then the
    Stream wire frame's ``headers`` (eventType, eventId, ...); an earlier layer wins."""
    top = _lower_keys(obj)
    data = top.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
            data = None
    merged = dict(top)
    for layer in (data, top.get("headers")):
        if isinstance(layer, Mapping):
            for key, value in _lower_keys(layer).items():
                merged.setdefault(key, value)
    return merged


def _first(values: Mapping[str, object], *keys: str) -> object:
    for key in keys:
        if key in values and values[key] is not None:
            return values[key]
    return None


def _ids(values: Mapping[str, object], *keys: str) -> tuple[str, ...]:
    """The ids under every one of ``keys`` (a list or a single id), in order, deduplicated; junk is skipped."""
    out: dict[str, None] = {}
    for key in keys:
        value = values.get(key)
        items: Iterable[object] = value if isinstance(value, list | tuple) else (value,)
        for item in items:
            if isinstance(item, bool) or not isinstance(item, str | int):
                continue
            text = str(item).strip()
            if text:
                out[text] = None
    return tuple(out)


_INT64 = 2**63
_INT64_DIGITS = 19


def _int(value: object) -> int | None:
    """A whole number that fits in 64 bits (a time in milliseconds has 13 digits), else None; never raises, however
    many digits a string holds (``int()`` refuses more than 4,300)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        digits = value.strip()
        if not (digits.isascii() and digits.isdigit()) or len(digits) > _INT64_DIGITS:
            return None
        value = int(digits)
    if isinstance(value, int) and -_INT64 <= value < _INT64:
        return value
    return None


def _first_int(values: Mapping[str, object], *keys: str) -> int | None:
    """The first of ``keys`` that holds a number (samples mask digits: ``"168****362"`` falls through)."""
    for key in keys:
        number = _int(values.get(key))
        if number is not None:
            return number
    return None


def _labels(value: object) -> tuple[LabelInfo, ...]:
    if not isinstance(value, list):
        return ()
    out: list[LabelInfo] = []
    for item in value:
        entry = item
        if isinstance(item, str):
            try:
                entry = json.loads(item)
            except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
                continue
        if not isinstance(entry, Mapping):
            continue
        fields = _lower_keys(entry)
        label_id = _ids(fields, "id")
        if not label_id:
            continue
        name = fields.get("name")
        group = _ids(fields, "parentid")
        out.append(
            LabelInfo(label_id[0], name if isinstance(name, str) and name else None, group[0] if group else None)
        )
    return tuple(out)


def parse_dingtalk(plaintext: bytes | str) -> DingTalkEvent:
    """Any DingTalk shape (legacy PascalCase, HTTP push v2, Stream, normalized failed-list) → one event."""
    try:
        obj = json.loads(plaintext)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
        raise MalformedMessage("malformed JSON") from None
    if not isinstance(obj, Mapping):
        raise MalformedMessage("DingTalk event is not a JSON object")
    flat = _flatten(obj)
    event_type = _first(flat, "eventtype", "event_type", "call_back_tag")
    if not isinstance(event_type, str) or not event_type.strip():
        raise MalformedMessage("DingTalk event without EventType")
    event_id = _first(flat, "eventid")
    corp_id = _first(flat, "corpid", "eventcorpid")
    action = _first(flat, "action")
    return DingTalkEvent(
        event_type=event_type.strip(),
        event_id=event_id if isinstance(event_id, str) and event_id else None,
        corp_id=corp_id if isinstance(corp_id, str) and corp_id else None,
        user_ids=_ids(flat, "userid", "useridlist"),
        dept_ids=_ids(flat, "deptid", "deptidlist"),
        label_ids=_ids(flat, "labelidlist"),
        action=action.strip().lower() if isinstance(action, str) and action.strip() else None,
        time_ms=_first_int(flat, "timestamp", "eventtime", "eventborntime", "event_time"),
        post_labels=_labels(_first(flat, "postlabellist")),
    )


# Failed-list entries nest their payload under the tag name or one of these keys
# (open.dingtalk.com/document/development/obtain-the-event-list-of-failed-push-messages).
_FAILED_NESTS = ("bpmscallbackdata", "rolelabelchange", "callbackdata")
_FAILED_KEYS = {
    "userid": "UserId",
    "useridlist": "UserIdList",
    "deptid": "DeptId",
    "labelidlist": "LabelIdList",
    "action": "action",
    "corpid": "CorpId",
    "postlabellist": "PostLabelList",
    "scope": "scope",
}


def normalize_failed_entry(entry: Mapping[str, object]) -> bytes | None:
    """One ``get_call_back_failed_result`` entry → a legacy-shape plaintext the handlers understand.

    ``{"call_back_tag": "user_add_org", "event_time": 1606126433000, "user_add_org": {"userid": [...], "corpid": ...}}``
    becomes ``{"EventType": "user_add_org", "TimeStamp": "1606126433000", "UserId": [...], "CorpId": ...}``.
    Returns None for an entry without a tag.
    """
    top = _lower_keys(entry)
    tag = top.get("call_back_tag")
    if not isinstance(tag, str) or not tag:
        return None
    candidates = [top.get(tag.lower()), *(top.get(k) for k in _FAILED_NESTS)]
    inner = next((c for c in candidates if isinstance(c, Mapping)), {})
    out: dict[str, object] = {"EventType": tag}
    for key, value in _lower_keys(inner).items():
        name = _FAILED_KEYS.get(key)
        if name is not None:
            out[name] = value
    stamp = _int(top.get("event_time"))
    if stamp is not None:
        out["TimeStamp"] = str(stamp)
    return json.dumps(out, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def dedupe_key(platform: str, plaintext: bytes) -> str:
    """The inbox dedupe key, as the intake computes it: ``event:<eventId>`` for a DingTalk event that has one,
    else the sha256 hex of the plaintext."""
    if platform == "dingtalk":
        try:
            event = parse_dingtalk(plaintext)
        except MalformedMessage:
            event = None
        if event is not None and event.event_id:
            return f"event:{event.event_id}"
    return hashlib.sha256(plaintext).hexdigest()
