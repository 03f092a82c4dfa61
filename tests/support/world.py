"""A running world for scenario tests: the upstream simulator with a WeCom and a DingTalk org, the real app wired
to it, a scheduler the test ticks, and a comparison of the local directory with the simulator's org."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from aiohttp.test_utils import TestClient

from handlers.config import Secret
from handlers.sync.fullsync import RunStatus, SyncResult
from handlers.sync.scheduler import SchedulerSettings, SyncScheduler
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.keys import CONFIG, CORP_ROWS, POOL, SCHEDULER
from receiver.settings import Settings
from receiver.testing import (
    SimOrg,
    Simulator,
    generate_org,
    run_simulator,
    signed_request,
    write_dingtalk_corp,
    write_wecom_corp,
)
from receiver.testing.accounts import DingTalkApp, WecomCorp
from tests.support.eventkit import until

Corp = Literal["HQ", "Sales"]
APPLY_WITHIN = 10.0  # seconds the worker gets to drain the inbox (it takes milliseconds)

MEMBERS_SQL = """
SELECT m.user_id, m.name,
       ARRAY(SELECT md.dept_id FROM member_departments md WHERE md.member = m.id ORDER BY md.dept_id) AS dept_ids
FROM members m WHERE m.corp = $1 AND m.status = 'active'
"""


@dataclass(frozen=True, slots=True)
class Mirror:
    """What both sides must agree on: active members (name, departments) and departments (parent, name)."""

    members: dict[str, tuple[str | None, tuple[str, ...]]]
    departments: dict[str, tuple[str | None, str | None]]


def upstream(org: SimOrg) -> Mirror:
    """The org as the app may see it: members and departments inside the visible sub-tree."""
    members: dict[str, tuple[str | None, tuple[str, ...]]] = {
        m.userid: (m.name, tuple(sorted(str(d) for d in m.departments if org.in_scope(d))))
        for m in org.members.values()
        if org.member_in_scope(m)
    }
    departments: dict[str, tuple[str | None, str | None]] = {
        str(d.id): (None if d.id == org.visible_root else str(d.parentid), d.name)
        for d in org.departments.values()
        if org.in_scope(d.id)
    }
    return Mirror(members, departments)


def differences(local: Mirror, remote: Mirror) -> dict[str, dict[str, tuple[object, object]]]:
    """(local, upstream) of every member and department on which the two disagree."""
    found: dict[str, dict[str, tuple[object, object]]] = {}
    for kind, mine, theirs in (
        ("members", local.members, remote.members),
        ("departments", local.departments, remote.departments),
    ):
        keys = sorted(set(mine) | set(theirs))
        found[kind] = {k: (mine.get(k), theirs.get(k)) for k in keys if mine.get(k) != theirs.get(k)}
    return found


@dataclass
class World:
    """The simulator with a WeCom self-built corp (HQ) and a DingTalk corp (Sales), and the app wired to it."""

    sim: Simulator
    hq: WecomCorp
    sales: DingTalkApp
    client: TestClient[Any, Any]
    scheduler: SyncScheduler

    @property
    def app(self) -> web.Application:
        app: web.Application = self.client.app
        return app

    def org(self, corp: Corp) -> SimOrg:
        return self.hq.org if corp == "HQ" else self.sales.org

    async def push(self, corp: Corp, plaintexts: Sequence[bytes]) -> None:
        """Send each callback as the platform does (freshly signed: a new nonce every time), in this order."""
        platform: Literal["wecom", "dingtalk"]
        if corp == "HQ":
            url, platform = "/callback/wecom/HQ", "wecom"
            token, key, rid = self.hq.token, self.hq.aes_key, self.hq.corp_id
        else:
            url, platform = "/callback/dingtalk/Sales", "dingtalk"
            token, key, rid = self.sales.token, self.sales.aes_key, self.sales.app_key
        for plaintext in plaintexts:
            result = await self.sim.push(
                str(self.client.make_url(url)), plaintext, platform=platform, token=token, aes_key=key,
                receive_id=rid, session=self.client.session, record_failure=False,
            )  # fmt: skip
            assert result.delivered, (result.status, result.body)

    async def replay(self, corp: Corp, plaintext: bytes, times: int) -> None:
        """Send one signed request ``times`` times unchanged (the platform retrying after a lost answer)."""
        path, query, body = signed_request(self.app[CONFIG], corp, plaintext)
        for _ in range(times):
            response = await self.client.post(path, params=query, data=body)
            assert response.status == 200, await response.text()

    async def drained(self) -> None:
        """Wait until the worker has settled every inbox row; none may be dead or failing."""
        pool = self.app[POOL]

        async def idle() -> bool:
            pending: int = await pool.fetchval("SELECT count(*) FROM inbox WHERE status = 'pending'")
            return pending == 0

        await until(idle, within=APPLY_WITHIN)
        assert await pool.fetch("SELECT id, event_type, last_error FROM inbox WHERE status = 'dead'") == []

    async def local(self, corp: Corp) -> Mirror:
        pool, row = self.app[POOL], self.app[CORP_ROWS][corp]
        members = {r["user_id"]: (r["name"], tuple(r["dept_ids"])) for r in await pool.fetch(MEMBERS_SQL, row)}
        rows = await pool.fetch("SELECT dept_id, parent_id, name FROM departments WHERE corp = $1", row)
        return Mirror(members, {r["dept_id"]: (r["parent_id"], r["name"]) for r in rows})

    async def sync_request(self, corp: Corp) -> str | None:
        reason: str | None = await self.app[POOL].fetchval(
            "SELECT sync_request_reason FROM corps WHERE id = $1", self.app[CORP_ROWS][corp]
        )
        return reason

    async def full_syncs(self, *, startup: bool = False) -> dict[str, SyncResult]:
        """One scheduler tick: start the runs that are due (first, drift, ...) and wait for them."""
        names = await self.scheduler.tick(startup=startup)
        tasks = {name: self.scheduler.request(name) for name in names}  # the runs tick started, not new ones
        results = dict(zip(tasks, await asyncio.gather(*tasks.values()), strict=True))
        assert all(r.status is RunStatus.SUCCEEDED for r in results.values()), results
        return results

    async def assert_in_sync(self, corp: Corp) -> None:
        differs = differences(await self.local(corp), upstream(self.org(corp)))
        assert not any(differs.values()), f"different from upstream: {differs}"

    async def settle(self, corp: Corp) -> None:
        """Drain the inbox; where the result is not yet equal the corp must have asked for a full sync (never
        silently wrong), and the full sync it asked for makes it equal."""
        await self.drained()
        if await self.local(corp) != upstream(self.org(corp)):
            differs = differences(await self.local(corp), upstream(self.org(corp)))
            assert await self.sync_request(corp) is not None, f"silently different from upstream: {differs}"
        if await self.sync_request(corp) is not None:
            assert corp in await self.full_syncs()
        await self.assert_in_sync(corp)


@contextlib.asynccontextmanager
async def running_world(
    root: Path, db_url: str, aiohttp_client: Callable[..., Any], *, admin_token: str | None = None
) -> AsyncIterator[World]:
    """Simulated orgs, an app dir for them under ``root``, the app (worker on) serving, first full syncs done."""
    sim = Simulator(seed=11)
    hq = sim.add_wecom_corp(generate_org(21, members=40, departments=8, depth=3, tags=2))
    sales = sim.add_dingtalk_app(generate_org(22, members=40, departments=8, depth=3, tags=0))
    async with run_simulator(sim):
        write_wecom_corp(root, "HQ", corp_id=hq.corp_id, secret=hq.secret, contact_secret=hq.contact_secret,
                         api_base=sim.wecom_api_base, token=hq.token, aes_key=hq.aes_key,
                         agent_id=str(hq.agent_id))  # fmt: skip
        write_dingtalk_corp(root, "Sales", corp_id=sales.corp_id, app_key=sales.app_key, app_secret=sales.app_secret,
                            api_base=sim.dingtalk_api_base, token=sales.token, aes_key=sales.aes_key)  # fmt: skip
        config = load_app_dir(root, {})
        # The app's scheduler polls every 5 s and debounces drift for a minute: here its loop is off and the
        # tests tick it themselves, without the debounce.
        token = None if admin_token is None else Secret(admin_token)
        settings = Settings(app_dir=root, run_worker=True, run_scheduler=False, admin_token=token)
        app = create_app(settings, config, db_url, scheduler=SchedulerSettings(debounce_seconds=0))
        client: TestClient[Any, Any] = await aiohttp_client(app)
        world = World(sim, hq, sales, client, client.app[SCHEDULER])
        try:
            assert set(await world.full_syncs(startup=True)) == {"HQ", "Sales"}
            await world.assert_in_sync("HQ")
            await world.assert_in_sync("Sales")
            yield world
        finally:
            await client.close()
