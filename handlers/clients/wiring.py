"""What every platform client of a process is built from: the HTTP session, the pool (token cache), the
observer, the shared limiters and the retry policy; and the transports and tokens made from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict, Unpack

import aiohttp

from handlers.clients.base import RetryPolicy, Transport
from handlers.clients.limiter import LimiterRegistry
from handlers.clients.observe import ClientObserver, NullObserver
from handlers.clients.tokens import Token, TokenFetch, TokenSpec
from handlers.config import RateLimits
from handlers.model import Platform
from handlers.store.credentials import Db

PLATFORM_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)


def http_session() -> aiohttp.ClientSession:
    """The HTTP session platform calls go through (one per process, or per Corp opened without one; the CLI's own
    requests too)."""
    return aiohttp.ClientSession(timeout=PLATFORM_TIMEOUT)


class ClientOptions(TypedDict, total=False):
    """What building a client may be given besides the session and pool; each left out (or None) defaults."""

    observer: ClientObserver | None  # default: no observer
    limiters: LimiterRegistry | None  # default: limiters of this client alone (pass one registry per process)
    retry: RetryPolicy | None  # default: RetryPolicy()


@dataclass(frozen=True, slots=True)
class Wiring:
    session: aiohttp.ClientSession
    pool: Db
    observer: ClientObserver
    limiters: LimiterRegistry  # one per process, so that clients of the same corp or suite share pacing
    retry: RetryPolicy | None

    @classmethod
    def of(cls, session: aiohttp.ClientSession, pool: Db, **options: Unpack[ClientOptions]) -> Wiring:
        observer, limiters = options.get("observer"), options.get("limiters")
        return cls(session, pool, observer or NullObserver(), limiters or LimiterRegistry(), options.get("retry"))

    def transport(
        self, base_url: str, limiter_key: str, platform: Platform, limits: RateLimits | None, label: str
    ) -> Transport:
        """A transport paced by the limiter ``limiter_key`` (shared by every client that names it)."""
        limiter = self.limiters.get(limiter_key, platform, limits)
        return Transport(self.session, base_url, limiter, self.observer, retry=self.retry, label=label)

    def token(self, key: str, kind: str, fetch: TokenFetch) -> Token:
        """A token cached under ``key`` in the credentials table; ``kind`` names it in metrics."""
        return Token(TokenSpec(key, kind, fetch), self.pool, self.observer)
