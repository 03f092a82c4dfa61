"""Console sessions and CSRF tokens: HMAC-signed, stateless, no I/O (clock and randomness come from the caller).

A session cookie is ``<expires>.<nonce>.<mac>``; its CSRF token is a MAC of the nonce under another label, so a
page of another site can neither read nor forge it. The key is derived from ``CORPSYNC_ADMIN_TOKEN`` (so every
process sharing the token accepts the session, and changing the token signs everyone out), or from a random
secret of the process when no token is set (the loopback-only console).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SESSION_COOKIE = "corpsync_console"
LOGIN_COOKIE = "corpsync_login"  # the nonce a login form's CSRF token is bound to
SESSION_SECONDS = 8 * 3600
_MAX_COOKIE = 200  # a cookie longer than any we issue is not read


def _mac(key: bytes, label: str, *parts: str) -> str:
    digest = hmac.new(key, "|".join((label, *parts)).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


class Sessions:
    """Issue and check session cookies and CSRF tokens under one key."""

    def __init__(self, secret: bytes, *, seconds: int = SESSION_SECONDS) -> None:
        self._key = hmac.new(secret, b"corpsync console session key v1", hashlib.sha256).digest()
        self.seconds = seconds

    def issue(self, now: float, nonce: str) -> str:
        expires = str(int(now) + self.seconds)
        return f"{expires}.{nonce}.{_mac(self._key, 's', expires, nonce)}"

    def nonce_of(self, cookie: str | None, now: float) -> str | None:
        """The nonce of a valid, unexpired session cookie; None for anything else."""
        if not cookie or len(cookie) > _MAX_COOKIE or not cookie.isascii():
            return None
        parts = cookie.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        expires, nonce, mac = parts
        if not hmac.compare_digest(mac.encode(), _mac(self._key, "s", expires, nonce).encode()):
            return None
        return nonce if int(expires) > now else None

    def csrf(self, nonce: str) -> str:
        """The CSRF token of the forms of a session (or of a login form, under its own label)."""
        return _mac(self._key, "c", nonce)

    def login_csrf(self, nonce: str) -> str:
        return _mac(self._key, "l", nonce)

    def csrf_ok(self, nonce: str, given: str | None, *, login: bool = False) -> bool:
        if not given or len(given) > _MAX_COOKIE or not given.isascii():
            return False
        expected = self.login_csrf(nonce) if login else self.csrf(nonce)
        return hmac.compare_digest(given.encode(), expected.encode())


def token_matches(given: str, token: str) -> bool:
    """The sign-in form's token against CORPSYNC_ADMIN_TOKEN, in constant time (any text, never an exception)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode())
