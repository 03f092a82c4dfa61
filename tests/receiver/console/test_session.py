"""Console sessions and CSRF tokens: signed, expiring, bound to their session; and the browser-or-skip rule."""

from __future__ import annotations

import pytest

from receiver.console.session import Sessions, token_matches
from tests.support import browser


def test_a_session_is_valid_until_it_expires() -> None:
    sessions = Sessions(b"secret", seconds=60)
    cookie = sessions.issue(1000.0, "nonce1")
    assert sessions.nonce_of(cookie, 1059.0) == "nonce1"
    assert sessions.nonce_of(cookie, 1060.0) is None


def test_a_session_of_another_key_or_edited_is_refused() -> None:
    cookie = Sessions(b"secret").issue(1000.0, "nonce1")
    assert Sessions(b"other").nonce_of(cookie, 1000.0) is None
    expires, _, mac = cookie.split(".")
    assert Sessions(b"secret").nonce_of(f"{expires}.nonce2.{mac}", 1000.0) is None
    for junk in ("", "a.b", "x.y.z", "1.2.3.4", "é.b.c", "9" * 300):
        assert Sessions(b"secret").nonce_of(junk, 1000.0) is None


def test_a_csrf_token_belongs_to_one_session_and_one_kind_of_form() -> None:
    sessions = Sessions(b"secret")
    assert sessions.csrf_ok("n1", sessions.csrf("n1"))
    assert not sessions.csrf_ok("n2", sessions.csrf("n1"))
    assert not sessions.csrf_ok("n1", sessions.login_csrf("n1"))  # a sign-in form's token posts nothing else
    assert sessions.csrf_ok("n1", sessions.login_csrf("n1"), login=True)
    assert not sessions.csrf_ok("n1", None) and not sessions.csrf_ok("n1", "")


def test_the_token_comparison_takes_any_text() -> None:
    assert token_matches("tok", "tok")
    assert not token_matches("tok\udcff", "tok") and not token_matches("令牌", "tok")


def test_a_missing_browser_skips_outside_ci_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr("os.path.exists", lambda path: False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        browser.chromium_paths()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        browser.chromium_paths()
