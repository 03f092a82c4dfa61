"""The suite auths of the app dir (``auths/<Name>`` of type ``auths.loginTypes.QywxProxyType``)."""

from __future__ import annotations

from handlers.config import WECOM_API_BASE, SuiteAuth
from receiver.appdir.blocks import rate_limits
from receiver.appdir.reading import Node

SUITE_AUTH_TYPE = "auths.loginTypes.QywxProxyType"

_SUITE_KEYS = ("suiteId", "suiteSecret", "token", "encodingAESKey", "providerCorpId", "apiBase", "rateLimits")


def suite_auth(name: str, title: str, doc: Node) -> SuiteAuth:
    doc.check_keys(_SUITE_KEYS, strict=False)
    return SuiteAuth(
        name=name,
        title=title,
        suite_id=doc.ident("suiteId"),
        suite_secret=doc.secret("suiteSecret"),
        token=doc.secret("token"),
        aes_key=doc.aes_key("encodingAESKey"),
        provider_corp_id=doc.opt_ident("providerCorpId"),
        api_base=doc.api_base(WECOM_API_BASE),
        rate_limits=rate_limits(doc),
    )
