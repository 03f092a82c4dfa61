"""WeCom adapter: signed query, POST envelope (XML or JSON), decrypted XML fields and event type."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, overload

import orjson

from receiver.crypto import Opened
from receiver.errors import EnvelopeError, SignatureError

__all__ = [
    "WecomEnvelope",
    "XmlFields",
    "event_type",
    "message_event_type",
    "parse_envelope",
    "parse_xml_fields",
    "signed_query",
    "url_verification_reply",
]

# No WeCom payload declares a DTD; refusing one up front rules out entity expansion (billion
# laughs) and external entities (XXE) whatever the parser's defaults are.
_DTD = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_MAX_DEPTH = 16
_LEADING = b" \t\r\n\xef\xbb\xbf"  # whitespace and a UTF-8 byte-order mark
_CHANGE_CONTACT = "change_contact"
_KIND_TAGS = frozenset({"InfoType", "Event", "ChangeType"})


@dataclass(frozen=True, slots=True)
class WecomEnvelope:
    """The outer POST body. ``to_user_name`` and ``agent_id`` are hints; None when absent or empty."""

    encrypt: str
    to_user_name: str | None
    agent_id: str | None


@dataclass(frozen=True, slots=True, repr=False)
class XmlFields(Mapping[str, str]):
    """One decrypted XML element: a read-only mapping of its leaf children's stripped text.

    Leaves map tag → text (CDATA or bare, surrounding whitespace removed; ``""`` when empty). Children
    that have children of their own (BatchJob, ExtAttr) are reached with :meth:`child`,
    :meth:`children` and :meth:`items_of`, which give XmlFields again.
    """

    tag: str
    _texts: Mapping[str, str]
    _elements: tuple[tuple[str, XmlFields], ...]

    def __getitem__(self, name: str) -> str:
        return self._texts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)

    def __repr__(self) -> str:  # field names only: values are personal data
        return f"XmlFields({self.tag!r}, keys={list(self._texts)!r})"

    def child(self, name: str) -> XmlFields | None:
        """The first nested element called ``name``, or None."""
        return next((fields for tag, fields in self._elements if tag == name), None)

    def children(self, name: str) -> tuple[XmlFields, ...]:
        """Every nested element called ``name``, in document order."""
        return tuple(fields for tag, fields in self._elements if tag == name)

    def items_of(self, container: str, item: str) -> tuple[XmlFields, ...]:
        """The ``item`` elements inside the first ``container``, e.g. ``items_of("ExtAttr", "Item")``."""
        found = self.child(container)
        return found.children(item) if found is not None else ()


def parse_envelope(body: bytes) -> WecomEnvelope:
    """Parse the POST body: XML ``<xml><Encrypt/>…`` or JSON ``{"encrypt": …}``, by its first byte."""
    start = body.lstrip(_LEADING)[:1]
    if start == b"<":
        return _xml_envelope(_parse_xml(body))
    if start == b"{":
        return _json_envelope(body)
    raise EnvelopeError("callback body is neither XML nor JSON")


def parse_xml_fields(plaintext: bytes) -> XmlFields:
    """Parse a decrypted WeCom message into XmlFields."""
    return _fields(_parse_xml(plaintext), 0)


def event_type(fields: Mapping[str, str]) -> str | None:
    """The name handlers are keyed on: the ChangeType of contact changes, else the InfoType or Event."""
    kind = fields.get("InfoType") or fields.get("Event")
    if kind == _CHANGE_CONTACT:
        return fields.get("ChangeType") or None
    return kind or None


def message_event_type(plaintext: bytes) -> str | None:
    """``event_type(parse_xml_fields(plaintext))``, without building the fields when the message is flat.

    The callback route needs only the event type, and contact events are flat; a message with nested
    elements takes the full path, which also enforces the depth limit. Raises EnvelopeError alike.
    """
    root = _parse_xml(plaintext)
    kinds: dict[str, str] = {}
    for node in root:
        if len(node):
            return event_type(_fields(root, 0))
        tag = node.tag
        if tag in _KIND_TAGS and tag not in kinds:
            kinds[tag] = (node.text or "").strip()
    return event_type(kinds)


def url_verification_reply(opened: Opened) -> bytes:
    """The body of the answer to the GET URL check: the decrypted echostr and nothing else."""
    return opened.message


@overload
def signed_query(query: Mapping[str, str], *, echostr: Literal[True]) -> tuple[str, str, str, str]: ...
@overload
def signed_query(query: Mapping[str, str], *, echostr: Literal[False]) -> tuple[str, str, str]: ...
def signed_query(query: Mapping[str, str], *, echostr: bool) -> tuple[str, str, str] | tuple[str, str, str, str]:
    """(msg_signature, timestamp, nonce[, echostr]) from the URL-decoded query string."""
    signature = query.get("msg_signature")
    if not signature:
        raise SignatureError("msg_signature missing")
    timestamp = query.get("timestamp")
    nonce = query.get("nonce")
    if not timestamp or not nonce:
        raise EnvelopeError("timestamp or nonce missing")
    if not echostr:
        return signature, timestamp, nonce
    echo = query.get("echostr")
    if not echo:
        raise EnvelopeError("echostr missing")
    return signature, timestamp, nonce, echo


def _parse_xml(data: bytes) -> ET.Element:
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise EnvelopeError("XML is not UTF-8") from exc
    # XML never holds NUL; UTF-16/32 text always does, and expat would autodetect it behind our check.
    if "\x00" in text:
        raise EnvelopeError("XML contains NUL")
    if _DTD.search(text):
        raise EnvelopeError("XML with a DTD or entity declaration is refused")
    parser = ET.XMLParser(target=_RefuseDoctype())  # noqa: S314 - DTDs are refused, twice
    try:
        parser.feed(data)
        root: ET.Element = parser.close()
    except ET.ParseError as exc:
        raise EnvelopeError("malformed XML") from exc
    return root


class _RefuseDoctype(ET.TreeBuilder):
    """The parser's own word on a DTD, whatever encoding hid it from the text check."""

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise EnvelopeError("XML with a DTD or entity declaration is refused")


def _fields(element: ET.Element, depth: int) -> XmlFields:
    if depth > _MAX_DEPTH:
        raise EnvelopeError("XML nested too deeply")
    texts: dict[str, str] = {}
    elements: list[tuple[str, XmlFields]] = []
    for node in element:
        if len(node):
            elements.append((node.tag, _fields(node, depth + 1)))
        else:
            texts.setdefault(node.tag, (node.text or "").strip())
    return XmlFields(element.tag, MappingProxyType(texts), tuple(elements))


def _xml_envelope(root: ET.Element) -> WecomEnvelope:
    encrypt = _text(root, "Encrypt")
    if encrypt is None:
        raise EnvelopeError("Encrypt missing from the XML envelope")
    return WecomEnvelope(encrypt, _text(root, "ToUserName"), _text(root, "AgentID"))


def _text(root: ET.Element, tag: str) -> str | None:
    node = root.find(tag)
    if node is None:
        return None
    return (node.text or "").strip() or None


def _json_envelope(body: bytes) -> WecomEnvelope:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("malformed JSON") from exc
    if not isinstance(parsed, dict):
        raise EnvelopeError("JSON envelope is not an object")
    folded = {str(key).lower(): value for key, value in parsed.items()}
    encrypt = folded.get("encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        raise EnvelopeError("encrypt missing from the JSON envelope")
    return WecomEnvelope(encrypt, _hint(folded.get("tousername")), _hint(folded.get("agentid")))


def _hint(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise EnvelopeError("envelope hint has the wrong type")
