"""Hostile traffic through the whole app (``receiver.testing.hostile``, the generator ``bench/hostile.py`` sends too):
every category on every route, many of them validly signed; no answer is a 5xx, none goes unanswered, nothing
of corpsync's logs an error, and valid callbacks are still answered 200."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from handlers.config import Secret
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.settings import Settings
from receiver.testing import (
    Simulator,
    generate_org,
    run_simulator,
    write_dingtalk_corp,
    write_proxy_corp,
    write_suite,
    write_wecom_corp,
)
from receiver.testing.hostile import CALLBACKS, CASES, HostileRequest, Target, hostile_requests, send, valid_callback

TOKEN = "hostile-test-admin-token"
CONCURRENCY = 16


@contextlib.asynccontextmanager
async def serve(
    root: Path, db_url: str, aiohttp_client: Callable[..., Any], **settings: Any
) -> AsyncIterator[tuple[TestClient[Any, Any], Target]]:
    """The app (worker on) on an app dir with a WeCom corp, a DingTalk corp, a suite and its tenant, all of
    them reading from the simulator."""
    sim = Simulator(seed=15)
    hq = sim.add_wecom_corp(generate_org(15, members=12, departments=3, depth=2))
    sales = sim.add_dingtalk_app(generate_org(16, members=12, departments=3, depth=2))
    async with run_simulator(sim):
        write_wecom_corp(root, "HQ", corp_id=hq.corp_id, secret=hq.secret, contact_secret=hq.contact_secret,
                         api_base=sim.wecom_api_base, token=hq.token, aes_key=hq.aes_key)  # fmt: skip
        write_dingtalk_corp(root, "Sales", corp_id=sales.corp_id, app_key=sales.app_key, app_secret=sales.app_secret,
                            api_base=sim.dingtalk_api_base, token=sales.token, aes_key=sales.aes_key)  # fmt: skip
        write_suite(root, "Suite", suite_id="dkhostile00000001", api_base=sim.wecom_api_base)
        write_proxy_corp(root, "T1", corp_id="wwhostiletenant01", auth="Suite")
        config = load_app_dir(root, {})
        app = create_app(Settings(app_dir=root, run_scheduler=False, client_timeout=1, **settings), config, db_url)
        client: TestClient[Any, Any] = await aiohttp_client(app)
        yield client, Target.of(config, TOKEN)
        await client.close()


async def barrage(client: TestClient[Any, Any], requests: list[HostileRequest]) -> list[tuple[int | None, str]]:
    """(status, label) of each request, ``CONCURRENCY`` at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)
    host, port = client.host, client.port
    assert port is not None

    async def one(request: HostileRequest) -> tuple[int | None, str]:
        async with gate:
            answer = await send(host, port, request, within=10)
        return answer.status, request.label

    return list(await asyncio.gather(*(one(r) for r in requests)))


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"admin_token": Secret(TOKEN)}, id="api-token"),
        pytest.param({"callback_max_age": 300}, id="loopback-api-and-max-age"),
    ],
)
async def test_hostile_requests_get_no_5xx_and_valid_callbacks_still_answer(
    tmp_path: Path,
    db_url: str,
    aiohttp_client: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, Any],
) -> None:
    async with serve(tmp_path, db_url, aiohttp_client, **settings) as (client, target):
        requests = list(itertools.islice(hostile_requests(target, seed=15), 3 * len(CASES)))
        assert {(r.category, r.route) for r in requests} == set(CASES)
        answers = await barrage(client, requests)
        assert [(status, label) for status, label in answers if status is None or status >= 500] == []
        rng = random.Random(15)
        valid = await barrage(client, [valid_callback(target, route, rng) for route in CALLBACKS])
        assert [status for status, _ in valid] == [200] * len(CALLBACKS), valid
    errors = [
        (r.name, r.getMessage()) for r in caplog.records if r.name.startswith("corpsync") and r.levelno >= logging.ERROR
    ]
    assert errors == []
