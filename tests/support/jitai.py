"""The world the JitAI seeds' examples run in: the upstream simulator (on its own loop thread, since the facade
under test is synchronous) holding the seeds' orgs, and an app dir made of the seeds' config files as written plus
``apiBase`` to reach it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from handlers.config import Secret
from handlers.store import credentials
from handlers.store import pool as db
from receiver.jitai.runner import LoopThread
from receiver.testing import SimMember, SimOrg, Simulator, generate_org, run_simulator, write_proxy_corp, write_suite
from tests.support.paths import JITAI_APP

# The seeds' credentials, as their config files hold them.
INNER_CORP_ID, INNER_AGENT_ID, INNER_SECRET = "ww1234567890abcdef", 1000001, "your_secret_key_here"
DD_CORP_ID, DD_AGENT_ID, DD_APP_KEY = "ding12345678", 1234567890, "dingxxxxxxxxxxxxxxx"
DD_APP_SECRET = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
PROXY_SUITE_ID = "dk0123456789abcdef"  # tests/data/jitai/app/auths/QywxProxyAuth
PROXY_CORP_ID = "wwproxytenant00001"  # {{qywxProxyCorpId}}
PROXY_CORP_NAME = "代开发客户企业"
CORP_A, CORP_B = "wwcorpa00000000001", "wwcorpb00000000001"
MARKET_SUITE_ID, MARKET_CORP_ID, MARKET_AGENT_ID = "suite456", "corp123", "1000456"  # getAgentId's example
ENV = {"qywxProxyCorpId": PROXY_CORP_ID}

# The member ids the seeds' examples name, per org.
INNER_MEMBERS = ("user001", "user002", "admin001", "admin002", "admin003")
PROXY_MEMBERS = ("member123", "member1", "member2", "manager001", "employee001", "user1", "user2")
DD_MEMBERS = ("member123", "member456")


def _add_members(org: SimOrg, ids: tuple[str, ...]) -> None:
    for n, userid in enumerate(ids):
        dept = 2 if 2 in org.departments else 1
        org.put_member(
            SimMember(userid, f"示例成员{n}", [dept], [n], [0], dept, unionid=f"union-{userid}-{org.corp_id}")
        )


def _org(seed: int, ids: tuple[str, ...], corp_id: str) -> SimOrg:
    org = generate_org(seed, members=6, departments=4, depth=2, tags=1, inactive_ratio=0, corp_id=corp_id)
    _add_members(org, ids)
    return org


@dataclass
class SeedWorld:
    sim: Simulator
    app_dir: Path
    inner: SimOrg
    proxy: SimOrg
    corp_a: SimOrg
    corp_b: SimOrg
    dingtalk: SimOrg


def _with_api_base(path: Path, api_base: str) -> None:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    doc["apiBase"] = api_base
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


@contextlib.contextmanager
def seed_world(root: Path, *, examples: bool = True) -> Iterator[SeedWorld]:
    """The simulator serving the seeds' orgs, and ``root/app``: the seeds' app dir plus apiBase. With
    ``examples``, also the 代开发 tenants CorpA and CorpB of the proxy seed's "多企业管理" and the suite of its
    getAgentId example, every tenant already authorized upstream; without, the 代开发 tenant waits for create_auth.
    """
    sim = Simulator(seed=14)
    inner = _org(141, INNER_MEMBERS, INNER_CORP_ID)
    sim.add_wecom_corp(inner, corp_id=INNER_CORP_ID, secret=INNER_SECRET, agent_id=INNER_AGENT_ID,
                       contact_new_ip=False, privacy=False)  # fmt: skip
    ding = _org(142, DD_MEMBERS, DD_CORP_ID)
    sim.add_dingtalk_app(ding, app_key=DD_APP_KEY, app_secret=DD_APP_SECRET, corp_id=DD_CORP_ID, agent_id=DD_AGENT_ID)
    sim.add_wecom_suite(PROXY_SUITE_ID, suite_secret="proxy-template-secret")
    proxy, corp_a, corp_b = _org(143, PROXY_MEMBERS, PROXY_CORP_ID), _org(144, (), CORP_A), _org(145, (), CORP_B)
    for n, org in enumerate((proxy, corp_a, corp_b) if examples else (proxy,)):
        code = f"perm-{org.corp_id}" if examples else None
        sim.add_suite_tenant(PROXY_SUITE_ID, org, permanent_code=code, agent_id=1000010 + n, privacy=False)
    app_dir = root / "app"
    shutil.copytree(JITAI_APP, app_dir)
    loop = LoopThread("simulator")
    stack = contextlib.AsyncExitStack()
    try:
        loop.run(stack.enter_async_context(run_simulator(sim)))
        _with_api_base(app_dir / "corps/MyQywxCorp/MyQywxCorp.json", sim.wecom_api_base)
        _with_api_base(app_dir / "corps/testNailDivision/testNailDivision.json", sim.dingtalk_api_base)
        _with_api_base(app_dir / "auths/QywxProxyAuth/QywxProxyAuth.json", sim.wecom_api_base)
        if examples:
            write_proxy_corp(app_dir, "CorpA", corp_id=CORP_A, auth="QywxProxyAuth")
            write_proxy_corp(app_dir, "CorpB", corp_id=CORP_B, auth="QywxProxyAuth")
            write_suite(app_dir, "Market", suite_id=MARKET_SUITE_ID, api_base=sim.wecom_api_base)
        yield SeedWorld(sim, app_dir, inner, proxy, corp_a, corp_b, ding)
    finally:
        loop.run(stack.aclose())
        loop.stop()


async def _authorize(db_url: str) -> None:
    conn = await db.connect(db_url)
    try:
        tenants = [(PROXY_CORP_ID, "1000010", PROXY_CORP_NAME), (CORP_A, "1000011", "A"), (CORP_B, "1000012", "B")]
        for corp_id, agent_id, name in tenants:
            info = {"auth_corp_info": {"corpid": corp_id, "corp_name": name}}
            await credentials.store_tenant(conn, "QywxProxyAuth", corp_id, Secret(f"perm-{corp_id}"), agent_id, info)
        await credentials.store_tenant(conn, "Market", MARKET_CORP_ID, Secret("perm-market"), MARKET_AGENT_ID, {})
    finally:
        await conn.close()


def authorize_tenants(db_url: str) -> None:
    """What the tenants' create_auth left in the database: their permanent codes and agent ids (the e2e test
    of the seeds' app dir walks the real suite callbacks instead)."""
    asyncio.run(_authorize(db_url))


def sql(db_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Rows of one query, from a synchronous test."""

    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(db_url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            return rows
        finally:
            await conn.close()

    return asyncio.run(fetch())
