"""The HTTP edge shared by every platform client: pacing, retries, token refresh, call counting.

Every call: take a concurrency slot of its API → wait for the rate limiter → one HTTP request →
classify. A rejected token (40001/40014/42001, suite 40082/42009) is refreshed once and the call
repeated. -1, 45009, 45033, 90018, 90002, HTTP 5xx/429, timeouts and unreadable bodies are retried
with exponential backoff and jitter, a bounded number of times, then raised as ``UpstreamError``
with the platform's errcode and errmsg (errcode None for transport failures). Rate-limit answers
also pause the API's limiter, so the calls in flight back off together.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from handlers.clients.limiter import RateLimiter
from handlers.clients.observe import ClientObserver
from handlers.clients.tokens import TokenSource
from handlers.errors import TokenExpired, UpstreamError

log = logging.getLogger("corpsync.clients")

Json = dict[str, Any]

TOKEN_REJECTED = frozenset({40001, 40014, 42001, 40082, 42009})
RETRYABLE = frozenset({-1, 45009, 45033, 90018, 90002})
RATE_LIMITED = frozenset({45009, 45033, 90018, 90002})
DINGTALK_AUTH_ERROR = 88  # protocol/dingtalk.md §5.3: the reason is in sub_code / sub_msg


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5  # requests per call at most (a token refresh does not count)
    base_delay: float = 0.5
    max_delay: float = 20.0
    timeout: float = 30.0  # seconds per request

    def delay(self, attempt: int, rand: Callable[[], float]) -> float:
        """Backoff before attempt ``attempt + 1``: exponential, half fixed and half jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + rand() * ceiling / 2


class Transport:
    """Calls one platform's JSON API for one corp (or suite)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        limiter: RateLimiter,
        observer: ClientObserver,
        *,
        retry: RetryPolicy | None = None,
        label: str = "",
        rand: Callable[[], float] | None = None,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/") + "/"
        self.limiter = limiter
        self.observer = observer
        self.retry = retry or RetryPolicy()
        self._label = label
        self._rand = rand or random.Random().random  # noqa: S311 - backoff jitter, not cryptography
        self.api_calls = 0

    async def call(
        self,
        api: str,
        *,
        method: str = "GET",
        params: Mapping[str, str | int] | None = None,
        body: Json | None = None,
        token: TokenSource | None = None,
        auth_param: str = "access_token",
        retry_transport: bool = True,
        expect: str | None = None,
    ) -> Json:
        """One API call, answered with errcode 0 (or no errcode), as parsed JSON.

        ``retry_transport=False`` is for calls that must not be repeated once they may have reached
        the platform (a timeout could hide a consumed auth code or a deleted failed-events batch);
        such calls are still retried on answers that say the request was refused (-1, rate limits).
        ``expect`` names a key a good answer always has: an answer without it (e.g. DingTalk's anti-abuse
        ``{"status": 1111, "wait": 5}``, which has no errcode) is retried instead of read as empty.
        """
        attempt, refreshed = 0, False
        url = self._base + api
        while True:
            attempt += 1
            value = await token.get() if token is not None else None
            query = {k: str(v) for k, v in (params or {}).items()}
            if value is not None:
                query[auth_param] = value
            status, data, outcome = await self._request(api, method, url, query, body)
            if expect is not None and outcome == "ok" and data is not None and expect not in data:
                outcome, data = "bad_response", None
            errcode, errmsg = _errcode(status, data, outcome)
            if outcome == "ok" and errcode == 0 and data is not None:
                return data
            if errcode in TOKEN_REJECTED and token is not None and value is not None:
                if refreshed:
                    raise TokenExpired(api, errcode, errmsg)
                refreshed = True
                attempt -= 1
                self.observer.on_retry(api, "token")
                await token.refresh(value)
                continue
            transport_failure = outcome not in ("ok", "error")
            retryable = (errcode in RETRYABLE) or (transport_failure and retry_transport and _retryable_http(status))
            if not retryable or attempt >= self.retry.attempts:
                log.warning(
                    "upstream call failed",
                    extra={
                        "action": "upstream_failed",
                        "corp": self._label,
                        "api": api,
                        "errcode": errcode,
                        "http_status": status,
                        "attempts": attempt,
                    },
                )
                raise UpstreamError(api, errcode, errmsg, http_status=status)
            delay = self.retry.delay(attempt, self._rand)
            if errcode in RATE_LIMITED:
                self.limiter.api(api).pause(delay)
            reason = f"errcode:{errcode}" if errcode is not None else (f"http:{status}" if status else outcome)
            self.observer.on_retry(api, reason)
            log.info(
                "upstream retry",
                extra={
                    "action": "upstream_retry",
                    "corp": self._label,
                    "api": api,
                    "reason": reason,
                    "attempt": attempt,
                    "delay": round(delay, 3),
                },
            )
            await asyncio.sleep(delay)

    async def _request(
        self, api: str, method: str, url: str, query: dict[str, str], body: Json | None
    ) -> tuple[int | None, Json | None, str]:
        """(http status, parsed body, outcome); never raises for transport trouble."""
        limiter = self.limiter.api(api)
        async with limiter.slots:
            await limiter.wait_turn()
            started = time.monotonic()
            status: int | None = None
            data: Json | None = None
            try:
                timeout = aiohttp.ClientTimeout(total=self.retry.timeout)
                async with self._session.request(method, url, params=query, json=body, timeout=timeout) as resp:
                    status = resp.status
                    raw = await resp.read()
                outcome = "ok" if status == 200 else "http_error"
                if status == 200:
                    try:
                        parsed = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        parsed = None
                    if isinstance(parsed, dict):
                        data = parsed
                    else:
                        outcome = "bad_response"
            except TimeoutError:
                outcome = "timeout"
            except aiohttp.ClientError:
                outcome = "network"
            finally:
                self.api_calls += 1
            code = data.get("errcode") if data is not None else None
            if outcome == "ok" and code not in (None, 0, "0"):
                outcome = "error"
            self.observer.on_call(api, outcome, time.monotonic() - started)
            return status, data, outcome


def _retryable_http(status: int | None) -> bool:
    return status is None or status == 200 or status == 429 or status >= 500


def _errcode(status: int | None, data: Json | None, outcome: str) -> tuple[int | None, str]:
    """The platform's errcode and errmsg, or (None, what went wrong) for transport failures."""
    if data is None:
        if outcome in ("timeout", "network"):
            return None, outcome
        if outcome == "bad_response":
            return None, "unreadable response body"
        return None, f"HTTP {status}"
    raw = data.get("errcode", 0)
    try:
        code = int(raw)
    except (TypeError, ValueError):
        code = -1
    message = data.get("errmsg")
    if code == DINGTALK_AUTH_ERROR:  # DingTalk's 鉴权异常 carries the real reason as a sub-code (90018: throttled)
        sub = integer(data.get("sub_code", data.get("subCode")))
        if sub in RETRYABLE:
            code, message = sub, data.get("sub_msg") or data.get("subMsg") or message
    return code, message if isinstance(message, str) else ""


# -- parsing helpers for the platform JSON edge ----------------------------------------------------


def text(value: Any) -> str | None:
    """A non-empty string, or None ("unknown" is never an empty string)."""
    if value is None:
        return None
    result = value if isinstance(value, str) else str(value)
    return result or None


def ident(value: Any) -> str | None:
    """An id as a string (platform ids are ints or strings), or None."""
    if value is None or isinstance(value, bool):
        return None
    return text(value)


def integer(value: Any) -> int | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def mapping(value: Any) -> Json:
    return value if isinstance(value, dict) else {}
