"""Sign-in and sign-out. ``GET /console/login`` shows a form with one password field named ``token`` (and its
CSRF token, bound to a short-lived cookie); ``POST /console/login`` compares the token with
CORPSYNC_ADMIN_TOKEN in constant time and sets the session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS).
Without an admin token there is nothing to sign into: the console answers loopback callers (``base.page``)."""

from __future__ import annotations

import logging

from aiohttp import web

from handlers.store import console as store
from receiver.console import i18n
from receiver.console.base import (
    Ctx,
    action,
    login_nonce,
    problem,
    redirect,
    render,
    run_handler,
    set_cookie,
)
from receiver.console.session import LOGIN_COOKIE, SESSION_COOKIE, new_nonce, token_matches
from receiver.keys import CONSOLE, POOL, SETTINGS

log = logging.getLogger("corpsync.console")

LOGIN_SECONDS = 1800  # how long a sign-in form stays valid
MAX_TOKEN = 1024  # a longer token field is not compared
# Wrong tokens given to any process sharing the database within THROTTLE_SECONDS before sign-in is held off: a
# guesser gets 10 a minute however many processes it spreads over, not thousands a second.
THROTTLE_FAILURES = 10
THROTTLE_SECONDS = 60.0


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
    return await run_handler(_login, request, Ctx(i18n.pick(request), None))


async def _login(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    token = request.app[SETTINGS].admin_token
    if token is None:
        return redirect("/console")
    sessions = request.app[CONSOLE].sessions
    form = await request.post()
    nonce, given_csrf = login_nonce(request), form.get("csrf")
    if nonce is None or not isinstance(given_csrf, str) or not sessions.csrf_ok(nonce, given_csrf, login=True):
        log.info("console sign-in form refused", extra={"action": "console_csrf_refused", "path": request.path})
        return problem(request, ctx, 403, "csrf_failed")
    console, pool = request.app[CONSOLE], request.app[POOL]
    if await store.sign_in_failures(pool, console.clock(), THROTTLE_SECONDS) >= THROTTLE_FAILURES:
        log.warning("console sign-in throttled", extra={"action": "console_login_throttled"})
        return _form(request, ctx, status=429, error=ctx.text["too_many"])
    given = form.get("token")
    if not isinstance(given, str) or len(given) > MAX_TOKEN or not token_matches(given, token.reveal()):
        await store.sign_in_failed(pool, console.clock(), THROTTLE_SECONDS)
        log.warning("console sign-in failed", extra={"action": "console_login_failed"})
        return _form(request, ctx, status=401, error=ctx.text["wrong_token"])
    log.info("console signed in", extra={"action": "console_login"})
    response = redirect("/console")
    set_cookie(response, request, SESSION_COOKIE, sessions.issue(console.clock(), new_nonce()), sessions.seconds)
    response.del_cookie(LOGIN_COOKIE, path="/console")
    return response


@action
async def logout(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """Ends the session in every process (its cookie, if kept or stolen, is refused from now on), not only here.
    Without an admin token there is no sign-in to end: the loopback console hands out a new session."""
    signed_in = request.app[SETTINGS].admin_token is not None
    if signed_in and ctx.nonce is not None:
        console = request.app[CONSOLE]
        now = console.clock()
        await store.sign_out(request.app[POOL], ctx.nonce, now + console.sessions.seconds, now)
    target = "/console/login" if signed_in else "/console"
    response = redirect(target, msg="signed_out")
    response.del_cookie(SESSION_COOKIE, path="/console")
    return response
