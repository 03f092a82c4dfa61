"""WeCom adapter: signed query, POST envelope (XML or JSON) and the URL-check reply."""

from __future__ import annotations

import re
import string
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Literal, NamedTuple, overload

import orjson

from handlers.errors import MalformedMessage
from handlers.events.xmlsafe import parse_untrusted
from receiver.callbacks.crypto import Opened
from receiver.errors import EnvelopeError, SignatureError, rejection

__all__ = ["WecomEnvelope", "parse_envelope", "signed_query", "url_verification_reply"]

_LEADING = b" \t\r\n\xef\xbb\xbf"  # whitespace and a UTF-8 byte-order mark

# The envelope as WeCom sends it: <xml> holding ToUserName, Encrypt and AgentID in that order (the first and
# last optional), each a CDATA section or plain text of the characters ids and base64 use, with XML whitespace
# between elements. A body of exactly this shape is well-formed XML holding no markup but these elements, so
# the groups of one match are what the XML parser gives; any other body, however valid, goes to the parser.
# Encrypt's CDATA (some 600 bytes of base64) is scanned up to its first "]" and its alphabet checked after the
# match, by ``bytes.translate`` in C: the regex engine tests a character class byte by byte in its
# interpreter, while ``[^\]]*`` (one excluded character) runs in a tight loop.
_SPACE = rb"[ \t\r\n]*"
_ALPHABET = (string.ascii_letters + string.digits + "+/=_.@-").encode()
_CHARACTERS = rb"[" + re.escape(_ALPHABET) + rb"]*"
_VALUE = rb"(?:<!\[CDATA\[(" + _CHARACTERS + rb")\]\]>|(" + _CHARACTERS + rb"))"
_ENCRYPT = rb"(?:<!\[CDATA\[([^\]]*)\]\]>|(" + _CHARACTERS + rb"))"  # its CDATA is checked by _in_alphabet
_WECOM_SHAPED = re.compile(
    _SPACE
    + rb"<xml>"
    + _SPACE
    + rb"(?:<ToUserName>" + _VALUE + rb"</ToUserName>" + _SPACE + rb")?"
    + rb"<Encrypt>" + _ENCRYPT + rb"</Encrypt>" + _SPACE
    + rb"(?:<AgentID>" + _VALUE + rb"</AgentID>" + _SPACE + rb")?"
    + rb"</xml>"
    + _SPACE
)  # fmt: skip


def _in_alphabet(value: bytes) -> bool:
    """Whether ``value`` holds only the characters of ``_ALPHABET``."""
    return not value.translate(None, _ALPHABET)


class WecomEnvelope(NamedTuple):
    """The outer POST body. ``to_user_name`` and ``agent_id`` are hints; None when absent or empty."""

    encrypt: str
    to_user_name: str | None
    agent_id: str | None


def parse_envelope(body: bytes) -> WecomEnvelope:
    """Parse the POST body: XML ``<xml><Encrypt/>…`` or JSON ``{"encrypt": …}``, by its first byte."""
    start = body.lstrip(_LEADING)[:1]
    if start == b"<":
        shaped = _WECOM_SHAPED.fullmatch(body)
        envelope = _wecom_shaped(shaped) if shaped is not None else None
        if envelope is not None:
            return envelope
        try:
            return _xml_envelope(parse_untrusted(body))
        except MalformedMessage as exc:
            raise rejection(exc) from None
    if start == b"{":
        return _json_envelope(body)
    raise EnvelopeError("callback body is neither XML nor JSON")


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


def _wecom_shaped(shaped: re.Match[bytes]) -> WecomEnvelope | None:
    """The envelope from a match of ``_WECOM_SHAPED``: a CDATA group and a text group for each element (an
    empty element's text is None, as the XML parser's route gives it). None when Encrypt's CDATA holds a
    character outside ``_ALPHABET``: such a body goes to the XML parser."""
    to_cdata, to_text, encrypt_cdata, encrypt_text, agent_cdata, agent_text = shaped.groups()
    if encrypt_cdata and not _in_alphabet(encrypt_cdata):
        return None
    encrypt = encrypt_cdata or encrypt_text
    if not encrypt:
        raise EnvelopeError("Encrypt missing from the XML envelope")
    to_user = to_cdata or to_text
    agent = agent_cdata or agent_text
    return WecomEnvelope(encrypt.decode(), to_user.decode() if to_user else None, agent.decode() if agent else None)


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
