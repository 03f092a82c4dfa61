"""The JitAI seeds' config files, as written plus ``apiBase``: ``check-config`` accepts them and ``serve`` syncs
every corp they describe, the 代开发 tenant after its authorization arrives through the real suite callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.sync.fullsync import RunStatus
from handlers.sync.scheduler import SchedulerSettings
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.cli import main
from receiver.jitai import App, QywxProxyCorp
from receiver.keys import POOL, SCHEDULER
from receiver.settings import Settings
from receiver.testing.harness import SUITE_AES_KEY, SUITE_TOKEN
from tests.support.eventkit import until
from tests.support.jitai import ENV, PROXY_CORP_ID, PROXY_SUITE_ID, SeedWorld, seed_world
from tests.support.paths import JITAI_APP

SEED_CORPS = {"MyQywxCorp", "MyQywxProxyCorp", "testNailDivision"}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeedWorld]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    with seed_world(tmp_path, examples=False) as built:
        yield built


def test_check_config_accepts_the_seeds_files_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("qywxProxyCorpId", PROXY_CORP_ID)
    assert main(["check-config", "--app-dir", str(JITAI_APP)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"app dir {JITAI_APP}: 3 corps, 1 suite auth\n")
    assert out.count("no callback URL") == 2  # the self-built seeds have no callback block
    assert "/callback/wecom/MyQywxProxyCorp" in out and "/callback/wecom-suite/QywxProxyAuth" in out


async def test_serve_syncs_every_seed_corp_and_the_tenant_after_its_create_auth(
    world: SeedWorld, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    config = load_app_dir(world.app_dir, ENV)
    assert set(config.corps) == SEED_CORPS
    settings = Settings(app_dir=world.app_dir, run_worker=True, run_scheduler=False)
    client = await aiohttp_client(create_app(settings, config, db_url, scheduler=SchedulerSettings(debounce_seconds=0)))
    pool = client.app[POOL]

    instruction_url = str(client.make_url("/callback/wecom-suite/QywxProxyAuth"))
    _, create_auth = world.sim.create_auth(PROXY_SUITE_ID, PROXY_CORP_ID)
    for plaintext in (world.sim.issue_suite_ticket(PROXY_SUITE_ID), create_auth):
        pushed = await world.sim.push(
            instruction_url, plaintext, platform="wecom", token=SUITE_TOKEN, aes_key=SUITE_AES_KEY,
            receive_id=PROXY_SUITE_ID, session=client.session,
        )  # fmt: skip
        assert pushed.delivered, pushed

    async def authorized() -> bool:
        code: str | None = await pool.fetchval(
            "SELECT permanent_code FROM suite_tenants WHERE corp_id = $1", PROXY_CORP_ID
        )
        return code is not None

    await until(authorized, within=10)

    scheduler = client.app[SCHEDULER]
    started = await scheduler.tick(startup=True)
    results = await asyncio.gather(*(scheduler.request(name) for name in started))
    assert {r.corp: r.status for r in results} == dict.fromkeys(SEED_CORPS, RunStatus.SUCCEEDED)
    for name, org in (("MyQywxCorp", world.inner), ("MyQywxProxyCorp", world.proxy),
                      ("testNailDivision", world.dingtalk)):  # fmt: skip
        rows = await pool.fetch(
            "SELECT m.user_id FROM members m JOIN corps c ON c.id = m.corp WHERE c.name = $1 AND m.status = 'active'",
            name,
        )
        assert {r["user_id"] for r in rows} == {m.userid for m in org.members.values() if m.active}, name

    # the pull-only seeds have no callback URL; the tenant's is its auth's
    assert (await client.post("/callback/wecom/MyQywxCorp", data=b"<xml/>")).status == 404
    assert (await client.post("/callback/dingtalk/testNailDivision", data=b"{}")).status == 404

    def agent_id() -> str | None:  # the facade, beside the running service, on the same database
        with App(world.app_dir, database_url=db_url):
            return QywxProxyCorp.getAgentId(PROXY_CORP_ID, PROXY_SUITE_ID)

    assert await asyncio.to_thread(agent_id) == "1000010"
