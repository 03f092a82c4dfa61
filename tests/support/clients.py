"""Platform clients against the simulator in tests: the corp config of a simulated account, a client of a known
type made for it, an observer that records (and can expire tokens mid-snapshot), and what member records should say."""

from __future__ import annotations

from typing import Any, TypeVar, Unpack

import aiohttp
import asyncpg

from handlers.clients import ClientOptions, NullObserver, PlatformClient, make_client
from handlers.config import CallbackKeys, CorpConfig, DingTalkCorp, Secret, WecomInnerCorp
from handlers.model import Membership
from receiver.testing import SimOrg, Simulator
from receiver.testing.accounts import DingTalkApp, WecomCorp

C = TypeVar("C", bound=PlatformClient)


def wecom_config(sim: Simulator, app: WecomCorp, *, contact: bool = False, **extra: Any) -> WecomInnerCorp:
    """Corp "HQ": the simulated app, with its contact-sync secret when ``contact``."""
    return WecomInnerCorp(
        name="HQ",
        title="HQ",
        corp_id=app.corp_id,
        agent_id=str(app.agent_id),
        secret=Secret(app.secret),
        contact_secret=Secret(app.contact_secret) if contact and app.contact_secret else None,
        callback=CallbackKeys(Secret(app.token), Secret(app.aes_key), frozenset({app.corp_id})),
        api_base=sim.wecom_api_base,
        **extra,
    )


def dingtalk_config(sim: Simulator, app: DingTalkApp, **extra: Any) -> DingTalkCorp:
    """Corp "Sales": the simulated DingTalk app."""
    return DingTalkCorp(
        name="Sales",
        title="Sales",
        corp_id=app.corp_id,
        agent_id=str(app.agent_id),
        app_key=app.app_key,
        app_secret=Secret(app.app_secret),
        callback=CallbackKeys(Secret(app.token), Secret(app.aes_key), frozenset({app.app_key, app.corp_id})),
        api_base=sim.dingtalk_api_base,
        **extra,
    )


def made(
    kind: type[C],
    corp: CorpConfig,
    session: aiohttp.ClientSession,
    pool: asyncpg.Pool,
    **options: Unpack[ClientOptions],
) -> C:
    """``make_client``'s client of ``corp``, checked to be a ``kind``."""
    client = make_client(corp, session, pool, **options)
    assert isinstance(client, kind)
    return client


def memberships(org: SimOrg, userid: str) -> tuple[Membership, ...]:
    """A simulated member's departments in the app's visible range, as the clients normalize them."""
    m = org.members[userid]
    return tuple(
        Membership(str(d), is_leader=m.is_leader[k] == 1, order=m.orders[k])
        for k, d in enumerate(m.departments)
        if org.in_scope(d)
    )


class Recorder(NullObserver):
    """What the client reports: each call's outcome, each retry, each token refresh."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.retries: list[tuple[str, str]] = []
        self.refreshes: list[str] = []

    def on_call(self, api: str, outcome: str, seconds: float) -> None:
        self.calls.append((api, outcome))

    def on_retry(self, api: str, reason: str) -> None:
        self.retries.append((api, reason))

    def on_token_refresh(self, kind: str) -> None:
        self.refreshes.append(kind)


class ExpireAfter(Recorder):
    """Expires every token upstream once ``api`` has answered ``calls`` times: calls are in flight then."""

    def __init__(self, sim: Simulator, api: str, calls: int) -> None:
        super().__init__()
        self.sim, self.api, self.left = sim, api, calls

    def on_call(self, api: str, outcome: str, seconds: float) -> None:
        super().on_call(api, outcome, seconds)
        if api == self.api:
            self.left -= 1
            if self.left == 0:
                self.sim.expire_tokens()
