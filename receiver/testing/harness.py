"""One-call test helpers: write an app dir; push a plaintext event through an app as the platform would."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from handlers.config import AppConfig, CallbackKeys, DingTalkCorp, WecomInnerCorp, WecomProxyCorp
from receiver.testing.callbacks import sign_dingtalk_callback, sign_wecom_callback

# Test credentials (the official sample key sets; never use them in production).
WECOM_TOKEN = "QDG6eK"
WECOM_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
DINGTALK_TOKEN = "mryue"
DINGTALK_AES_KEY = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
SUITE_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
SUITE_AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"


def _element(
    root: Path,
    kind: str,
    name: str,
    type_: str,
    body: Mapping[str, Any],
    *,
    api_base: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """``<kind>/<name>/``: its ``e.json`` and its body, with ``apiBase`` when given and ``extra`` keys over all."""
    body = {**body, **({"apiBase": api_base} if api_base else {}), **(extra or {})}
    folder = root / kind / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "e.json").write_bytes(orjson.dumps({"title": name, "type": type_}))
    (folder / f"{name}.json").write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))


def write_wecom_corp(
    root: Path,
    name: str,
    *,
    corp_id: str,
    secret: str = "app-secret",
    contact_secret: str | None = None,
    api_base: str | None = None,
    token: str = WECOM_TOKEN,
    aes_key: str = WECOM_AES_KEY,
    agent_id: str = "1000002",
    extra: Mapping[str, Any] | None = None,
) -> None:
    body: dict[str, Any] = {
        "corpId": corp_id,
        "agentId": agent_id,
        "secret": secret,
        "callback": {"token": token, "encodingAESKey": aes_key},
    }
    if contact_secret:
        body["contactSecret"] = contact_secret
    _element(root, "corps", name, "corps.QywxInnerType", body, api_base=api_base, extra=extra)


def write_dingtalk_corp(
    root: Path,
    name: str,
    *,
    corp_id: str,
    app_key: str,
    app_secret: str = "app-secret",
    api_base: str | None = None,
    token: str = DINGTALK_TOKEN,
    aes_key: str = DINGTALK_AES_KEY,
    extra: Mapping[str, Any] | None = None,
) -> None:
    body = {
        "authConfig": {"corpId": corp_id, "agentId": "100000001", "appKey": app_key, "appSecret": app_secret},
        "callback": {"token": token, "aesKey": aes_key},
    }
    _element(root, "corps", name, "corps.DDInnerType", body, api_base=api_base, extra=extra)


def write_suite(
    root: Path,
    name: str,
    *,
    suite_id: str,
    suite_secret: str = "suite-secret",
    provider_corp_id: str | None = None,
    api_base: str | None = None,
    token: str = SUITE_TOKEN,
    aes_key: str = SUITE_AES_KEY,
) -> None:
    body: dict[str, Any] = {"suiteId": suite_id, "suiteSecret": suite_secret, "token": token, "encodingAESKey": aes_key}
    if provider_corp_id:
        body["providerCorpId"] = provider_corp_id
    _element(root, "auths", name, "auths.loginTypes.QywxProxyType", body, api_base=api_base)


def write_proxy_corp(root: Path, name: str, *, corp_id: str, auth: str) -> None:
    _element(root, "corps", name, "corps.QywxProxyType", {"corpId": corp_id, "authFullName": f"auths.{auth}"})


class _Poster(Protocol):
    """An aiohttp TestClient, or anything with the same ``post``."""

    def post(self, path: str, *, params: Mapping[str, str], data: bytes) -> Any: ...


@dataclass(frozen=True, slots=True)
class Pushed:
    status: int
    body: bytes


def callback_keys(corp: WecomInnerCorp | DingTalkCorp) -> CallbackKeys:
    """The corp's callback keys; ValueError for a corp without a callback block (it has no callback URL)."""
    if corp.callback is None:
        raise ValueError(f"corps/{corp.name} has no callback block, so no callback URL")
    return corp.callback


def signed_request(config: AppConfig, corp: str, plaintext: bytes | str) -> tuple[str, dict[str, str], bytes]:
    """(path, query, body) of the callback the platform would send to this corp's URL."""
    message = plaintext.encode() if isinstance(plaintext, str) else plaintext
    target = config.corps[corp]
    if isinstance(target, WecomInnerCorp):
        keys = callback_keys(target)
        query, body = sign_wecom_callback(
            message, token=keys.token.reveal(), aes_key=keys.aes_key.reveal(), receive_id=target.corp_id
        )
        return f"/callback/wecom/{corp}", query, body
    if isinstance(target, WecomProxyCorp):
        auth = target.auth
        query, body = sign_wecom_callback(
            message, token=auth.token.reveal(), aes_key=auth.aes_key.reveal(), receive_id=target.corp_id
        )
        return f"/callback/wecom/{corp}", query, body
    if isinstance(target, DingTalkCorp):
        keys = callback_keys(target)
        query, body = sign_dingtalk_callback(
            message, token=keys.token.reveal(), aes_key=keys.aes_key.reveal(), receive_id=target.app_key
        )
        return f"/callback/dingtalk/{corp}", query, body
    raise TypeError(f"unsupported corp type {type(target).__name__}")


async def push_event(client: _Poster, config: AppConfig, corp: str, plaintext: bytes | str) -> Pushed:
    """Encrypt and sign ``plaintext`` with the corp's configured keys and POST it to the corp's callback URL."""
    path, query, body = signed_request(config, corp, plaintext)
    response = await client.post(path, params=query, data=body)
    return Pushed(status=response.status, body=await response.read())
