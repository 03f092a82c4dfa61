"""Typed configuration of the corps corpsync serves (loaded from the JitAI app dir by receiver.appdir).

Secrets are wrapped in ``Secret`` so that no repr, log line or error message ever shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from handlers.model import Platform


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` give ``'***'``; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class CorpType(StrEnum):
    WECOM_INNER = "corps.QywxInnerType"
    WECOM_PROXY = "corps.QywxProxyType"
    DINGTALK_INNER = "corps.DDInnerType"

    @property
    def platform(self) -> Platform:
        return Platform.DINGTALK if self is CorpType.DINGTALK_INNER else Platform.WECOM


WECOM_API_BASE = "https://qyapi.weixin.qq.com"
DINGTALK_API_BASE = "https://oapi.dingtalk.com"
DINGTALK_STREAM_BASE = "https://api.dingtalk.com"  # where POST /v1.0/gateway/connections/open lives


@dataclass(frozen=True, slots=True)
class CallbackKeys:
    """Token + EncodingAESKey (43 chars) + the receive-ids this endpoint accepts after decrypting."""

    token: Secret
    aes_key: Secret
    receive_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Client-side limits per corp and API. ``per_api`` overrides ``default`` for one API path."""

    calls_per_second: float
    burst: int
    per_api: dict[str, float] = field(default_factory=dict, hash=False)
    concurrency: int = 8


@dataclass(frozen=True, slots=True)
class SyncSettings:
    root_dept_id: str | None = None  # None: the top of what is visible
    delete_threshold: float = 0.20  # a run that would offline more than this share of actives is held
    max_age_seconds: int = 24 * 3600  # on serve start-up, sync when the last good sync is older
    schedule_seconds: int | None = 6 * 3600  # periodic full sync; None disables


@dataclass(frozen=True, slots=True)
class WecomInnerCorp:
    """corps.QywxInnerType — a WeCom self-built app (+ optional 通讯录同步 secret)."""

    name: str
    title: str
    corp_id: str
    agent_id: str | None
    secret: Secret
    contact_secret: Secret | None
    callback: CallbackKeys | None  # None: no callback URL; synced on start-up, on schedule and on demand only
    api_base: str = WECOM_API_BASE
    rate_limits: RateLimits | None = None
    sync: SyncSettings = SyncSettings()
    type: CorpType = CorpType.WECOM_INNER

    @property
    def platform(self) -> Platform:
        return Platform.WECOM


@dataclass(frozen=True, slots=True)
class SuiteAuth:
    """auths.loginTypes.QywxProxyType — a WeCom 代开发 template or third-party suite (many tenants)."""

    name: str
    title: str
    suite_id: str
    suite_secret: Secret
    token: Secret
    aes_key: Secret
    provider_corp_id: str | None
    api_base: str = WECOM_API_BASE
    rate_limits: RateLimits | None = None

    @property
    def is_proxy_template(self) -> bool:
        """代开发 templates have ``dk…`` suite ids; their permanent code is a ``gettoken`` secret."""
        return self.suite_id.startswith("dk")


@dataclass(frozen=True, slots=True)
class WecomProxyCorp:
    """corps.QywxProxyType — one tenant of a suite/代开发 auth."""

    name: str
    title: str
    corp_id: str
    auth: SuiteAuth
    sync: SyncSettings = SyncSettings()
    rate_limits: RateLimits | None = None  # this tenant's own limits; None: use the auth's
    type: CorpType = CorpType.WECOM_PROXY

    @property
    def platform(self) -> Platform:
        return Platform.WECOM

    @property
    def api_base(self) -> str:
        return self.auth.api_base


@dataclass(frozen=True, slots=True)
class DingTalkCorp:
    """corps.DDInnerType — a DingTalk internal app."""

    name: str
    title: str
    corp_id: str
    agent_id: str | None
    app_key: str
    app_secret: Secret
    callback: CallbackKeys | None  # receive_ids = {ownerKey (default appKey), corpId}; None: no HTTP push URL
    api_base: str = DINGTALK_API_BASE
    rate_limits: RateLimits | None = None
    sync: SyncSettings = SyncSettings()
    type: CorpType = CorpType.DINGTALK_INNER
    stream_base: str | None = None  # Stream mode ("callback": {"mode": "stream"}): the gateway's base; None: off

    @property
    def stream(self) -> bool:
        """Events arrive over a DingTalk Stream connection this process opens (no public URL needed)."""
        return self.stream_base is not None

    @property
    def platform(self) -> Platform:
        return Platform.DINGTALK


CorpConfig = WecomInnerCorp | WecomProxyCorp | DingTalkCorp


@dataclass(frozen=True, slots=True)
class AppConfig:
    """Everything in one app dir."""

    root: str
    corps: dict[str, CorpConfig]
    auths: dict[str, SuiteAuth]
    # auths/<name> elements of other JitAI login types, by name -> type: listed by check-config, not served
    ignored_auths: dict[str, str] = field(default_factory=dict)
