"""``corpsync simulate``'s 代开发 template: described like the app-dir files, and authorized at a receiver the way
WeCom does it (suite_ticket, then create_auth), retried until the receiver takes it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from handlers.store import credentials
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.keys import POOL
from receiver.settings import Settings
from receiver.testing import Simulator, describe, generate_org, run_simulator, write_proxy_corp, write_suite
from receiver.testing.serve import PROXY_TEMPLATE, authorize_tenants
from tests.support.eventkit import until


async def test_the_template_tenant_is_authorized_at_the_receiver(
    tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    sim = Simulator(seed=3)
    sim.add_wecom_suite(PROXY_TEMPLATE)
    tenant = sim.add_suite_tenant(PROXY_TEMPLATE, generate_org(3, 12, 3, 2))
    async with run_simulator(sim), aiohttp.ClientSession() as session:
        info = describe(sim)["suites"][PROXY_TEMPLATE]
        assert info["tenants"][tenant.corp_id]["members"] == 12
        write_suite(tmp_path, "Suite", suite_id=info["suiteId"], suite_secret=info["suiteSecret"],
                    provider_corp_id=info["providerCorpId"], api_base=info["apiBase"], token=info["token"],
                    aes_key=info["encodingAESKey"])  # fmt: skip
        write_proxy_corp(tmp_path, "T1", corp_id=tenant.corp_id, auth="Suite")
        settings = Settings(app_dir=tmp_path, run_worker=True, run_scheduler=False)
        client = await aiohttp_client(create_app(settings, load_app_dir(tmp_path, {}), db_url))
        pool = client.app[POOL]

        wrong = str(client.make_url("/callback/wecom-suite/NoSuchAuth"))
        with pytest.raises(TimeoutError):  # a 404 is not a delivery: it keeps trying, never gives up silently
            await asyncio.wait_for(authorize_tenants(sim, PROXY_TEMPLATE, wrong, session, every=0.05), 0.5)

        url = str(client.make_url("/callback/wecom-suite/Suite"))
        assert await authorize_tenants(sim, PROXY_TEMPLATE, url, session) == [tenant.corp_id]

        async def applied() -> bool:
            pending: int = await pool.fetchval("SELECT count(*) FROM inbox WHERE status <> 'done'")
            return pending == 0

        await until(applied, within=10)
        stored = await credentials.load_tenant(pool, "Suite", tenant.corp_id)
        assert stored is not None and stored.permanent_code is not None  # exchanged upstream by the receiver
        assert tenant.permanent_code is not None and stored.permanent_code.reveal() == tenant.permanent_code
        reason = await pool.fetchval("SELECT sync_request_reason FROM corps WHERE name = 'T1'")
        assert reason == "create_auth"  # the receiver asked for the tenant's first sync
