"""The console in a real browser: headless Chromium (the operating system's package) driven by Selenium against
the app serving a simulated WeCom and DingTalk org. Every page and every action, as an operator uses them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from receiver.keys import CORP_ROWS, POOL
from receiver.testing import mutations
from tests.support.browser import Browser, chromium_paths, new_driver
from tests.support.console import dead_letter, member_status, quarantined_run, statuses
from tests.support.eventkit import until
from tests.support.world import World, running_world

TOKEN = "browser-test-token-93ad"
pytestmark = pytest.mark.timeout(120)  # a browser start and a few full syncs; each test takes a few seconds


@pytest.fixture
async def world(tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]) -> AsyncIterator[World]:
    chromium_paths()  # skip (or fail under CI) before building the world when there is no browser
    async with running_world(tmp_path, db_url, aiohttp_client, admin_token=TOKEN) as running:
        yield running


@pytest.fixture
async def browser(world: World) -> AsyncIterator[Browser]:
    driver = await asyncio.to_thread(new_driver)
    try:
        yield Browser(driver, str(world.client.make_url("/")))
    finally:
        await asyncio.to_thread(driver.quit)


async def signed_in(browser: Browser) -> Browser:
    await browser.get("/console")
    assert await browser.path() == "/console/login"
    await browser.type("input[name=token]", TOKEN)
    await browser.click("#sign-in")
    assert await browser.path() == "/console"
    return browser


async def eventually(check: Callable[[], Any], within: float = 20.0) -> None:
    async def holds() -> bool:
        return bool(await check())

    await until(holds, within=within)


async def test_sign_in_with_the_token_and_sign_out(world: World, browser: Browser) -> None:
    await browser.get("/console/corps/HQ/runs")
    assert await browser.path() == "/console/login"
    await browser.type("input[name=token]", "wrong")
    await browser.click("#sign-in")
    assert "Wrong token" in await browser.text("#login-error")
    await signed_in(browser)
    cookie = next(c for c in await browser.cookies() if c["name"] == "corpsync_console")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    await browser.click("#sign-out")
    assert await browser.path() == "/console/login?msg=signed_out"
    await browser.get("/console")
    assert await browser.path() == "/console/login"


async def test_the_overview_shows_each_corps_state(world: World, browser: Browser) -> None:
    await dead_letter(world)  # a dead letter: Sales asks for a full sync (drift) and counts one
    await signed_in(browser)
    hq = await browser.text("tr[data-corp=HQ]")
    sales = await browser.text("tr[data-corp=Sales]")
    assert "corps.QywxInnerType" in hq and "/callback/wecom/HQ" in hq
    assert "corps.DDInnerType" in sales and "/callback/dingtalk/Sales" in sales
    assert "succeeded" in hq and "never" not in hq
    assert (await browser.text("tr[data-corp=HQ] td.age")).endswith("s")  # synced seconds ago
    assert await browser.text("tr[data-corp=HQ] td.backlog") == "0"
    assert "dead_letter" in await browser.text("tr[data-corp=Sales] td.drift")
    assert await browser.text("tr[data-corp=HQ] td.drift") == "—"


async def test_the_department_tree_lists_each_departments_members(world: World, browser: Browser) -> None:
    await signed_in(browser)
    await browser.click("tr[data-corp=Sales] a.corp-link")
    org = world.sales.org
    assert await browser.path() == "/console/corps/Sales/depts"
    child_ids = await browser.attrs("#children a.dept-link", "data-dept")
    assert sorted(child_ids) == sorted(str(d.id) for d in org.departments.values() if d.parentid == org.visible_root)
    await browser.click(f"#children a[data-dept='{child_ids[0]}']")
    expected = sorted(m.userid for m in org.members.values() if int(child_ids[0]) in m.departments)
    shown = sorted(await browser.texts("#members a.member-link"))
    assert shown == expected
    assert org.departments[int(child_ids[0])].name in await browser.text("#crumbs")


async def test_member_search_finds_by_name_and_opens_the_member_with_history(world: World, browser: Browser) -> None:
    member = sorted(world.hq.org.members.values(), key=lambda m: m.userid)[3]
    await signed_in(browser)
    await browser.get("/console/corps/HQ/members")
    await browser.type("#search-q", member.name[1:])
    await browser.click("#search-go")
    assert member.userid in await browser.text("#results")
    await browser.click(f"#results a[href$='/members/{member.userid}']")
    assert await browser.text("#member-name") == member.name
    history = await browser.text("#history")
    assert "create" in history and "full_sync" in history
    await world.push("HQ", mutations.update_member(world.hq.org, member.userid, position="另一个职位").wecom)
    await world.drained()
    await browser.get(f"/console/corps/HQ/members/{member.userid}")
    assert "update" in await browser.text("#history tr.change:first-child td.op")
    assert "event" in await browser.text("#history tr.change:first-child")


async def test_sync_runs_show_counts_and_a_sync_can_be_started(world: World, browser: Browser) -> None:
    await signed_in(browser)
    await browser.get("/console/corps/HQ/runs")
    first = await browser.text("#runs tbody tr:last-child")
    assert "succeeded" in first and "members created" in first
    before = len(await browser.all("#runs tbody tr"))
    await browser.click("#start-sync")
    assert "/console/corps/HQ/runs/" in await browser.path()
    assert "Full sync started" in await browser.text("#message")

    async def finished() -> bool:
        await browser.get("/console/corps/HQ/runs")
        rows = await browser.texts("#runs tbody tr")
        return len(rows) == before + 1 and "succeeded" in rows[0]

    await eventually(finished)


async def test_confirming_a_quarantined_run_applies_the_removals_it_held(world: World, browser: Browser) -> None:
    run_id, held = await quarantined_run(world)
    assert await statuses(world, "HQ", held) == {"active"}
    await signed_in(browser)
    await browser.get("/console/corps/HQ/runs")
    assert "quarantined" in await browser.text(f"tr[data-run='{run_id}']")
    await browser.click(f"tr[data-run='{run_id}'] a.run-link")
    listed = await browser.text("#held-members")
    assert all(user_id in listed for user_id in held)
    await browser.click("#confirm-run")
    assert "/console/corps/HQ/runs/" in await browser.path()

    async def applied() -> bool:
        return await statuses(world, "HQ", held) == {"offline"}

    await eventually(applied)
    await browser.get(f"/console/corps/HQ/runs/{run_id}")
    assert await browser.all("#run-confirmed") and not await browser.all("#confirm-run")


async def test_discarding_a_quarantined_run_keeps_everyone(world: World, browser: Browser) -> None:
    run_id, held = await quarantined_run(world)
    await signed_in(browser)
    await browser.get(f"/console/corps/HQ/runs/{run_id}")
    await browser.click("#discard-run")
    assert "discarded" in await browser.text("#message")
    assert await browser.all("#run-discarded") and not await browser.all("#discard-run")
    assert await statuses(world, "HQ", held) == {"active"}


async def test_retrying_a_dead_letter_applies_it(world: World, browser: Browser) -> None:
    inbox_id, user_id = await dead_letter(world)
    assert await member_status(world, "Sales", user_id) is None
    await signed_in(browser)
    await browser.click("#nav-dead")
    row = await browser.text(f"tr[data-inbox='{inbox_id}']")
    assert "UpstreamError: system busy" in row and "user_add_org" in row
    await browser.click(f"tr[data-inbox='{inbox_id}'] button.retry")
    assert "Queued again" in await browser.text("#message")

    async def applied() -> bool:
        return await member_status(world, "Sales", user_id) == "active"

    await eventually(applied)
    await browser.get("/console/dead")
    assert not await browser.all(f"tr[data-inbox='{inbox_id}']")


async def test_discarding_a_dead_letter_settles_it_unapplied(world: World, browser: Browser) -> None:
    inbox_id, user_id = await dead_letter(world)
    await signed_in(browser)
    await browser.get("/console/dead")
    await browser.click(f"tr[data-inbox='{inbox_id}'] button.discard")
    assert not await browser.all(f"tr[data-inbox='{inbox_id}']")
    status = await world.app[POOL].fetchval("SELECT status FROM inbox WHERE id = $1", inbox_id)
    assert status == "ignored" and await member_status(world, "Sales", user_id) is None


async def test_recent_callbacks_show_metadata_only(world: World, browser: Browser) -> None:
    change = mutations.add_member(world.hq.org, name="不应显示")
    await world.push("HQ", change.wecom)
    await world.drained()
    await signed_in(browser)
    await browser.click("#nav-callbacks")
    table = await browser.text("#callbacks")
    assert "create_user" in table and "done" in table and "HQ" in table
    assert "不应显示" not in await browser.text() and str(change.subject) not in table


async def test_the_language_switch_turns_the_console_chinese_and_back(world: World, browser: Browser) -> None:
    await signed_in(browser)
    assert "Corps" in await browser.text("h1")
    await browser.click("#lang-switch")
    assert await browser.text("h1") == "企业"
    await browser.click("#nav-dead")
    assert await browser.text("h1") == "死信"  # the choice is kept
    await browser.click("#lang-switch")
    assert await browser.text("h1") == "Dead letters"


async def test_posts_without_csrf_token_or_session_cookie_are_refused(world: World, browser: Browser) -> None:
    runs = "SELECT count(*) FROM sync_runs WHERE corp = $1"
    before = await world.app[POOL].fetchval(runs, world.app[CORP_ROWS]["HQ"])
    await signed_in(browser)
    await browser.get("/console/corps/HQ/runs")
    await browser.script("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
    await browser.click("#start-sync")
    assert "another site" in await browser.text("#error-heading")
    await browser.get("/console/corps/HQ/runs")
    await asyncio.to_thread(browser.driver.delete_cookie, "corpsync_console")
    await browser.click("#start-sync")
    assert "Sign in first" in await browser.text("#error-heading")
    assert await world.app[POOL].fetchval(runs, world.app[CORP_ROWS]["HQ"]) == before
