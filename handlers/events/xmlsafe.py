"""The one parser for untrusted XML (WeCom envelopes and decrypted messages): UTF-8 only, no DTD, bounded depth."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from handlers.errors import MalformedMessage

__all__ = ["DTD_DECLARATION", "MAX_DEPTH", "check_depth", "parse_untrusted"]

# No WeCom payload declares a DTD; refusing one up front rules out entity expansion (billion laughs) and
# external entities (XXE) whatever the parser's defaults are.
DTD_DECLARATION = re.compile(r"<!\s*(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_DTD_REFUSED = "XML with a DTD or entity declaration"

MAX_DEPTH = 16
"""Deepest element (the root is 0) a tree walker descends to. WeCom's deepest is xml/ExtAttr/Item/Text/Value."""


def parse_untrusted(data: bytes | str) -> ET.Element:
    """Parse one XML document; MalformedMessage on anything but well-formed UTF-8 XML without a DTD.

    Three independent guards: the text is strict UTF-8 without NUL (UTF-16/32 always holds NUL, and expat
    would autodetect it behind the text check), the text holds no declaration, and the parser itself
    refuses a DOCTYPE. The parser is fed text, so expat reads UTF-8 whatever the XML declaration says.
    Walkers of the returned tree bound their depth with :func:`check_depth`.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage("XML is not UTF-8") from None
    else:
        text = data
    if "\x00" in text:
        raise MalformedMessage("XML contains NUL")
    if DTD_DECLARATION.search(text):
        raise MalformedMessage(_DTD_REFUSED)
    parser = ET.XMLParser(target=_RefuseDoctype())  # noqa: S314 - DTDs are refused, twice; the text is UTF-8
    try:
        parser.feed(text)
        root: ET.Element = parser.close()
    except ET.ParseError as exc:  # expat's message: a reason and a position, never document content
        raise MalformedMessage(f"malformed XML: {exc}") from None
    return root


def check_depth(depth: int) -> None:
    """Raise MalformedMessage when a walker reaches an element deeper than :data:`MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        raise MalformedMessage("XML nested too deeply")


class _RefuseDoctype(ET.TreeBuilder):
    """The parser's own word on a DTD, whatever hid it from the text check."""

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise MalformedMessage(_DTD_REFUSED)
