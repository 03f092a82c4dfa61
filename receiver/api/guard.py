"""Who may call ``/api``, and how its errors look: every /api handler is wrapped by ``endpoint``.

With ``CORPSYNC_ADMIN_TOKEN`` set, a request needs ``Authorization: Bearer <token>`` (compared in constant
time) or gets 401. Without a token the API answers only loopback peers (403 otherwise); a request that
came through a proxy (``Forwarded`` / ``X-Forwarded-For`` / ``X-Real-IP``) is not taken as loopback, since
the proxy's own address says nothing about the caller; and since a browser on this machine is a loopback peer
too, a foreign ``Host`` or ``Origin``, a cross-site fetch and a write without a JSON body are refused.
Errors are JSON: ``{"error": ..., "field"?: ...}``.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from handlers.errors import UnknownCorp
from receiver.errors import error_json
from receiver.keys import SETTINGS
from receiver.settings import Settings

log = logging.getLogger("corpsync.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_ADDRESS = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104 - names of "every address", compared only
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_ONLY = "the API answers loopback requests only until CORPSYNC_ADMIN_TOKEN is set"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def problem(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    return reply({"error": message, **extra}, status, headers)


def http_problem(error: web.HTTPException) -> web.Response:
    """An aiohttp HTTP error (413, 404, 405, ...) as the API's JSON error, keeping its Allow or challenge."""
    headers = {k: v for k, v in error.headers.items() if k.lower() in {"allow", "www-authenticate"}}
    return problem(error.status, error.reason.lower(), headers or None)


def is_loopback(request: web.Request) -> bool:
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    remote = request.remote
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def answer_names(settings: Settings) -> frozenset[str]:
    """The host names this service answers to: loopback's, the listen address, CORPSYNC_PUBLIC_URL's host."""
    names = set(LOCAL_NAMES)
    if settings.host not in ANY_ADDRESS:
        names.add(settings.host.lower().strip("[]"))
    public = urlsplit(settings.public_url).hostname if settings.public_url else None
    if public:
        names.add(public)
    return frozenset(names)


def _hostname(authority: str) -> str | None:
    """The host name of a ``Host`` header or an origin's authority ("[::1]:8080" → "::1"), None if unreadable."""
    try:
        return urlsplit("//" + authority).hostname
    except ValueError:
        return None


def _local_caller(request: web.Request, settings: Settings) -> web.Response | None:
    """Without a token the API trusts loopback callers, so it makes sure the caller is not a browser page of
    another site: a foreign Host (DNS rebinding) or Origin, a cross-site fetch, or a write a plain HTML form
    could send (anything but a JSON body needs no CORS preflight) is refused."""
    if not is_loopback(request):
        return problem(403, LOOPBACK_ONLY)
    names = answer_names(settings)
    if _hostname(request.host) not in names:
        return problem(403, "the Host header names no address this service answers as (set CORPSYNC_PUBLIC_URL)")
    origin = request.headers.get("Origin")
    if origin is not None:
        scheme, authority = urlsplit(origin)[:2] if "://" in origin else ("", "")
        if scheme not in ("http", "https") or _hostname(authority) not in names:
            return problem(403, "cross-site requests are refused; set CORPSYNC_ADMIN_TOKEN to call /api from a page")
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return problem(403, "cross-site requests are refused; set CORPSYNC_ADMIN_TOKEN to call /api from a page")
    if request.method in WRITES and request.content_type != "application/json":
        return problem(415, "a write needs Content-Type: application/json")
    return None


def authorize(request: web.Request) -> web.Response | None:
    """None when the caller may go on; else the 401 / 403 answer."""
    settings = request.app[SETTINGS]
    token = settings.admin_token
    if token is None:
        return _local_caller(request, settings)
    challenge = {"WWW-Authenticate": 'Bearer realm="corpsync"'}
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return problem(401, "missing bearer token", challenge)
    # aiohttp decodes a header's bytes as UTF-8 with surrogateescape: encode them back the same way, or a token
    # that is not UTF-8 raises here (a 500) instead of being wrong
    if not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.reveal().encode()):
        return problem(401, "wrong bearer token", challenge)
    return None


def _holds_nul(request: web.Request) -> bool:
    """PostgreSQL text cannot hold NUL: an id, cursor or filter with one can match nothing, so it is refused."""
    return "\x00" in request.path or "\x00" in request.query_string or "%00" in request.raw_path


def endpoint(handler: Handler) -> Handler:
    """``handler`` behind ``authorize``, with the API's errors mapped to JSON answers (routes: receiver.app)."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        denied = authorize(request)
        if denied is not None:
            return denied
        if _holds_nul(request):
            return problem(400, "NUL is not allowed in a path or query", field="path")
        try:
            return await handler(request)
        except web.HTTPException as exc:  # e.g. 413 from reading an oversized body: JSON, as every API error
            if exc.status < 400:
                raise
            return http_problem(exc)
        except Exception as exc:
            mapped = error_json(exc)
            if mapped is not None:
                status, body = mapped
                if isinstance(exc, UnknownCorp):
                    body["corp"] = request.match_info.get("corp")
                elif status == 503:
                    log.warning(
                        "api store unavailable", extra={"action": "api_unavailable", "error": type(exc).__name__}
                    )
                return reply(body, status)
            # a bug: answer JSON; log type and place (messages may hold personal data)
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
            log.error("api handler failed", extra={"action": "api_error", "error": type(exc).__name__, "at": where})
            return problem(500, "internal error")

    return guarded


async def warn_if_loopback_only(app: web.Application) -> None:
    """Say once, at start-up, that /api answers loopback callers only (no admin token is set)."""
    if app[SETTINGS].admin_token is None:
        log.warning(
            "api answers loopback only: no admin token",
            extra={"action": "api_loopback_only", "hint": "set CORPSYNC_ADMIN_TOKEN to call /api from elsewhere"},
        )
