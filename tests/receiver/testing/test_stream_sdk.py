"""The simulator speaks the real Stream protocol: the official Python SDK (``dingtalk-stream``) connects to its
gateway, receives events and ACKs them."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import pytest

from receiver.testing import Simulator, generate_org, mutations, run_simulator
from tests.support.eventkit import until
from tests.support.paths import TESTS
from tests.support.processes import corpsync_env


async def test_the_official_sdk_connects_receives_and_acks() -> None:
    sim = Simulator(seed=3)
    app = sim.add_dingtalk_app(generate_org(3, members=5, departments=2, depth=2, tags=0))
    async with run_simulator(sim):
        env = corpsync_env(DINGTALK_OPENAPI_ENDPOINT=sim.stream_base, NO_PROXY="*", no_proxy="*")
        sdk = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.sdk_stream_client", app.app_key, app.app_secret,
            cwd=TESTS.parent, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:

            async def connected() -> bool:
                return bool(sim.stream.links(app.app_key))

            await until(connected, within=20)
            dept = sorted(d for d in app.org.departments if d != app.org.root_id)[0]
            changes = [mutations.add_member(app.org, departments=[dept]) for _ in range(3)]
            sent = [m for change in changes for m in sim.stream.publish(app.app_key, change)]

            async def acked() -> bool:
                return sim.stream.delivered(sent)

            await until(acked, within=15)
            assert sdk.stdout is not None
            received = [(await sdk.stdout.readline()).decode().strip() for _ in sent]
        finally:
            sdk.kill()
            await sdk.wait()
    assert received == [sim.stream.deliveries[m].frame["headers"]["eventId"] for m in sent]
    assert {a.status for a in sim.stream.acks} == {"SUCCESS"}
    assert [d.attempts for d in sim.stream.deliveries.values()] == [1, 1, 1]


async def test_a_wrong_client_secret_gets_no_ticket() -> None:
    sim = Simulator(seed=3)
    app = sim.add_dingtalk_app(generate_org(3, members=5, departments=2, depth=2, tags=0))
    async with run_simulator(sim), aiohttp.ClientSession() as session:
        url = sim.stream_base + "/v1.0/gateway/connections/open"
        body = {"clientId": app.app_key, "clientSecret": "wrong", "subscriptions": [{"type": "EVENT", "topic": "*"}]}
        async with session.post(url, json=body) as response:
            assert response.status == 401
        body["clientSecret"] = app.app_secret
        async with session.post(url, json=body) as response:
            opened = await response.json()
        ws_url = f"{opened['endpoint']}?ticket={opened['ticket']}"
        async with session.ws_connect(ws_url):
            pass
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # a ticket opens one connection only
            async with session.ws_connect(ws_url):
                pass
        assert refused.value.status == 401
