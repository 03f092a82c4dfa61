"""WeCom suites and 代开发 templates: ticket → suite token → permanent code → corp token → directory reads."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from handlers.clients import RetryPolicy, SuiteClient, WecomClient, make_client
from handlers.config import Secret, SuiteAuth, WecomProxyCorp
from handlers.errors import UnknownCorp, UpstreamError
from handlers.store import credentials as cred
from receiver.testing import Simulator, generate_org, run_simulator
from receiver.testing.accounts import WecomSuite

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, timeout=2.0)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(Simulator(seed=9)) as running:
        yield running


def auth_config(sim: Simulator, suite: WecomSuite) -> SuiteAuth:
    return SuiteAuth(
        name="Suite",
        title="Suite",
        suite_id=suite.suite_id,
        suite_secret=Secret(suite.suite_secret),
        token=Secret(suite.token),
        aes_key=Secret(suite.aes_key),
        provider_corp_id=suite.provider_corp_id,
        api_base=sim.wecom_api_base,
    )


def tenant_config(auth: SuiteAuth, corp_id: str) -> WecomProxyCorp:
    return WecomProxyCorp(name="T1", title="T1", corp_id=corp_id, auth=auth)


def suite_client(auth: SuiteAuth, session: aiohttp.ClientSession, pool: asyncpg.Pool, **kw: Any) -> SuiteClient:
    return SuiteClient(auth, session, pool, retry=FAST, **kw)


async def install(sim: Simulator, suite: WecomSuite, pool: asyncpg.Pool, members: int = 80) -> str:
    """A corp installs the suite; the intake would store the ticket it was pushed and the auth code."""
    org = generate_org(41, members=members, departments=8, depth=3)
    tenant = sim.add_suite_tenant(suite.suite_id, org, agent_id=1000042)
    await cred.store_suite_ticket(pool, suite.suite_id, suite.tickets[-1], int(time.time()))
    code, _ = sim.create_auth(suite.suite_id, tenant.corp_id)
    await cred.store_auth_code(pool, suite.suite_id, code)
    return tenant.corp_id


@pytest.mark.parametrize("suite_id", ["dkTemplate01", "wwThirdParty01"])
async def test_ticket_to_permanent_code_to_corp_token_to_snapshot(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool, suite_id: str
) -> None:
    suite = sim.add_wecom_suite(suite_id)
    corp_id = await install(sim, suite, pool)
    auth = auth_config(sim, suite)
    suites = suite_client(auth, session, pool)

    tenants = await suites.exchange_pending_auth_codes()
    assert [t.corp_id for t in tenants] == [corp_id]
    assert tenants[0].agent_id == "1000042"
    assert await cred.pending_auth_codes(pool, suite_id) == []
    stored = await cred.load_tenant(pool, "Suite", corp_id)
    assert stored is not None
    assert stored.permanent_code == Secret(sim.suites[suite_id].tenants[corp_id].permanent_code or "")
    raw = await pool.fetchval("SELECT auth_info::text FROM suite_tenants")
    assert "permanent_code" not in raw
    assert "access_token" not in raw
    assert await suites.get_agent_id(corp_id) == "1000042"

    directory = make_client(tenant_config(auth, corp_id), session, pool, retry=FAST)
    assert isinstance(directory, WecomClient)
    snap = await directory.fetch_snapshot()
    assert len(snap.members) == 80
    assert snap.admins is not None
    assert snap.admins
    corp_token_api = "wecom:gettoken" if suite_id.startswith("dk") else "wecom:service/get_corp_token"
    assert sim.calls[corp_token_api] == 1
    assert sim.calls["wecom:service/get_suite_token"] == 1
    assert await directory.member_count() is None  # no contact-sync secret for a tenant


async def test_suite_token_uses_the_newest_stored_ticket(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    suite = sim.add_wecom_suite("dkNewest")
    first = suite.tickets[-1]
    sim.issue_suite_ticket("dkNewest")
    now = int(time.time())
    await cred.store_suite_ticket(pool, "dkNewest", suite.tickets[-1], now)
    await cred.store_suite_ticket(pool, "dkNewest", first, now - 600)  # an old push arriving late
    suites = suite_client(auth_config(sim, suite), session, pool)
    assert await suites.suite_token.get()
    assert sim.errors[("wecom:service/get_suite_token", 40085)] == 0


async def test_missing_ticket_is_a_clear_error(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    suite = sim.add_wecom_suite("dkNoTicket")
    with pytest.raises(UpstreamError) as raised:
        await suite_client(auth_config(sim, suite), session, pool).suite_token.get()
    assert "suite_ticket" in raised.value.errmsg
    assert sim.calls["wecom:service/get_suite_token"] == 0


async def test_a_used_auth_code_fails_with_its_errcode_and_is_dropped(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    suite = sim.add_wecom_suite("dkOnce")
    await install(sim, suite, pool)
    code = (await cred.pending_auth_codes(pool, "dkOnce"))[0]
    suites = suite_client(auth_config(sim, suite), session, pool)
    await suites.exchange_auth_code(code)
    with pytest.raises(UpstreamError) as raised:
        await suites.exchange_auth_code(code)
    assert raised.value.errcode == 40078
    assert await suites.exchange_pending_auth_codes() == []
    assert await cred.pending_auth_codes(pool, "dkOnce") == []


async def test_auth_info_refresh_and_unknown_tenant(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    suite = sim.add_wecom_suite("wwInfo")
    corp_id = await install(sim, suite, pool)
    auth = auth_config(sim, suite)
    suites = suite_client(auth, session, pool)
    await suites.exchange_pending_auth_codes()
    sim.suites["wwInfo"].tenants[corp_id].agent_id = 1000077
    refreshed = await suites.get_auth_info(corp_id)
    assert refreshed.agent_id == "1000077"
    assert await cred.get_agent_id(pool, "Suite", corp_id) == "1000077"
    with pytest.raises(UnknownCorp):
        await make_client(tenant_config(auth, "wwNotInstalled"), session, pool, retry=FAST).member("u000001")


async def test_reset_permanent_code_is_picked_up_when_the_old_token_is_rejected(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    suite = sim.add_wecom_suite("dkReset")
    corp_id = await install(sim, suite, pool, members=20)
    auth = auth_config(sim, suite)
    suites = suite_client(auth, session, pool)
    await suites.exchange_pending_auth_codes()
    directory = make_client(tenant_config(auth, corp_id), session, pool, retry=FAST)
    assert await directory.member("u000001") is not None

    code, _ = sim.reset_permanent_code("dkReset", corp_id)
    await suites.exchange_auth_code(code)  # the new permanent code replaces the old one
    sim.expire_tokens()
    found = await directory.member("u000001")
    assert found is not None
    assert sim.calls["wecom:gettoken"] == 2


async def test_suite_token_expiry_is_refreshed_once(
    sim: Simulator, session: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    suite = sim.add_wecom_suite("wwExpire")
    corp_id = await install(sim, suite, pool)
    suites = suite_client(auth_config(sim, suite), session, pool)
    await suites.exchange_pending_auth_codes()
    sim.expire_tokens()
    assert (await suites.get_auth_info(corp_id)).corp_id == corp_id
    assert sim.errors[("wecom:service/get_auth_info", 42009)] == 1
    assert sim.calls["wecom:service/get_suite_token"] == 2
