"""``subscribers/<Name>``: webhook subscribers of the change feed (``subscribers.Webhook``).

``<Name>.json``: ``{"url", "secret" (whsec_…), "events"?: [type pattern], "corps"?: [corp name],
"personalFields"?: true | [field]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from handlers.config import Secret, Subscriber
from handlers.errors import ConfigError
from handlers.feed import events, signing
from receiver.appdir.reading import Node, element_names, read_element, read_json

WEBHOOK_TYPE = "subscribers.Webhook"
KEYS = ("url", "secret", "events", "corps", "personalFields")
MAX_ITEMS = 100  # patterns or corps one subscriber may list


def _strings(doc: Node, key: str) -> tuple[str, ...] | None:
    raw: Any = doc.data.get(key)
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        doc.fail(key, "expected a list of non-empty strings")
    if not raw or len(raw) > MAX_ITEMS:
        doc.fail(key, f"must list 1 to {MAX_ITEMS} items (leave it out for all)")
    return tuple(dict.fromkeys(raw))


def subscriber(name: str, title: str, doc: Node, corps: Mapping[str, object]) -> Subscriber:
    doc.check_keys(KEYS, strict=True)
    url = doc.text("url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        doc.fail("url", "must be an http:// or https:// URL")
    secret = doc.text("secret")
    try:
        signing.secret_key(secret)
    except ValueError as exc:
        doc.fail("secret", str(exc))
    patterns = _strings(doc, "events")
    for pattern in patterns or ():
        try:
            events.type_pattern(pattern)
        except ValueError as exc:
            doc.fail("events", f"{pattern!r}: {exc}")
    wanted = _strings(doc, "corps")
    for corp in wanted or ():
        if corp not in corps and "/" not in corp:  # "<Auth>/<corpid>": a suite tenant, known only at run time
            doc.fail("corps", f"no corp named {corp!r} in corps/")
    raw: Any = doc.data.get("personalFields", False)
    if not isinstance(raw, bool) and not (isinstance(raw, list) and all(isinstance(v, str) for v in raw)):
        doc.fail("personalFields", "expected true, false or a list of field names")
    try:
        personal = events.personal_fields(raw)
    except ValueError as exc:
        doc.fail("personalFields", str(exc))
    return Subscriber(name, title, url, Secret(secret), patterns, wanted, personal)


def load_subscribers(base: Path, environ: Mapping[str, str], corps: Mapping[str, object]) -> dict[str, Subscriber]:
    found: dict[str, Subscriber] = {}
    for name in element_names(base, "subscribers"):
        element = read_element(base, "subscribers", name, environ)
        if element.type != WEBHOOK_TYPE:
            raise ConfigError(
                f"subscribers/{name}/e.json: type: unknown subscriber type {element.type!r} (expected {WEBHOOK_TYPE})"
            )
        found[name] = subscriber(name, element.title, read_json(base, element.config_file, environ), corps)
    return found
