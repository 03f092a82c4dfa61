"""The change feed through the real app: GET /api/changes (long poll), the subscribers' routes, /readyz and
/metrics, with a webhook receiving end that verifies every request with the standardwebhooks package."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from handlers.config import Secret
from handlers.feed.delivery import declare
from handlers.model import Member, Membership
from handlers.store import feed as feed_store
from handlers.store.directory import Directory, Source
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.keys import CONFIG, CORP_ROWS, POOL
from receiver.settings import Settings
from tests.support.feed import Hook, new_secret, until

TOKEN = "feed-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


def write(root: Path, rel: str, doc: Any) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")


@dataclass
class FeedRig:
    client: TestClient[Any, Any]
    app: web.Application
    hook: Hook

    async def get(self, path: str, **params: str) -> tuple[int, Any]:
        response = await self.client.get(path, params=params, headers=AUTH)
        return response.status, await response.json()

    async def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        response = await self.client.post(path, data=None if body is None else json.dumps(body),
                                          headers={**AUTH, "Content-Type": "application/json"})  # fmt: skip
        return response.status, await response.json()

    async def member(self, user_id: str, name: str) -> None:
        async with self.app[POOL].acquire() as conn:
            await Directory(conn, self.app[CORP_ROWS]["HQ"], Source("event")).upsert_member(
                Member(user_id, name, (Membership("1"),), mobile="13800000000")
            )


@pytest.fixture
async def rig(
    aiohttp_client: ClientFactory, aiohttp_server: ServerFactory, tmp_path: Path, db_url: str
) -> AsyncIterator[FeedRig]:
    hook = Hook(new_secret(), lambda event: 500)
    server = await aiohttp_server(hook.app())
    write(tmp_path, "corps/HQ/e.json", {"title": "HQ", "type": "corps.QywxInnerType"})
    write(tmp_path, "corps/HQ/HQ.json", {"corpId": "ww1", "agentId": "1", "secret": "s",
                                         "callback": {"token": "t", "encodingAESKey": "a" * 43}})  # fmt: skip
    write(tmp_path, "subscribers/HR/e.json", {"title": "HR", "type": "subscribers.Webhook"})
    write(tmp_path, "subscribers/HR/HR.json", {"url": str(server.make_url("/hook")), "secret": hook.secret})
    settings = Settings(admin_token=Secret(TOKEN), run_scheduler=False, run_worker=False,
                        feed_retry_schedule=(0.05,), feed_disable_after=1)  # fmt: skip
    app = create_app(settings, load_app_dir(tmp_path, {}), db_url)
    client = await aiohttp_client(app)
    yield FeedRig(client, app, hook)
    await client.close()


async def test_changes_long_poll_answers_when_a_change_commits(rig: FeedRig) -> None:
    poll = asyncio.create_task(rig.get("/api/changes", wait="10"))
    await asyncio.sleep(0.3)
    assert not poll.done()
    await rig.member("u1", "One")
    status, body = await asyncio.wait_for(poll, 5)
    assert status == 200
    (event,) = body["items"]
    assert (event["type"], event["corp"], event["objectId"], body["cursor"]) == ("member.created", "HQ", "u1",
                                                                                 event["id"])  # fmt: skip
    assert "mobile" not in event["changes"]
    status, body = await rig.get("/api/changes", after=event["id"], personalFields="mobile")
    assert (status, body) == (200, {"items": [], "cursor": event["id"]})
    status, body = await rig.get("/api/changes", personalFields="*", types="member.*", corp="HQ")
    assert body["items"][0]["changes"]["mobile"] == {"before": None, "after": "13800000000"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "abc"}, "after"),
        ({"after": "-1"}, "after"),
        ({"wait": "31"}, "wait"),
        ({"wait": "nan"}, "wait"),
        ({"limit": "0"}, "limit"),
        ({"types": "Member.*"}, "types"),
        ({"types": ","}, "types"),
        ({"personalFields": "name"}, "personalFields"),
        ({"since": "2026-01-01"}, "since"),
    ],
)
async def test_bad_changes_parameters_are_a_400_naming_the_field(
    rig: FeedRig, params: dict[str, str], field: str
) -> None:
    status, body = await rig.get("/api/changes", **params)
    assert (status, body["field"]) == (400, field)


async def test_changes_of_an_unknown_corp_is_a_404(rig: FeedRig) -> None:
    status, body = await rig.get("/api/changes", corp="Nope")
    assert (status, body["corp"]) == (404, None)


async def test_a_failing_subscriber_is_disabled_listed_and_enabled_again(rig: FeedRig) -> None:
    await rig.member("u1", "One")
    await rig.member("u2", "Two")
    pool = rig.app[POOL]
    for _ in range(100):
        status, ready = await rig.get("/readyz")
        if ready["disabledSubscribers"]:
            break
        await asyncio.sleep(0.05)
    assert (status, ready["disabledSubscribers"]) == (200, ["HR"])  # listed, and the process stays ready
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'corpsync_feed_subscriber_disabled{subscriber="HR"} 1.0' in metrics
    assert 'corpsync_feed_lag_events{subscriber="HR"} 2.0' in metrics
    assert 'corpsync_feed_failed_total{reason="http",subscriber="HR"}' in metrics
    status, body = await rig.get("/api/subscribers")
    (state,) = body["items"]
    assert (state["name"], state["disabled"], state["pending"], state["lastError"]) == ("HR", True, 2, "http 500")
    assert state["url"].startswith("http://127.0.0.1:") and "/hook" not in state["url"]

    rig.hook.answer = lambda event: 200
    assert await rig.post("/api/subscribers/HR/enable") == (200, {"name": "HR", "enabled": True})
    await until(lambda: len(rig.hook.delivered()) == 2)
    assert rig.hook.unverified == 0
    ids = rig.hook.delivered()
    assert ids == [str(i) for i in await pool.fetchval("SELECT array_agg(id ORDER BY id) FROM change_log")]

    status, body = await rig.post("/api/subscribers/HR/replay", {"after": ids[0]})
    assert (status, body) == (202, {"subscriber": "HR", "queued": 1})
    await until(lambda: len(rig.hook.delivered()) == 3)
    assert rig.hook.delivered()[-1] == ids[1]
    assert (await rig.get("/readyz"))[1]["disabledSubscribers"] == []
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'corpsync_feed_delivered_total{subscriber="HR"} 3.0' in metrics


async def test_subscriber_routes_refuse_what_they_cannot_do(rig: FeedRig) -> None:
    assert (await rig.post("/api/subscribers/Nope/enable"))[0] == 404
    status, body = await rig.post("/api/subscribers/HR/replay", {})
    assert (status, body["field"]) == (400, "after")
    status, body = await rig.post("/api/subscribers/HR/replay", {"after": 5})
    assert (status, body["field"]) == (400, "after")
    status, body = await rig.post("/api/subscribers/HR/replay", {"since": "2026-01-02T00:00:00Z",
                                                                 "until": "2026-01-01T00:00:00Z"})  # fmt: skip
    assert (status, body["field"]) == (400, "until")


async def test_a_subscriber_not_in_the_app_dir_is_listed_as_removed(rig: FeedRig) -> None:
    pool = rig.app[POOL]
    old = feed_store.SubscriberFilter("Old", ("member.*",), ("HQ",), ("mobile",))
    await feed_store.declare_subscribers(pool, [old], complete=False)  # another app dir had it
    await declare(pool, rig.app[CONFIG].subscribers)  # serve starts again with this one
    status, body = await rig.get("/api/subscribers")
    assert status == 200 and [i["name"] for i in body["items"]] == ["HR", "Old"]
    hr, gone = body["items"]
    assert (hr["removed"], hr["removedAt"], gone["removed"]) == (False, None, True)
    assert (gone["title"], gone["url"], gone["events"], gone["corps"], gone["personalFields"]) == (
        None, None, ["member.*"], ["HQ"], ["mobile"]
    )  # fmt: skip
    assert (await rig.get("/readyz"))[1]["disabledSubscribers"] == []
