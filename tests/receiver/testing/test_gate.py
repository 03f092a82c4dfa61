"""Cross-cutting simulator behaviour: rate limits, call counting, injected faults and latency."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from receiver.testing import RateLimits, Simulator, generate_org, run_simulator
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(5000.0)


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    sim = Simulator(clock=clock, rate_limits=RateLimits(wecom_limit=5, dingtalk_limit=20))
    sim.add_wecom_corp(generate_org(1, 50, 6, 3), corp_id="wwa", secret="sa")
    sim.add_wecom_corp(generate_org(2, 50, 6, 3), corp_id="wwb", secret="sb")
    sim.add_dingtalk_app(generate_org(3, 50, 6, 3), app_key="dingk", app_secret="ds")
    return sim


@pytest.fixture
async def client(aiohttp_client: Any, sim: Simulator) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(sim.app)
    return client


async def wecom_token(client: TestClient[Any, Any], corp_id: str = "wwa", secret: str = "sa") -> str:  # noqa: S107
    doc = await (await client.get("/wecom/cgi-bin/gettoken", params={"corpid": corp_id, "corpsecret": secret})).json()
    value: str = doc["access_token"]
    return value


async def wecom(client: TestClient[Any, Any], token: str, api: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/wecom/cgi-bin/" + api, params={"access_token": token, **params})
    doc: dict[str, Any] = await response.json()
    return doc


async def ding_token(client: TestClient[Any, Any]) -> str:
    doc = await (await client.get("/dingtalk/gettoken", params={"appkey": "dingk", "appsecret": "ds"})).json()
    value: str = doc["access_token"]
    return value


async def ding(client: TestClient[Any, Any], token: str, api: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/dingtalk/" + api, params={"access_token": token}, json=body)
    doc: dict[str, Any] = await response.json()
    return doc


async def test_wecom_limit_is_per_corp_per_api_per_window(
    client: TestClient[Any, Any], sim: Simulator, clock: FakeClock
) -> None:
    a, b = await wecom_token(client), await wecom_token(client, "wwb", "sb")
    answers = [(await wecom(client, a, "tag/list"))["errcode"] for _ in range(7)]
    assert answers == [0] * 5 + [45009] * 2
    assert (await wecom(client, b, "tag/list"))["errcode"] == 0  # another corp
    assert (await wecom(client, a, "department/simplelist"))["errcode"] == 0  # another API
    clock.now += 60
    assert (await wecom(client, a, "tag/list"))["errcode"] == 0  # the next window
    assert sim.calls["wecom:tag/list"] == 9  # refused calls are counted too
    assert sim.errors[("wecom:tag/list", 45009)] == 2


async def test_dingtalk_limit_is_20_a_second(client: TestClient[Any, Any], clock: FakeClock) -> None:
    token = await ding_token(client)
    answers = [(await ding(client, token, "topapi/user/count", {}))["errcode"] for _ in range(22)]
    assert answers == [0] * 20 + [90018] * 2
    clock.now += 1
    assert (await ding(client, token, "topapi/user/count", {}))["errcode"] == 0


async def test_per_api_override(client: TestClient[Any, Any], sim: Simulator) -> None:
    assert sim.rate_limits is not None
    sim.rate_limits.per_api["wecom:tag/list"] = 1
    token = await wecom_token(client)
    assert [(await wecom(client, token, "tag/list"))["errcode"] for _ in range(2)] == [0, 45009]


async def test_limits_are_off_by_default() -> None:
    sim = Simulator()
    assert sim.rate_limits is None
    assert Simulator(rate_limits=True).rate_limits == RateLimits()


async def test_http500_fault_for_the_next_calls(client: TestClient[Any, Any], sim: Simulator) -> None:
    token = await wecom_token(client)
    sim.fail("wecom:tag/list", times=2, kind="http500")
    statuses = [(await client.get("/wecom/cgi-bin/tag/list", params={"access_token": token})).status for _ in range(3)]
    assert statuses == [500, 500, 200]


async def test_errcode_fault_on_a_bare_name_hits_both_platforms(client: TestClient[Any, Any], sim: Simulator) -> None:
    sim.fail("gettoken", times=2, errcode=-1)
    wecom_doc = await (await client.get("/wecom/cgi-bin/gettoken", params={"corpid": "wwa", "corpsecret": "sa"})).json()
    ding_doc = await (await client.get("/dingtalk/gettoken", params={"appkey": "dingk", "appsecret": "ds"})).json()
    assert wecom_doc == {"errcode": -1, "errmsg": "system busy"}
    assert ding_doc["errcode"] == -1
    assert "request_id" in ding_doc
    assert (await ding_token(client)) != ""


async def test_timeout_fault_holds_the_request(sim: Simulator) -> None:
    sim.hang_seconds = 5.0
    sim.fail("dingtalk:gettoken", kind="timeout")
    async with run_simulator(sim) as running, aiohttp.ClientSession() as http:
        url = running.dingtalk_api_base + "/gettoken"
        with pytest.raises(TimeoutError):
            await http.get(url, params={"appkey": "dingk", "appsecret": "ds"}, timeout=aiohttp.ClientTimeout(total=0.2))
        response = await http.get(url, params={"appkey": "dingk", "appsecret": "ds"})
        assert (await response.json())["errcode"] == 0


async def test_failing_department_fails_member_listing_until_cleared(
    client: TestClient[Any, Any], sim: Simulator
) -> None:
    sim.fail_department(2)
    token, dtoken = await wecom_token(client), await ding_token(client)
    for _ in range(2):
        assert (await wecom(client, token, "user/list", department_id="2"))["errcode"] == -1
        assert (await wecom(client, token, "user/simplelist", department_id="2"))["errcode"] == -1
        assert (await ding(client, dtoken, "topapi/v2/user/list", {"dept_id": 2, "cursor": 0, "size": 10}))[
            "errcode"
        ] == -1
    assert (await wecom(client, token, "user/list", department_id="3"))["errcode"] == 0
    sim.clear_faults()
    assert (await wecom(client, token, "user/list", department_id="2"))["errcode"] == 0


async def test_latency_delays_every_call(client: TestClient[Any, Any], sim: Simulator) -> None:
    sim.latency = 0.05
    started = time.perf_counter()
    await asyncio.gather(*(wecom_token(client) for _ in range(4)))
    assert time.perf_counter() - started >= 0.05
    assert sim.calls["wecom:gettoken"] == 4
    sim.reset_counters()
    assert not sim.calls
