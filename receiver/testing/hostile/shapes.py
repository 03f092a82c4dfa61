"""The requests of ``receiver.testing.hostile`` as bytes: the receiver under attack (``Target``), its routes, and the
helpers every category builds with — a request line and headers as sent, a validly signed callback around any
ciphertext, an /api request with or without the token."""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from Crypto.Cipher import AES

from handlers.config import AppConfig, DingTalkCorp, SuiteAuth, WecomInnerCorp, WecomProxyCorp
from receiver.callbacks.crypto import CallbackCipher, new_nonce
from receiver.testing.harness import callback_keys
from receiver.testing.hostile.payloads import MEMBERS, dingtalk_event, suite_info, wecom_event

CALLBACKS = ("wecom", "wecom-suite", "wecom-suite-data", "dingtalk")
APIS = ("api", "api-anonymous")  # with the bearer token, and without one
PROBES = ("healthz", "readyz", "metrics")
ROUTES = (*CALLBACKS, *APIS, *PROBES)
MAX_BODY = 1024 * 1024  # the receiver's default CORPSYNC_MAX_BODY_BYTES
Query = Sequence[tuple[str, str | bytes]] | bytes  # pairs to percent-encode, or a query string as sent


@dataclass(frozen=True, slots=True, repr=False)
class HostileRequest:
    """One request as bytes. ``pieces`` > 1: the request goes in that many pieces, ``pause`` seconds apart.
    ``stall``: the head promises more body than is sent, and the connection then stays open and silent."""

    category: str
    route: str
    variant: str
    head: bytes
    body: bytes = b""
    pieces: int = 1
    pause: float = 0.0
    stall: bool = False

    @property
    def method(self) -> bytes:
        return self.head.split(b" ", 1)[0]

    @property
    def label(self) -> str:
        return f"{self.category} {self.route} ({self.variant})"

    def __repr__(self) -> str:
        return f"HostileRequest({self.label}, {len(self.head) + len(self.body)} bytes)"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A callback URL and the credentials that sign for it."""

    path: str
    extra: tuple[tuple[str, str], ...]  # query parameters of the URL itself (the data URL's corpid)
    token: str
    aes_key: str
    receive_id: str
    dingtalk: bool

    @property
    def cipher(self) -> CallbackCipher:
        return CallbackCipher(self.token, self.aes_key)


@dataclass(frozen=True, slots=True)
class Target:
    """The receiver under attack: a WeCom self-built corp, a DingTalk corp and a suite of its app dir."""

    wecom: WecomInnerCorp
    dingtalk: DingTalkCorp
    suite: SuiteAuth
    tenant_corp_id: str  # a corp of the suite's (configured when the app dir has one)
    admin_token: str | None

    @classmethod
    def of(cls, config: AppConfig, admin_token: str | None = None) -> Target:
        """The first corp of each kind in ``config``; ``admin_token`` is the one the receiver was given."""
        wecom = next(c for c in config.corps.values() if isinstance(c, WecomInnerCorp))
        dingtalk = next(c for c in config.corps.values() if isinstance(c, DingTalkCorp))
        suite = next(iter(config.auths.values()))
        tenants = [c.corp_id for c in config.corps.values() if isinstance(c, WecomProxyCorp) and c.auth is suite]
        return cls(wecom, dingtalk, suite, tenants[0] if tenants else "wwhostiletenant", admin_token)

    def endpoint(self, route: str) -> Endpoint:
        if route == "wecom":
            keys = callback_keys(self.wecom)
            return Endpoint(f"/callback/wecom/{self.wecom.name}", (), keys.token.reveal(), keys.aes_key.reveal(),
                            self.wecom.corp_id, dingtalk=False)  # fmt: skip
        if route == "dingtalk":
            keys = callback_keys(self.dingtalk)
            return Endpoint(f"/callback/dingtalk/{self.dingtalk.name}", (), keys.token.reveal(),
                            keys.aes_key.reveal(), self.dingtalk.app_key, dingtalk=True)  # fmt: skip
        suite, path = self.suite, f"/callback/wecom-suite/{self.suite.name}"
        if route == "wecom-suite":
            return Endpoint(path, (), suite.token.reveal(), suite.aes_key.reveal(), suite.suite_id, dingtalk=False)
        return Endpoint(path + "/data", (("corpid", self.tenant_corp_id),), suite.token.reveal(),
                        suite.aes_key.reveal(), self.tenant_corp_id, dingtalk=False)  # fmt: skip

    def message(self, route: str, rng: random.Random) -> bytes:
        """A well-formed event of the kind ``route`` receives."""
        if route == "dingtalk":
            return dingtalk_event(rng, self.dingtalk.corp_id)
        if route == "wecom-suite":
            return suite_info(rng, self.suite.suite_id)
        return wecom_event(rng, self.wecom.corp_id if route == "wecom" else self.tenant_corp_id)


Builder = Callable[[Target, str, random.Random], HostileRequest]
"""How a category makes one request for a route."""


# -- building requests ---------------------------------------------------------------------------------


def _query_string(query: Query) -> bytes:
    if isinstance(query, bytes):
        return query
    parts = []
    for name, value in query:
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        parts.append(quote(name, safe="") + "=" + quote(raw, safe=""))
    return "&".join(parts).encode()


def request(
    category: str,
    route: str,
    variant: str,
    method: str,
    path: str | bytes,
    query: Query = (),
    body: bytes = b"",
    *,
    headers: Sequence[tuple[str, str | bytes]] = (),
    length: str | None = None,
    pieces: int = 1,
    pause: float = 0.0,
    stall: bool = False,
) -> HostileRequest:
    """A request with ``Host`` and ``Connection: close``; ``Content-Length`` is the body's unless ``length``
    gives it (or "" leaves it out)."""
    target = path if isinstance(path, bytes) else path.encode()
    qs = _query_string(query)
    if qs:
        target += b"?" + qs
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    for name, value in headers:
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()))
    declared = str(len(body)) if length is None else length
    if declared and not any(name.lower() == "transfer-encoding" for name, _ in headers):
        lines.append(b"Content-Length: " + declared.encode())
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    return HostileRequest(category, route, variant, head, body, pieces, pause, stall)


def _timestamp(ep: Endpoint) -> str:
    return str(int(time.time() * 1000)) if ep.dingtalk else str(int(time.time()))


def _envelope(ep: Endpoint, encrypt: str) -> bytes:
    if ep.dingtalk:  # json, not orjson: it writes a lone surrogate as an escape instead of failing
        return json.dumps({"encrypt": encrypt}).encode()
    return (
        f"<xml><ToUserName><![CDATA[{ep.receive_id}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        "<AgentID><![CDATA[]]></AgentID></xml>"
    ).encode("utf-8", "surrogatepass")


def signed_parts(
    ep: Endpoint, encrypt: str, *, verify: bool = False, timestamp: str | None = None, nonce: str | None = None
) -> tuple[str, list[tuple[str, str | bytes]], bytes]:
    """(method, query, body) of a request carrying ``encrypt`` — any text — under a valid signature.
    ``verify``: WeCom's GET URL check (the ciphertext is the ``echostr``); else the POST of an event."""
    timestamp = timestamp if timestamp is not None else _timestamp(ep)
    nonce = nonce if nonce is not None else new_nonce()
    signature = ep.cipher.signature(timestamp, nonce, encrypt)
    query: list[tuple[str, str | bytes]] = [*ep.extra]
    if ep.dingtalk:
        query.append(("signature", signature))
    query += [("msg_signature", signature), ("timestamp", timestamp), ("nonce", nonce)]
    if verify:
        return "GET", [*query, ("echostr", encrypt)], b""
    return "POST", query, _envelope(ep, encrypt)


def sealed(ep: Endpoint, message: bytes) -> str:
    """``message`` encrypted for the endpoint's receive-id with its key, framed and padded as the platforms do."""
    return ep.cipher.encrypt(message, ep.receive_id)


def framed(ep: Endpoint, frame: bytes) -> str:
    """Base64 AES-CBC of ``frame`` (a multiple of 16 bytes) as is: no framing, no padding added."""
    key = base64.b64decode(ep.aes_key + "=")
    return base64.b64encode(AES.new(key, AES.MODE_CBC, iv=key[:16]).encrypt(frame)).decode()


def signed(
    category: str,
    route: str,
    variant: str,
    ep: Endpoint,
    encrypt: str,
    rng: random.Random,
    *,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> HostileRequest:
    """A validly signed request around ``encrypt``: the POST of an event, or for WeCom sometimes the GET check."""
    verify = not ep.dingtalk and rng.random() < 0.25
    method, query, body = signed_parts(ep, encrypt, verify=verify, timestamp=timestamp, nonce=nonce)
    return request(category, route, variant + (" as echostr" if verify else ""), method, ep.path, query, body)


def api_headers(target: Target, route: str) -> list[tuple[str, str | bytes]]:
    if route == "api":
        return [("Authorization", f"Bearer {target.admin_token or 'no-token-configured'}")]
    return []


def api(
    target: Target,
    category: str,
    route: str,
    variant: str,
    method: str,
    path: str | bytes,
    query: Query = (),
    body: bytes = b"",
) -> HostileRequest:
    """An /api request: with the bearer token on the ``api`` route, a JSON content type on a write."""
    headers = api_headers(target, route)
    if method in ("POST", "PUT"):
        headers.append(("Content-Type", "application/json"))
    return request(category, route, variant, method, path, query, body, headers=headers)


def corp_path(target: Target, rng: random.Random) -> str:
    return f"/api/corps/{rng.choice([target.wecom.name, target.dingtalk.name])}"


def member_path(target: Target, rng: random.Random) -> str:
    """A member of the WeCom corp that the generator's own events create (sometimes not there yet)."""
    return f"/api/corps/{target.wecom.name}/members/{rng.choice(MEMBERS)}"


def probe(category: str, route: str, variant: str, query: Query = (), body: bytes = b"") -> HostileRequest:
    return request(category, route, variant, "GET", f"/{route}", query, body)
