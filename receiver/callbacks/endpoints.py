"""The callback endpoints an app dir defines: for each route, its cipher, allowed receive-ids and inbox stream."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.config import AppConfig, DingTalkCorp, SuiteAuth, WecomInnerCorp, WecomProxyCorp
from handlers.model import Platform
from handlers.store.corps import tenant_name
from receiver.callbacks.crypto import CallbackCipher


@dataclass(frozen=True, slots=True)
class CorpEndpoint:
    """``/callback/wecom/{corp}`` or ``/callback/dingtalk/{corp}``."""

    name: str
    platform: Platform
    cipher: CallbackCipher
    receive_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class SuiteEndpoint:
    """``/callback/wecom-suite/{auth}`` (instruction) and ``.../data``."""

    auth: SuiteAuth
    cipher: CallbackCipher
    instruction_ids: frozenset[str]  # suite id, or the provider's corpid
    verify_data_ids: frozenset[str]  # GET verification of the data URL: the provider's corpid
    configured_tenants: dict[str, str]  # authorized corpid → corp name, for tenants in the app dir

    @property
    def stream(self) -> str:
        return f"suite:{self.auth.name}"

    def tenant_stream(self, corp_id: str) -> str:
        return self.configured_tenants.get(corp_id) or tenant_name(self.auth.name, corp_id)


@dataclass(frozen=True, slots=True)
class Endpoints:
    wecom: dict[str, CorpEndpoint]
    dingtalk: dict[str, CorpEndpoint]
    suites: dict[str, SuiteEndpoint]


def build_endpoints(config: AppConfig) -> Endpoints:
    """Derive every endpoint once at start-up (ciphers keep their derived keys)."""
    wecom: dict[str, CorpEndpoint] = {}
    dingtalk: dict[str, CorpEndpoint] = {}
    suites: dict[str, SuiteEndpoint] = {}
    for name, auth in config.auths.items():
        tenants = {
            c.corp_id: c.name for c in config.corps.values() if isinstance(c, WecomProxyCorp) and c.auth.name == name
        }
        provider = frozenset({auth.provider_corp_id} if auth.provider_corp_id else set())
        suites[name] = SuiteEndpoint(
            auth=auth,
            cipher=CallbackCipher(auth.token.reveal(), auth.aes_key.reveal()),
            instruction_ids=frozenset({auth.suite_id}) | provider,
            verify_data_ids=provider or frozenset({auth.suite_id}),
            configured_tenants=tenants,
        )
    for name, corp in config.corps.items():
        if isinstance(corp, WecomInnerCorp):
            keys = corp.callback
            if keys is None:  # no callback block: a pull-only corp has no callback URL (404)
                continue
            wecom[name] = CorpEndpoint(
                name, Platform.WECOM, CallbackCipher(keys.token.reveal(), keys.aes_key.reveal()), keys.receive_ids
            )
        elif isinstance(corp, WecomProxyCorp):
            # 代开发 app callback URL: the auth's token and key, receive-id = the authorized corp's corpid.
            wecom[name] = CorpEndpoint(name, Platform.WECOM, suites[corp.auth.name].cipher, frozenset({corp.corp_id}))
        elif isinstance(corp, DingTalkCorp):
            if corp.callback is None:  # Stream mode: no callback URL (404)
                continue
            keys = corp.callback
            if keys is None:
                continue
            dingtalk[name] = CorpEndpoint(
                name, Platform.DINGTALK, CallbackCipher(keys.token.reveal(), keys.aes_key.reveal()), keys.receive_ids
            )
    return Endpoints(wecom=wecom, dingtalk=dingtalk, suites=suites)
