"""Screenshots of the console's main pages for the README, taken with the test suite's headless Chromium against
the demo's simulated orgs (``corpsync demo``'s own builders): the first full syncs, a stream of changes through
signed callbacks, then a mass departure at HQ that the deletion guard quarantines.

    .venv/bin/python docs/screenshots.py [--out docs]

The database is ``CORPSYNC_DATABASE_URL`` when set (it must be migrated or empty), else an embedded one. Chinese
pages need a CJK font (Debian: ``apt-get install fonts-wqy-microhei``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support, as bench/ does

from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.cli.demo import SUITE_ID, DemoOrgs, Pusher, build_orgs, random_change, wait_applied, write_app_dir
from receiver.embedded import start_embedded
from receiver.keys import SCHEDULER
from receiver.runtime import http_session
from receiver.settings import Settings
from receiver.testing import mutations, run_simulator
from tests.support.browser import Browser, new_driver

SIMPLE = (  # (file, path, language)
    ("console-overview.png", "/console", "en"),
    ("console-overview-zh.png", "/console", "zh"),
    ("console-departments.png", "/console/corps/Sales/depts", "en"),
    ("console-runs.png", "/console/corps/HQ/runs", "en"),
    ("console-callbacks.png", "/console/callbacks", "en"),
)


async def main(out: Path) -> None:
    state = Path(tempfile.mkdtemp(prefix="corpsync-shots-"))
    url = os.environ.get("CORPSYNC_DATABASE_URL")
    embedded = None
    if not url:
        embedded = await asyncio.to_thread(start_embedded, state)
        url = embedded.url
    try:
        orgs = build_orgs(80)
        async with run_simulator(orgs.sim):
            write_app_dir(state, orgs)
            app = create_app(Settings(app_dir=state, run_scheduler=False), load_app_dir(state, {}), url)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            sockets = getattr(site._server, "sockets", None) or []  # aiohttp has no public accessor for the port
            receiver = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
            try:
                await story(app, orgs, receiver)
                await shoot(receiver, out)
            finally:
                await runner.cleanup()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        shutil.rmtree(state, ignore_errors=True)


async def story(app: web.Application, orgs: DemoOrgs, receiver: str) -> None:
    """The demo's start (tenant authorized, first syncs, changes through callbacks), then 30 people leave HQ."""
    scheduler = app[SCHEDULER]
    async with http_session() as session:
        pusher = Pusher(orgs, receiver, session)
        await pusher.suite(orgs.sim.issue_suite_ticket(SUITE_ID))
        await pusher.suite(orgs.sim.create_auth(SUITE_ID, orgs.tenant.corp_id)[1])
        await wait_applied(app)
        for name in ("HQ", "T1", "Sales"):
            await scheduler.request(name, "startup")
        rng = random.Random(5)  # noqa: S311 - a reproducible story, not a secret
        org_of = {"HQ": orgs.wecom.org, "T1": orgs.tenant.org, "Sales": orgs.dingtalk.org}
        for _ in range(60):
            name = rng.choice(sorted(org_of))
            try:
                change = random_change(org_of[name], rng)[1]()
            except ValueError:
                continue
            await pusher.push(name, change)
        await wait_applied(app)
        org = orgs.wecom.org
        for userid in sorted(m.userid for m in org.members.values() if org.member_in_scope(m))[:30]:
            mutations.remove_member(org, userid)
        await scheduler.request("HQ", "manual")


async def shoot(receiver: str, out: Path) -> None:
    driver = await asyncio.to_thread(new_driver, 1280, 1000)
    browser = Browser(driver, receiver)
    try:
        for file, path, lang in SIMPLE:
            await browser.get(f"{path}?lang={lang}")
            await save(browser, out / file)
        await browser.get("/console/corps/Sales/depts?lang=en")
        children = await browser.attrs("#children a.dept-link", "data-dept")
        await browser.get(f"/console/corps/Sales/depts?dept={children[0]}")
        members = await browser.attrs("#members a.member-link", "href")
        await browser.get(members[0][len(receiver) :])
        await save(browser, out / "console-member.png")
        await browser.get("/console/corps/HQ/runs")
        quarantined = await browser.attrs("#runs tr[data-status=quarantined]", "data-run")
        await browser.get(f"/console/corps/HQ/runs/{quarantined[0]}")
        await save(browser, out / "console-quarantined.png")
    finally:
        await asyncio.to_thread(driver.quit)


async def save(browser: Browser, path: Path) -> None:
    await browser.screenshot(str(path))
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Screenshots of the console for the README")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    asyncio.run(main(parser.parse_args().out))
