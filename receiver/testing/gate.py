"""What stands in front of every simulated API: tokens with a TTL, rate-limit windows and injected faults."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["http500", "timeout", "errcode"]
PREFIXES = {"wecom": "/wecom/cgi-bin/", "dingtalk": "/dingtalk/"}


def api_key(path: str) -> str:
    """The counted name of an API path: ``"wecom:user/get"``, ``"dingtalk:topapi/v2/user/list"``."""
    for platform, prefix in PREFIXES.items():
        if path.startswith(prefix):
            return f"{platform}:{path[len(prefix) :]}"
    return path


class ApiError(Exception):
    """An errcode answer. Raised by handlers; the simulator renders the platform's error envelope."""

    def __init__(self, errcode: int, errmsg: str, sub_code: str | None = None) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.sub_code = sub_code  # DingTalk's 88 (鉴权异常) names its reason here (dingtalk.md §5.3)


@dataclass(slots=True)
class RateLimits:
    """Server-side limits, per corp (WeCom) or app (DingTalk) and per API, in fixed windows.

    Defaults are the documented ones: WeCom 10,000 calls a minute (errcode 45009, wecom.md §6),
    DingTalk 20 calls a second (errcode 90018, dingtalk.md §5.3). ``per_api`` overrides the limit of
    one API, keyed like ``Simulator.calls`` (``"wecom:user/get"``, ``"dingtalk:topapi/v2/user/list"``).
    """

    wecom_limit: int = 10_000
    wecom_window: float = 60.0
    dingtalk_limit: int = 20
    dingtalk_window: float = 1.0
    per_api: dict[str, int] = field(default_factory=dict)

    def limit(self, api_key: str) -> tuple[int, float]:
        wecom = api_key.startswith("wecom:")
        default = self.wecom_limit if wecom else self.dingtalk_limit
        return self.per_api.get(api_key, default), self.wecom_window if wecom else self.dingtalk_window


class RateLimiter:
    """Fixed windows aligned to the clock: a window's calls beyond the limit are refused until it ends."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}

    def allow(self, api_key: str, owner: str, limits: RateLimits) -> bool:
        limit, window = limits.limit(api_key)
        index = math.floor(self._clock() / window)
        current, count = self._windows.get((api_key, owner), (index, 0))
        if current != index:
            count = 0
        self._windows[(api_key, owner)] = (index, count + 1)
        return count < limit


@dataclass(slots=True)
class Grant:
    """An access token and what it opens: ``subject`` is the registration it was issued for."""

    token: str
    kind: str  # "app", "contact", "corp" (third-party corp token), "suite", "dingtalk"
    subject: Any
    expires_at: float


class TokenStore:
    """Tokens live ``ttl`` seconds; asking again while one is valid returns it, as both platforms do."""

    def __init__(self, clock: Callable[[], float], ttl: float) -> None:
        self._clock = clock
        self.ttl = ttl
        self._by_token: dict[str, Grant] = {}
        self._current: dict[tuple[str, int], Grant] = {}

    def issue(self, kind: str, subject: object) -> Grant:
        now = self._clock()
        grant = self._current.get((kind, id(subject)))
        if grant is None or grant.expires_at <= now:
            grant = Grant(secrets.token_urlsafe(48), kind, subject, now + self.ttl)
            self._by_token[grant.token] = grant
            self._current[(kind, id(subject))] = grant
        return grant

    def expires_in(self, grant: Grant) -> int:
        return max(0, math.ceil(grant.expires_at - self._clock()))

    def lookup(self, token: str) -> tuple[Grant | None, bool]:
        """(grant, expired); (None, False) for a token never issued."""
        grant = self._by_token.get(token)
        if grant is None:
            return None, False
        return grant, grant.expires_at <= self._clock()

    def expire_all(self) -> None:
        for grant in self._by_token.values():
            grant.expires_at = -math.inf


@dataclass(slots=True)
class Fault:
    api: str  # "wecom:user/list", or "user/list" for both platforms
    times: int
    kind: FaultKind
    errcode: int
    errmsg: str
    sub_code: str | None = None

    def matches(self, api_key: str) -> bool:
        return self.times > 0 and (self.api == api_key or api_key.split(":", 1)[1] == self.api)


class Faults:
    """Injected failures: the next N calls of an API, and departments whose member listing always fails."""

    def __init__(self) -> None:
        self.pending: list[Fault] = []
        self.departments: dict[tuple[int | None, int], int] = {}  # (id(org) or None, dept) -> errcode

    def add(self, fault: Fault) -> None:
        self.pending.append(fault)

    def take(self, api_key: str) -> Fault | None:
        for fault in self.pending:
            if fault.matches(api_key):
                fault.times -= 1
                if fault.times == 0:
                    self.pending.remove(fault)
                return fault
        return None

    def department(self, org: object, dept_id: int) -> int | None:
        found = self.departments.get((id(org), dept_id))
        return found if found is not None else self.departments.get((None, dept_id))

    def clear(self) -> None:
        self.pending.clear()
        self.departments.clear()
