"""What the simulated platform APIs (wecom_api, dingtalk_api, the Stream gateway) use of the simulator: its
accounts, the gate in front of every call and the endpoint wrapper. ``Simulator`` implements it; the APIs know only
this protocol, so the simulator can build its app from them without an import cycle."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from aiohttp import web

from receiver.testing.accounts import DingTalkApp, SuiteTenant, WecomCorp, WecomSuite
from receiver.testing.gate import Faults, TokenStore

Platform = Literal["wecom", "dingtalk"]
Handler = Callable[[web.Request], Awaitable[dict[str, Any]]]


class Upstream(Protocol):
    url: str  # where the simulator serves (the Stream gateway names its WebSocket endpoint from it)
    clock: Callable[[], float]
    rng: random.Random
    tokens: TokenStore
    faults: Faults
    wecom_corps: dict[str, WecomCorp]
    suites: dict[str, WecomSuite]
    tenants_by_corp: dict[str, list[SuiteTenant]]
    dingtalk_apps: dict[str, DingTalkApp]

    def endpoint(
        self, platform: Platform, api: str, handler: Handler
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``handler`` with counting, latency, injected faults and the error envelope."""
        ...

    def check_rate(self, request: web.Request, owner: str) -> None:
        """Raise the platform's rate-limit error when ``owner`` called this API too often in the window."""
        ...

    def request_id(self) -> str: ...
