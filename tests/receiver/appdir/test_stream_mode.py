"""DingTalk Stream mode in the app dir: ``"callback": {"mode": "stream"}`` and the optional ``streamBase``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from handlers.config import DINGTALK_STREAM_BASE, CorpType, DingTalkCorp
from handlers.errors import ConfigError
from receiver.appdir import load_app_dir
from receiver.appdir.registration import registration_lines
from receiver.callbacks.endpoints import build_endpoints
from tests.receiver.appdir.test_load import corp, dingtalk


def _load(root: Path, **body: Any) -> DingTalkCorp:
    corp(root, "Sales", CorpType.DINGTALK_INNER, dingtalk(**body))
    sales = load_app_dir(root, {}).corps["Sales"]
    assert isinstance(sales, DingTalkCorp)
    return sales


def test_stream_mode_needs_no_token_or_aes_key(tmp_path: Path) -> None:
    sales = _load(tmp_path, callback={"mode": "stream"})
    assert sales.stream and sales.stream_base == DINGTALK_STREAM_BASE
    assert sales.callback is None
    assert "Sales" not in build_endpoints(load_app_dir(tmp_path, {})).dingtalk  # no HTTP push URL: 404


def test_stream_base_is_read_beside_api_base(tmp_path: Path) -> None:
    sales = _load(tmp_path, callback={"mode": "stream"}, streamBase="http://127.0.0.1:9/gw/")
    assert sales.stream_base == "http://127.0.0.1:9/gw"


def test_http_push_stays_the_default(tmp_path: Path) -> None:
    sales = _load(tmp_path)
    assert not sales.stream and sales.stream_base is None and sales.callback is not None


def test_stream_mode_with_keys_keeps_the_http_push_url_too(tmp_path: Path) -> None:
    sales = _load(tmp_path, callback={"mode": "stream", "token": "t", "aesKey": "a" * 43})
    assert sales.stream and sales.callback is not None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"callback": {"mode": "websocket"}}, 'corps/Sales/Sales.json: callback.mode: must be "http"'),
        ({"callback": {"mode": "stream"}, "streamBase": "wss://x"}, "streamBase: must be an http:// or https:// URL"),
        ({"streamBase": "https://api.dingtalk.com"}, "streamBase: only applies to Stream mode"),
        ({"callback": {"mode": "stream", "tokn": "x"}}, "callback"),
    ],
)
def test_rejects_bad_stream_config_naming_file_and_key(tmp_path: Path, body: dict[str, Any], message: str) -> None:
    corp(tmp_path, "Sales", CorpType.DINGTALK_INNER, {**dingtalk(), **body})
    with pytest.raises(ConfigError) as raised:
        load_app_dir(tmp_path, {})
    assert message in str(raised.value)


def test_check_config_says_what_to_switch_on_instead_of_a_url(tmp_path: Path) -> None:
    _load(tmp_path, callback={"mode": "stream"})
    text = "\n".join(registration_lines(load_app_dir(tmp_path, {}), "https://sync.example"))
    assert "Stream" in text and "/callback/dingtalk/Sales" not in text
    assert "Stream 模式推送" in text and "api.dingtalk.com" in text
