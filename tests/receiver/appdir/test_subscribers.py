"""subscribers/<Name>: webhook subscribers of the change feed, and every mistake as one line naming file + key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handlers.errors import ConfigError
from handlers.feed.events import PERSONAL_FIELDS
from receiver.appdir import load_app_dir

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def write(root: Path, rel: str, doc: Any) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")


def app(root: Path, doc: dict[str, Any], element: dict[str, Any] | None = None) -> Path:
    write(root, "corps/HQ/e.json", {"title": "HQ", "type": "corps.QywxInnerType"})
    write(root, "corps/HQ/HQ.json", {"corpId": "ww1", "agentId": "1", "secret": "s",
                                     "callback": {"token": "t", "encodingAESKey": "a" * 43}})  # fmt: skip
    write(root, "subscribers/HR/e.json", element or {"title": "HR system", "type": "subscribers.Webhook"})
    write(root, "subscribers/HR/HR.json", doc)
    return root


def test_a_webhook_subscriber_is_loaded(tmp_path: Path) -> None:
    doc = {"url": "https://hr.example/hooks/{{HOOK}}", "secret": SECRET, "events": ["member.*", "department.deleted"],
           "corps": ["HQ", "Suite/wwT1"], "personalFields": ["mobile", "email"]}  # fmt: skip
    config = load_app_dir(app(tmp_path, doc), {"HOOK": "x1"})
    sub = config.subscribers["HR"]
    assert (sub.title, sub.url, sub.secret.reveal()) == ("HR system", "https://hr.example/hooks/x1", SECRET)
    assert (sub.events, sub.corps) == (("member.*", "department.deleted"), ("HQ", "Suite/wwT1"))
    assert sub.personal_fields == frozenset({"mobile", "email"})
    assert SECRET not in repr(sub)


def test_the_defaults_are_everything_but_personal_fields(tmp_path: Path) -> None:
    sub = load_app_dir(app(tmp_path, {"url": "http://127.0.0.1:9000/", "secret": SECRET}), {}).subscribers["HR"]
    assert (sub.events, sub.corps, sub.personal_fields) == (None, None, frozenset())
    doc = {"url": "http://127.0.0.1:9000/", "secret": SECRET, "personalFields": True}
    assert load_app_dir(app(tmp_path, doc), {}).subscribers["HR"].personal_fields == PERSONAL_FIELDS


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"secret": SECRET}, "subscribers/HR/HR.json: url: missing required key"),
        ({"url": "ftp://x/", "secret": SECRET}, "url: must be an http:// or https:// URL"),
        ({"url": "https://x/", "secret": "plain"}, "secret: must start with whsec_"),
        ({"url": "https://x/", "secret": "whsec_QUJD"}, "secret: the key must be 24 to 64 bytes"),
        ({"url": "https://x/", "secret": SECRET, "events": "member.*"}, "events: expected a list"),
        ({"url": "https://x/", "secret": SECRET, "events": ["Member"]}, "events: 'Member': an event type pattern"),
        ({"url": "https://x/", "secret": SECRET, "corps": ["Nope"]}, "corps: no corp named 'Nope'"),
        ({"url": "https://x/", "secret": SECRET, "personalFields": ["name"]}, "personalFields: not a personal field"),
        ({"url": "https://x/", "secret": SECRET, "personalFields": "yes"}, "personalFields: expected true, false"),
        ({"url": "https://x/", "secret": SECRET, "retries": 3}, "retries: unknown key"),
    ],
)
def test_a_mistake_is_one_line_naming_file_and_key(tmp_path: Path, doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^subscribers/HR/HR\.json: ") as caught:
        load_app_dir(app(tmp_path, doc), {})
    assert message.split(": ", 1)[-1] in str(caught.value) and "\n" not in str(caught.value)
    assert SECRET not in str(caught.value)


def test_an_unknown_subscriber_type_is_refused(tmp_path: Path) -> None:
    root = app(tmp_path, {"url": "https://x/", "secret": SECRET}, {"title": "HR", "type": "subscribers.Kafka"})
    with pytest.raises(ConfigError, match=r"subscribers/HR/e\.json: type: unknown subscriber type"):
        load_app_dir(root, {})
