"""The console's frame: who may see a page (signed in, or a loopback caller when no admin token is set), CSRF on
every POST, rendering a template in the caller's language, and one clear error page for whatever goes wrong.

Every console handler is ``page`` (GET) or ``action`` (POST) of ``(request, ctx) -> response``.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from handlers.store import console as store
from receiver.api.guard import answer_names, is_loopback
from receiver.console import i18n
from receiver.console.session import LOGIN_COOKIE, SESSION_COOKIE, new_nonce
from receiver.errors import http_status
from receiver.keys import CONSOLE, POOL, SETTINGS

log = logging.getLogger("corpsync.console")

PAGE_SIZE = 50  # rows of any console list per page
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Ctx:
    """One request's console context: language, session nonce (None before sign-in) and the cookie to set."""

    lang: str
    nonce: str | None
    new_session: str | None = None  # a cookie to set (a loopback caller's first visit)

    @property
    def text(self) -> dict[str, str]:
        return i18n.translator(self.lang)


Handler = Callable[[web.Request, Ctx], Awaitable[web.StreamResponse]]


def secure(request: web.Request) -> bool:
    """Whether the browser reached us over HTTPS (directly, or through a proxy that says so)."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/console", httponly=True, samesite="Strict", secure=secure(request)
    )


def _hostname(authority: str) -> str | None:
    try:
        return urlsplit("//" + authority).hostname
    except ValueError:
        return None


def loopback_refusal(request: web.Request) -> str | None:
    """Without an admin token, the API's loopback rule: why this request is refused, None when it may go on."""
    if not is_loopback(request):
        return "loopback_only"
    names = answer_names(request.app[SETTINGS])
    if _hostname(request.host) not in names:
        return "forbidden"
    origin = request.headers.get("Origin")
    if origin is not None:
        scheme, authority = urlsplit(origin)[:2] if "://" in origin else ("", "")
        if scheme not in ("http", "https") or _hostname(authority) not in names:
            return "forbidden"
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return "forbidden"
    return None


def render(request: web.Request, ctx: Ctx, template: str, status: int = 200, **values: Any) -> web.Response:
    console = request.app[CONSOLE]
    other = "en" if ctx.lang == "zh" else "zh"
    query = {k: v for k, v in request.query.items() if k not in ("lang", "msg")}
    body = console.templates.get_template(template).render(
        t=ctx.text,
        lang=ctx.lang,
        other_lang=other,
        switch_url=f"{request.path}?{urlencode({**query, 'lang': other})}",
        csrf=None if ctx.nonce is None else console.sessions.csrf(ctx.nonce),
        signed_in=ctx.nonce is not None and request.app[SETTINGS].admin_token is not None,
        message=ctx.text.get("msg_" + request.query.get("msg", ""), None),
        **values,
    )
    response = web.Response(text=body, status=status, content_type="text/html", headers=HEADERS)
    if "lang" in request.query and request.query["lang"] in i18n.LANGS:
        response.set_cookie(i18n.LANG_COOKIE, ctx.lang, max_age=365 * 86400, path="/console", samesite="Strict")
    if ctx.new_session is not None:
        set_cookie(response, request, SESSION_COOKIE, ctx.new_session, request.app[CONSOLE].sessions.seconds)
    return response


def problem(request: web.Request, ctx: Ctx, status: int, key: str, detail: str | None = None) -> web.Response:
    """The one error page: a status and one line saying what went wrong."""
    return render(request, ctx, "error.html", status, heading=ctx.text.get(key, key), detail=detail)


def redirect(location: str, **query: str) -> web.Response:
    target = f"{location}?{urlencode(query)}" if query else location
    return web.Response(status=303, headers={**HEADERS, "Location": target})


def _context(request: web.Request) -> Ctx:
    console = request.app[CONSOLE]
    nonce = console.sessions.nonce_of(request.cookies.get(SESSION_COOKIE), console.clock())
    return Ctx(i18n.pick(request), nonce)


async def run_handler(handler: Handler, request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """The handler, with every error it raises answered as one line on the error page."""
    try:
        return await handler(request, ctx)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(request, ctx, exc.status, "bad_request" if exc.status < 500 else "internal", exc.reason)
    except Exception as exc:
        status = http_status(exc)
        if status is None:  # a bug: log its type and place, never its message (it may hold personal data)
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
            log.error("console handler failed", extra={"action": "console_error", "error": type(exc).__name__,
                                                       "at": where})  # fmt: skip
            return problem(request, ctx, 500, "internal")
        if status == 503:
            return problem(request, ctx, 503, "unavailable")
        return problem(request, ctx, status, "not_found" if status == 404 else "bad_request", str(exc))


def _refused_without_token(request: web.Request, ctx: Ctx) -> web.StreamResponse | None:
    """With no admin token set, the API's loopback rule: its 403 for a foreign Host, Origin or site, else None."""
    if request.app[SETTINGS].admin_token is not None:
        return None
    refusal = loopback_refusal(request)
    return None if refusal is None else problem(request, ctx, 403, refusal)


def _unless_signed_out(handler: Handler, ended: Callable[[], web.StreamResponse]) -> Handler:
    """``handler``, or ``ended()`` when the request's session was signed out (in any process). Without an admin
    token nobody signs in, so nothing is signed out."""

    async def checked(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        token_set = request.app[SETTINGS].admin_token is not None
        if token_set and ctx.nonce is not None and await store.signed_out(request.app[POOL], ctx.nonce):
            return ended()
        return await handler(request, ctx)

    return checked


def page(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A GET page: signed in (else to the sign-in form), or a loopback caller when no admin token is set."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        ctx = _context(request)
        refused = _refused_without_token(request, ctx)
        if refused is not None:
            return refused
        if request.app[SETTINGS].admin_token is None:
            if ctx.nonce is None:  # the loopback console needs no sign-in, but its forms need a session
                ctx.nonce = new_nonce()
                ctx.new_session = request.app[CONSOLE].sessions.issue(request.app[CONSOLE].clock(), ctx.nonce)
        elif ctx.nonce is None:
            return redirect("/console/login")
        return await run_handler(_unless_signed_out(handler, lambda: redirect("/console/login")), request, ctx)

    return guarded


def action(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A POST: the same access as ``page``, plus a session cookie and the form's CSRF token, or 403."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        ctx = _context(request)
        refused = _refused_without_token(request, ctx)
        if refused is not None:
            return refused
        if ctx.nonce is None:
            return problem(request, ctx, 403, "not_signed_in")
        form = await request.post()
        given = form.get("csrf")
        if not isinstance(given, str) or not request.app[CONSOLE].sessions.csrf_ok(ctx.nonce, given):
            log.info("console form refused", extra={"action": "console_csrf_refused", "path": request.path})
            return problem(request, ctx, 403, "csrf_failed")
        return await run_handler(
            _unless_signed_out(handler, lambda: problem(request, ctx, 403, "not_signed_in")), request, ctx
        )

    return guarded


def login_nonce(request: web.Request) -> str | None:
    nonce = request.cookies.get(LOGIN_COOKIE)
    return nonce if nonce and len(nonce) <= 64 and nonce.isascii() else None
