"""Sign-in and sign-out. ``GET /console/login`` shows a form with one password field named ``token`` (and its
CSRF token, bound to a short-lived cookie); ``POST /console/login`` compares the token with
CORPSYNC_ADMIN_TOKEN in constant time and sets the session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS).
Without an admin token there is nothing to sign into: the console answers loopback callers (``base.page``)."""

from __future__ import annotations

import logging

from aiohttp import web

from receiver.console import i18n
from receiver.console.base import (
    Ctx,
    action,
    login_nonce,
    problem,
    redirect,
    render,
    set_cookie,
)
from receiver.console.session import LOGIN_COOKIE, SESSION_COOKIE, new_nonce, token_matches
from receiver.keys import CONSOLE, SETTINGS

log = logging.getLogger("corpsync.console")

LOGIN_SECONDS = 1800  # how long a sign-in form stays valid
MAX_TOKEN = 1024  # a longer token field is not compared


def _form(request: web.Request, ctx: Ctx, *, status: int = 200, error: str | None = None) -> web.Response:
    nonce = new_nonce()
    response = render(request, ctx, "login.html", status, login_csrf=request.app[CONSOLE].sessions.login_csrf(nonce),
                      error=error)  # fmt: skip
    set_cookie(response, request, LOGIN_COOKIE, nonce, LOGIN_SECONDS)
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    if request.app[SETTINGS].admin_token is None:
        return redirect("/console")
    return _form(request, Ctx(i18n.pick(request), None))


async def login(request: web.Request) -> web.StreamResponse:
    ctx = Ctx(i18n.pick(request), None)
    token = request.app[SETTINGS].admin_token
    if token is None:
        return redirect("/console")
    sessions = request.app[CONSOLE].sessions
    form = await request.post()
    nonce, given_csrf = login_nonce(request), form.get("csrf")
    if nonce is None or not isinstance(given_csrf, str) or not sessions.csrf_ok(nonce, given_csrf, login=True):
        log.info("console sign-in form refused", extra={"action": "console_csrf_refused", "path": request.path})
        return problem(request, ctx, 403, "csrf_failed")
    console = request.app[CONSOLE]
    if not console.sign_in_allowed(console.clock()):
        log.warning("console sign-in throttled", extra={"action": "console_login_throttled"})
        return _form(request, ctx, status=429, error=ctx.text["too_many"])
    given = form.get("token")
    if not isinstance(given, str) or len(given) > MAX_TOKEN or not token_matches(given, token.reveal()):
        console.failed_sign_ins.append(console.clock())
        log.warning("console sign-in failed", extra={"action": "console_login_failed"})
        return _form(request, ctx, status=401, error=ctx.text["wrong_token"])
    log.info("console signed in", extra={"action": "console_login"})
    response = redirect("/console")
    set_cookie(response, request, SESSION_COOKIE, sessions.issue(console.clock(), new_nonce()), sessions.seconds)
    response.del_cookie(LOGIN_COOKIE, path="/console")
    return response


@action
async def logout(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    target = "/console/login" if request.app[SETTINGS].admin_token is not None else "/console"
    response = redirect(target, msg="signed_out")
    response.del_cookie(SESSION_COOKIE, path="/console")
    return response
