"""The corp parsers, one per JitAI corp type (``corps/<Name>``)."""

from __future__ import annotations

import re

from handlers.config import (
    DINGTALK_API_BASE,
    DINGTALK_STREAM_BASE,
    WECOM_API_BASE,
    AppConfig,
    CallbackKeys,
    DingTalkCorp,
    WecomInnerCorp,
    WecomProxyCorp,
)
from receiver.appdir.auths import SUITE_AUTH_TYPE
from receiver.appdir.blocks import rate_limits, sync_settings
from receiver.appdir.reading import Node

_AUTH_REF = re.compile(r"auths\.([A-Za-z0-9_-]+)")

# Keys of the objects corpsync owns are checked strictly. The top-level files and authConfig are shared
# with JitAI, which may add keys of its own: there only near-misses of our keys are rejected.
_WECOM_INNER_KEYS = ("corpId", "agentId", "secret", "contactSecret", "callback", "apiBase", "rateLimits", "sync")
_DINGTALK_KEYS = ("authConfig", "callback", "apiBase", "streamBase", "rateLimits", "sync")
_DINGTALK_CALLBACK_KEYS = ("mode", "token", "aesKey", "ownerKey")
_CALLBACK_MODES = ("http", "stream")
_DINGTALK_AUTH_KEYS = ("corpId", "agentId", "appKey", "appSecret")
_PROXY_KEYS = ("corpId", "authFullName", "rateLimits", "sync")


def _callback(doc: Node, known: tuple[str, ...]) -> Node | None:
    """The optional ``callback`` block (the JitAI seeds' configs have none: such a corp is pull-only)."""
    if "callback" in doc.data and doc.data["callback"] is None:
        doc.missing("callback", "an object")  # null is a slip, not a way to say "no callback"
    return doc.opt_child("callback", known)


def wecom_inner_corp(name: str, title: str, doc: Node) -> WecomInnerCorp:
    if "corpId" not in doc.data and "authConfig" in doc.data:
        doc.fail(
            "corpId", "missing required key (WeCom self-built corps keep corpId at the top level, not in authConfig)"
        )
    doc.check_keys(_WECOM_INNER_KEYS, strict=False)
    corp_id = doc.ident("corpId")
    agent_id = doc.ident("agentId")
    secret = doc.secret("secret")
    contact_secret = doc.opt_secret("contactSecret")
    callback = _callback(doc, ("token", "encodingAESKey"))
    return WecomInnerCorp(
        name=name,
        title=title,
        corp_id=corp_id,
        agent_id=agent_id,
        secret=secret,
        contact_secret=contact_secret,
        callback=None
        if callback is None
        else CallbackKeys(
            token=callback.secret("token"),
            aes_key=callback.aes_key("encodingAESKey"),
            receive_ids=frozenset({corp_id}),
        ),
        api_base=doc.api_base(WECOM_API_BASE),
        rate_limits=rate_limits(doc),
        sync=sync_settings(doc),
    )


def dingtalk_corp(name: str, title: str, doc: Node) -> DingTalkCorp:
    if "authConfig" not in doc.data and "corpId" in doc.data:
        doc.fail("authConfig", "missing required key (DingTalk corps keep corpId, agentId, appKey, appSecret in it)")
    doc.check_keys(_DINGTALK_KEYS, strict=False)
    auth = doc.child("authConfig", _DINGTALK_AUTH_KEYS, strict=False)
    corp_id = auth.ident("corpId")
    agent_id = auth.ident("agentId")
    app_key = auth.text("appKey")
    app_secret = auth.secret("appSecret")
    callback = _callback(doc, _DINGTALK_CALLBACK_KEYS)
    mode = "http" if callback is None else (callback.opt_text("mode") or "http")
    if callback is not None and mode not in _CALLBACK_MODES:
        callback.fail("mode", 'must be "http" (HTTP push, the default) or "stream" (DingTalk Stream mode)')
    keys = None
    if callback is not None and (mode == "http" or "token" in callback.data or "aesKey" in callback.data):
        owner_key = callback.opt_text("ownerKey") or app_key  # HTTP push set in the developer console: appKey
        keys = CallbackKeys(
            token=callback.secret("token"),
            aes_key=callback.aes_key("aesKey"),
            receive_ids=frozenset({owner_key, corp_id}),
        )
    if mode != "stream" and "streamBase" in doc.data:
        doc.fail("streamBase", 'only applies to Stream mode ("callback": {"mode": "stream"})')
    return DingTalkCorp(
        name=name,
        title=title,
        corp_id=corp_id,
        agent_id=agent_id,
        app_key=app_key,
        app_secret=app_secret,
        callback=keys,
        api_base=doc.api_base(DINGTALK_API_BASE),
        rate_limits=rate_limits(doc),
        sync=sync_settings(doc),
        stream_base=doc.api_base(DINGTALK_STREAM_BASE, key="streamBase") if mode == "stream" else None,
    )


def wecom_proxy_corp(name: str, title: str, doc: Node, app: AppConfig) -> WecomProxyCorp:
    doc.check_keys(_PROXY_KEYS, strict=False)
    corp_id = doc.ident("corpId")
    reference = doc.text("authFullName")
    match = _AUTH_REF.fullmatch(reference)
    if match is None:
        doc.fail("authFullName", "must be auths.<Name>, naming a directory under auths/")
    auth_name = match.group(1)
    auth = app.auths.get(auth_name)
    if auth is None:
        other = app.ignored_auths.get(auth_name)
        if other is not None:
            doc.fail("authFullName", f"auths/{auth_name} is of type {other}, not {SUITE_AUTH_TYPE}")
        doc.fail("authFullName", f"auths/{auth_name} does not exist")
    return WecomProxyCorp(
        name=name, title=title, corp_id=corp_id, auth=auth, sync=sync_settings(doc), rate_limits=rate_limits(doc)
    )
