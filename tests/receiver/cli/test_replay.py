"""Export inbox rows as JSON lines and replay them: into the inbox and through the handlers, or over HTTP."""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestServer

from receiver.cli.replay import callback_path, export_events, replay_file
from receiver.testing import sign_dingtalk_callback, sign_wecom_callback
from tests.support.eventkit import StubPlatform, ding_json, make_corp, member, push, wecom_xml, worker

WECOM_CORP = "ww5f3a9c2e7b1d4086"


async def _signed(pool: asyncpg.Pool, corp: int, plaintext: str, stream: str = "HQ") -> None:
    query, body = sign_wecom_callback(plaintext.encode(), token="tok", aes_key="a" * 43, receive_id=WECOM_CORP)
    await push(pool, plaintext, stream=stream, corp=corp, query=query, body=body.decode())


async def _export(pool: asyncpg.Pool, **filters: Any) -> list[dict[str, Any]]:
    out = io.StringIO()
    count = await export_events(pool, out, **filters)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == count
    return lines


async def test_export_writes_the_raw_request_and_the_plaintext(pool: asyncpg.Pool) -> None:
    corp = await make_corp(pool)
    await _signed(pool, corp, wecom_xml("create_user", UserID="u1", Name="U1"))
    [line] = await _export(pool)
    assert (line["route"], line["platform"], line["stream"], line["corp"]) == ("wecom", "wecom", "HQ", "HQ")
    assert line["path"] == "/callback/wecom/HQ"
    assert set(line["query"]) == {"msg_signature", "timestamp", "nonce"}
    assert "<Encrypt>" in line["body"] and "<UserID>" in line["plaintext"]
    assert datetime.fromisoformat(line["received_at"]) <= datetime.now(UTC)


async def test_export_filters_by_corp_and_time(pool: asyncpg.Pool) -> None:
    hq = await make_corp(pool)
    sales = await make_corp(pool, "Sales", platform="dingtalk", corp_id="dingb3c0d8e4f7a2965c")
    await push(pool, wecom_xml("delete_user", UserID="a"), corp=hq)
    await push(pool, ding_json("user_leave_org", UserId=["b"]), stream="Sales", platform="dingtalk", corp=sales)
    await pool.execute("UPDATE inbox SET received_at = now() - interval '2 days' WHERE stream = 'HQ'")
    assert [line["stream"] for line in await _export(pool, corp="Sales")] == ["Sales"]
    assert [line["stream"] for line in await _export(pool, since=datetime.now(UTC) - timedelta(days=1))] == ["Sales"]
    assert len(await _export(pool)) == 2


def test_callback_paths_follow_the_routes() -> None:
    assert callback_path("dingtalk", "Sales", "Sales", None) == "/callback/dingtalk/Sales"
    assert callback_path("wecom-suite", "suite:Suite", None, None) == "/callback/wecom-suite/Suite"
    assert callback_path("wecom-suite-data", "Suite/wxcorp", None, None) == "/callback/wecom-suite/Suite/data"
    assert callback_path("wecom-suite-data", "T1", "T1", "Suite") == "/callback/wecom-suite/Suite/data"
    assert callback_path("dingtalk-failed", "Sales", "Sales", None) is None


async def test_replay_into_the_inbox_applies_through_the_handlers_once(pool: asyncpg.Pool, tmp_path: Path) -> None:
    corp = await make_corp(pool)
    await _signed(pool, corp, wecom_xml("create_user", UserID="u1", Name="张三", Department=[1]))
    await _signed(pool, corp, wecom_xml("update_user", UserID="u1", Position="经理"))
    w = worker(pool, StubPlatform())
    await w.run_until_idle()
    file = tmp_path / "events.jsonl"
    with file.open("w", encoding="utf-8") as out:
        await export_events(pool, out)
    await pool.execute("DELETE FROM inbox; DELETE FROM change_log; DELETE FROM members")

    report = await replay_file(file, pool=pool, worker=w)
    assert (report.read, report.inserted, report.duplicates, report.applied) == (2, 2, 0, 2)
    row = await member(pool, corp, "u1")
    assert row is not None and (row["name"], row["position"]) == ("张三", "经理")

    again = await replay_file(file, pool=pool, worker=w)
    assert (again.inserted, again.duplicates, again.applied) == (0, 2, 0)
    assert await pool.fetchval("SELECT count(*) FROM change_log") == 2


async def test_replay_to_a_url_resends_the_raw_requests(
    pool: asyncpg.Pool, tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    hq = await make_corp(pool)
    sales = await make_corp(pool, "Sales", platform="dingtalk", corp_id="dingb3c0d8e4f7a2965c")
    await _signed(pool, hq, wecom_xml("delete_user", UserID="a"))
    plaintext = ding_json("user_leave_org", event_id="e-1", UserId=["b"]).encode()
    query, body = sign_dingtalk_callback(plaintext, token="tok", aes_key="a" * 43, receive_id="dingappkey")
    await push(pool, plaintext, stream="Sales", platform="dingtalk", corp=sales, query=query, body=body.decode())
    await push(pool, ding_json("user_add_org", UserId=["c"]), stream="Sales", platform="dingtalk",
               route="dingtalk-failed", corp=sales)  # fmt: skip
    file = tmp_path / "events.jsonl"
    with file.open("w", encoding="utf-8") as out:
        await export_events(pool, out)

    seen: list[tuple[str, dict[str, str], bytes]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.path, dict(request.query), await request.read()))
        return web.Response(text="success")

    app = web.Application()
    app.router.add_post("/{tail:.*}", record)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        report = await replay_file(file, url=str(server.make_url("/")), session=session)
    assert (report.read, report.sent, report.failed, report.skipped) == (3, 2, 0, 1)
    assert [s[0] for s in seen] == ["/callback/wecom/HQ", "/callback/dingtalk/Sales"]
    assert seen[1][1] == query and seen[1][2] == body
