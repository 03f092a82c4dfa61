"""Load the JitAI app dir (``corps/``, ``auths/``) into the typed configuration of ``handlers.config``.

Every fault stops start-up with one ``ConfigError`` line that names the file and the JSON key path and
never shows a value. ``{{NAME}}`` placeholders in string values are filled from the ``environ`` passed in
(the caller decides which environment; nothing here reads ``os.environ``).

    reading       element directories, JSON files, ``Node``: typed getters with ``{{NAME}}`` expansion
    corps         one parser per corp type
    auths         suite auths
    blocks        the rateLimits and sync blocks they share
    registration  the lines check-config prints: callback URLs and where their keys live
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from handlers.config import AppConfig, CorpConfig, CorpType, WecomInnerCorp, WecomProxyCorp
from handlers.errors import ConfigError
from receiver.appdir.auths import SUITE_AUTH_TYPE, suite_auth
from receiver.appdir.corps import dingtalk_corp, wecom_inner_corp, wecom_proxy_corp
from receiver.appdir.reading import element_names, read_element, read_json

__all__ = ["load_app_dir"]


def _callback_identity(corp: CorpConfig) -> tuple[str, ...]:
    """What one console callback URL stands for; two corps with the same identity are ambiguous."""
    if isinstance(corp, WecomProxyCorp):
        return (corp.type, corp.auth.name, corp.corp_id)  # the suite data URL routes tenants by corpId
    if isinstance(corp, WecomInnerCorp):
        return (corp.type, corp.corp_id, corp.agent_id or "")  # one callback URL per app
    return (corp.type, corp.corp_id, corp.app_key)


_DUPLICATE_REASON = {
    CorpType.WECOM_INNER: "same corpId and agentId: one WeCom app calls back one URL",
    CorpType.WECOM_PROXY: "same corpId under the same auth: the suite routes its tenants by corpId",
    CorpType.DINGTALK_INNER: "same corpId and appKey: one DingTalk app calls back one URL",
}


def load_app_dir(root: str | Path, environ: Mapping[str, str]) -> AppConfig:
    """Read and check every element of the app dir (sorted by name); raise ConfigError on the first fault."""
    base = Path(root)
    if not base.is_dir():
        raise ConfigError(f"{root}: app dir does not exist" if not base.exists() else f"{root}: not a directory")
    app = AppConfig(root=str(base.resolve()), corps={}, auths={})

    suites: dict[str, str] = {}
    for name in element_names(base, "auths"):
        element = read_element(base, "auths", name, environ)
        if element.type != SUITE_AUTH_TYPE:
            if not element.type.startswith("auths."):
                raise ConfigError(f"auths/{name}/e.json: type: unknown auth type {element.type!r}")
            app.ignored_auths[name] = element.type
            continue
        doc = read_json(base, element.config_file, environ)
        auth = suite_auth(name, element.title, doc)
        if auth.suite_id in suites:
            doc.fail("suiteId", f"same suiteId as auths/{suites[auth.suite_id]}: a suite has one instruction URL")
        suites[auth.suite_id] = name
        app.auths[name] = auth

    identities: dict[tuple[str, ...], str] = {}
    for name in element_names(base, "corps"):
        element = read_element(base, "corps", name, environ)
        title = element.title
        try:
            corp_type = CorpType(element.type)
        except ValueError:
            known = ", ".join(t.value for t in CorpType)
            raise ConfigError(
                f"corps/{name}/e.json: type: unknown corp type {element.type!r} (expected one of: {known})"
            ) from None
        doc = read_json(base, element.config_file, environ)
        corp: CorpConfig
        if corp_type is CorpType.WECOM_INNER:
            corp = wecom_inner_corp(name, title, doc)
        elif corp_type is CorpType.DINGTALK_INNER:
            corp = dingtalk_corp(name, title, doc)
        else:
            corp = wecom_proxy_corp(name, title, doc, app)
        identity = _callback_identity(corp)
        if identity in identities:
            key = "authConfig.corpId" if corp_type is CorpType.DINGTALK_INNER else "corpId"
            raise ConfigError(
                f"{doc.file}: {key}: duplicates corps/{identities[identity]} "
                f"({_DUPLICATE_REASON[corp_type]}, so callbacks would be ambiguous)"
            )
        identities[identity] = name
        app.corps[name] = corp
    return app
