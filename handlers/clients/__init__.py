"""Platform API clients: one ``PlatformClient`` per corp, built by ``make_client``.

    make_client(corp, session, pool) ─┬─ WecomInnerCorp  → wecom.WecomClient (app + contact-sync tokens)
                                      ├─ WecomProxyCorp  → suite.SuiteClient(auth).tenant_client(corp)
                                      └─ DingTalkCorp    → dingtalk.DingTalkClient
    every call: limiter (per corp and API) → Transport (retries, token refresh) → *_records parsers
    each built from a ``wiring.Wiring``: session, pool, observer, shared limiters, retry policy

Tokens live in the ``credentials`` table (handlers.store.credentials), so processes share them.
"""

from __future__ import annotations

from typing import Unpack

import aiohttp

from handlers.clients.base import RetryPolicy
from handlers.clients.dingtalk import DingTalkClient, FailedEvent, dingtalk_client
from handlers.clients.limiter import LimiterRegistry
from handlers.clients.observe import ClientObserver, NullObserver
from handlers.clients.protocol import PlatformClient, Progress
from handlers.clients.suite import SuiteClient
from handlers.clients.wecom import WecomClient, inner_client
from handlers.clients.wiring import ClientOptions, Wiring, http_session
from handlers.config import CorpConfig, DingTalkCorp, WecomInnerCorp, WecomProxyCorp
from handlers.store.credentials import Db

__all__ = [
    "ClientObserver",
    "ClientOptions",
    "DingTalkClient",
    "FailedEvent",
    "LimiterRegistry",
    "NullObserver",
    "PlatformClient",
    "Progress",
    "RetryPolicy",
    "SuiteClient",
    "WecomClient",
    "Wiring",
    "http_session",
    "make_client",
]


def make_client(
    corp: CorpConfig, session: aiohttp.ClientSession, pool: Db, **options: Unpack[ClientOptions]
) -> PlatformClient:
    """The client of one configured corp. Pass one ``LimiterRegistry`` per process so clients share pacing."""
    if isinstance(corp, WecomProxyCorp):
        return SuiteClient(corp.auth, session, pool, **options).tenant_client(corp)
    wiring = Wiring.of(session, pool, **options)
    if isinstance(corp, WecomInnerCorp):
        return inner_client(corp, wiring)
    if isinstance(corp, DingTalkCorp):
        return dingtalk_client(corp, wiring)
    raise TypeError(f"no client for {type(corp).__name__}")
