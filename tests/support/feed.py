"""The change feed's test kit: a webhook receiving end that verifies every request with the official
``standardwebhooks`` package, subscribers, corps rows and directory changes on real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from handlers.config import Secret, Subscriber
from handlers.feed.delivery import FeedSettings
from handlers.feed.events import PERSONAL_FIELDS
from handlers.feed.pull import ChangeQuery, read_once
from handlers.model import Member, Membership
from handlers.store.directory import Directory, Source

FAST = FeedSettings(retry_schedule=(0.05,), jitter=0.0, poll_interval=0.05, timeout=5.0, prune_every=3600.0)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def subscriber(url: str, secret: str, name: str = "Hook", **options: Any) -> Subscriber:
    return Subscriber(name, name, url, Secret(secret), **options)


@dataclass
class Received:
    event: dict[str, Any]
    headers: dict[str, str]
    status: int
    started: float
    ended: float


@dataclass
class Hook:
    """A subscriber's HTTP endpoint: ``answer(event)`` gives the status; every request is verified first (401 when
    the signature does not verify, which no test expects)."""

    secret: str
    answer: Callable[[dict[str, Any]], int] = lambda event: 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    unverified: int = 0
    in_flight: dict[str, int] = field(default_factory=dict)  # per corp
    most_in_flight: int = 0  # the most requests of one corp at the same time

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event: dict[str, Any] = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.unverified += 1
            return web.Response(status=401)
        corp = event["corp"]
        self.in_flight[corp] = self.in_flight.get(corp, 0) + 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight[corp])
        started = time.monotonic()
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            status = self.answer(event)
        finally:
            self.in_flight[corp] -= 1
        self.received.append(Received(event, dict(request.headers), status, started, time.monotonic()))
        return web.Response(status=status)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        return app

    def delivered(self, corp: str | None = None) -> list[str]:
        """Event ids answered 2xx, in the order they were answered."""
        return [
            r.event["id"] for r in self.received if 200 <= r.status < 300 and (corp is None or r.event["corp"] == corp)
        ]


async def corp_row(pool: asyncpg.Pool, name: str = "HQ") -> int:
    row: int = await pool.fetchval(
        "INSERT INTO corps (name, platform, type, corp_id) VALUES ($1, 'wecom', 'corps.QywxInnerType', $1)"
        " RETURNING id",
        name,
    )
    return row


async def add_members(pool: asyncpg.Pool, corp: int, count: int, prefix: str = "u", *, dept: str = "1") -> None:
    """``count`` member changes, one transaction each (callback source)."""
    for i in range(count):
        async with pool.acquire() as conn, conn.transaction():
            await Directory(conn, corp, Source("event", inbox_id=i + 1)).upsert_member(
                Member(f"{prefix}{i}", f"Name {i}", (Membership(dept),), mobile=f"1380000{i:04d}")
            )


async def change_ids(pool: asyncpg.Pool, corp_name: str | None = None) -> list[str]:
    rows = await pool.fetch(
        "SELECT c.id FROM change_log c JOIN corps k ON k.id = c.corp"
        " WHERE $1::text IS NULL OR k.name = $1 ORDER BY c.id",
        corp_name,
    )
    return [str(r["id"]) for r in rows]


async def until(check: Callable[[], bool], seconds: float = 20.0) -> None:
    """Wait for ``check()`` to hold; fail the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


async def all_events(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Every event of the feed, personal fields included."""
    found: list[dict[str, Any]] = []
    cursor = 0
    while page := (await read_once(pool, ChangeQuery(after=cursor, limit=1000, personal_fields=PERSONAL_FIELDS))).items:
        found += page
        cursor = int(page[-1]["id"])
    return found


async def unchanged_fields(pool: asyncpg.Pool) -> list[str]:
    """``"<type> <objectId> <field>"`` for each changed field of an event whose before equals its after. A field is
    listed as changed only when its value changed, so equal values (null on both sides: the writer did not say)
    are a bug."""
    return [
        f"{e['type']} {e['objectId']} {name}"
        for e in await all_events(pool)
        for name, value in e["changes"].items()
        if value["before"] == value["after"]
    ]
