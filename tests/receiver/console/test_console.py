"""The console over HTTP: sign-in and its cookie, CSRF and cookie-less posts refused, the loopback rule without a
token, both languages, bounded pages, and callbacks shown without their contents."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from handlers.config import Secret
from handlers.store import locks
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.keys import CONSOLE, CORP_ROWS, POOL
from receiver.settings import Settings
from receiver.testing import mutations
from tests.support.console import csrf_of, dead_letter, quarantined_run, statuses
from tests.support.eventkit import until
from tests.support.streaming import stream_world
from tests.support.world import World, running_world

TOKEN = "console-test-token-4f1c"


@pytest.fixture
async def world(tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]) -> AsyncIterator[World]:
    async with running_world(tmp_path, db_url, aiohttp_client, admin_token=TOKEN) as running:
        yield running


@pytest.fixture
async def open_world(tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]) -> AsyncIterator[World]:
    """No admin token: the console answers loopback callers."""
    async with running_world(tmp_path, db_url, aiohttp_client) as running:
        yield running


async def sign_in(client: TestClient[Any, Any], token: str = TOKEN, **headers: str) -> Any:
    form = await client.get("/console/login")
    assert form.status == 200
    return await client.post(
        "/console/login", data={"token": token, "csrf": csrf_of(await form.text())}, allow_redirects=False,
        headers=headers,
    )  # fmt: skip


async def runs_of(world: World, corp: str = "HQ") -> int:
    count: int = await world.app[POOL].fetchval(
        "SELECT count(*) FROM sync_runs WHERE corp = $1", world.app[CORP_ROWS][corp]
    )
    return count


async def test_pages_send_a_stranger_to_the_sign_in_form_with_one_token_field(world: World) -> None:
    answer = await world.client.get("/console", allow_redirects=False)
    assert (answer.status, answer.headers["Location"]) == (303, "/console/login")
    html = await (await world.client.get("/console/login")).text()
    assert html.count('type="password"') == 1 and 'name="token"' in html
    assert html.count("<input") == 2  # the token and the form's CSRF token


async def test_sign_in_sets_an_httponly_strict_session_cookie(world: World) -> None:
    answer = await sign_in(world.client)
    assert (answer.status, answer.headers["Location"]) == (303, "/console")
    cookie = next(c for c in answer.headers.getall("Set-Cookie") if c.startswith("corpsync_console="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here: a Secure cookie would never come back
    page = await world.client.get("/console")
    assert page.status == 200 and "HQ" in await page.text()


async def test_the_session_cookie_is_secure_behind_https(world: World) -> None:
    answer = await sign_in(world.client, **{"X-Forwarded-Proto": "https"})
    cookie = next(c for c in answer.headers.getall("Set-Cookie") if c.startswith("corpsync_console="))
    assert "Secure" in cookie


async def test_a_wrong_token_is_refused_with_the_form_again(world: World) -> None:
    answer = await sign_in(world.client, "not-the-token")
    assert answer.status == 401 and 'name="token"' in await answer.text()
    assert (await world.client.get("/console", allow_redirects=False)).status == 303


async def test_ten_wrong_tokens_a_minute_hold_off_the_next_sign_in(world: World) -> None:
    for _ in range(10):
        assert (await sign_in(world.client, "guess")).status == 401
    held_off = await sign_in(world.client)
    assert held_off.status == 429 and "Too many" in await held_off.text()
    assert (await world.client.get("/console", allow_redirects=False)).status == 303
    console = world.app[CONSOLE]
    console.clock = lambda: time.time() + 61  # a minute later
    assert (await sign_in(world.client)).status == 303


async def test_a_sign_in_without_its_csrf_token_is_refused(world: World) -> None:
    await world.client.get("/console/login")
    answer = await world.client.post("/console/login", data={"token": TOKEN}, allow_redirects=False)
    assert answer.status == 403
    assert (await world.client.get("/console", allow_redirects=False)).status == 303


async def test_posts_without_the_session_cookie_or_its_csrf_token_are_refused(world: World) -> None:
    before = await runs_of(world)
    cookieless = await world.client.post("/console/corps/HQ/sync", data={"csrf": "x"}, allow_redirects=False)
    assert cookieless.status == 403
    await sign_in(world.client)
    page = await (await world.client.get("/console")).text()
    assert (await world.client.post("/console/corps/HQ/sync", data={}, allow_redirects=False)).status == 403
    forged = await world.client.post("/console/corps/HQ/sync", data={"csrf": "A" * 43}, allow_redirects=False)
    assert forged.status == 403
    assert await runs_of(world) == before  # none of them started a sync
    started = await world.client.post("/console/corps/HQ/sync", data={"csrf": csrf_of(page)}, allow_redirects=False)
    assert started.status == 303 and "/console/corps/HQ/runs" in started.headers["Location"]
    assert await runs_of(world) == before + 1


async def test_sign_out_ends_the_session_in_this_browser(world: World) -> None:
    await sign_in(world.client)
    page = await (await world.client.get("/console")).text()
    out = await world.client.post("/console/logout", data={"csrf": csrf_of(page)}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"].startswith("/console/login")
    assert (await world.client.get("/console", allow_redirects=False)).status == 303


@pytest.fixture
async def second_process(tmp_path: Path, db_url: str, world: World, aiohttp_client: Callable[..., Any]) -> Any:
    """Another serve process on the same database with the same token (worker off): its own console client."""
    settings = Settings(app_dir=tmp_path, run_worker=False, run_scheduler=False, admin_token=Secret(TOKEN))
    return await aiohttp_client(create_app(settings, load_app_dir(tmp_path, {}), db_url))


async def test_a_signed_out_session_cookie_is_refused_by_every_process(world: World, second_process: Any) -> None:
    """Sign-out ends the session itself: a copy of its cookie (kept, or stolen before) opens no page and sends no
    form, here or in another process."""
    cookie = {"corpsync_console": (await sign_in(world.client)).cookies["corpsync_console"].value}
    page = await (await world.client.get("/console")).text()
    assert (await second_process.get("/console", cookies=cookie, allow_redirects=False)).status == 200
    out = await world.client.post("/console/logout", data={"csrf": csrf_of(page)}, allow_redirects=False)
    assert out.status == 303
    world.client.session.cookie_jar.clear()
    for client in (world.client, second_process):
        answer = await client.get("/console", cookies=cookie, allow_redirects=False)
        assert answer.status == 303 and answer.headers["Location"] == "/console/login"
        sync = await client.post("/console/corps/HQ/sync", data={"csrf": csrf_of(page)}, cookies=cookie,
                                 allow_redirects=False)  # fmt: skip
        assert sync.status == 403
    assert (await sign_in(world.client)).status == 303  # signing in again opens a new session
    assert (await world.client.get("/console", allow_redirects=False)).status == 200


async def test_wrong_tokens_count_across_processes(world: World, second_process: Any) -> None:
    """Ten wrong tokens spread over two processes hold off sign-in at both: a guesser gains nothing by spreading."""
    for n in range(10):
        assert (await sign_in(world.client if n % 2 else second_process, "guess")).status == 401
    for client in (world.client, second_process):
        assert (await sign_in(client)).status == 429


async def test_a_tampered_session_cookie_is_not_a_session(world: World) -> None:
    answer = await sign_in(world.client)
    value = answer.cookies["corpsync_console"].value
    world.client.session.cookie_jar.clear()
    expires, nonce, mac = value.split(".")
    forged = f"{int(expires) + 86400}.{nonce}.{mac}"
    page = await world.client.get("/console", cookies={"corpsync_console": forged}, allow_redirects=False)
    assert page.status == 303


async def test_without_a_token_loopback_callers_need_no_sign_in(open_world: World) -> None:
    page = await open_world.client.get("/console")
    assert page.status == 200 and "Sales" in await page.text()
    started = await open_world.client.post(
        "/console/corps/Sales/sync", data={"csrf": csrf_of(await page.text())}, allow_redirects=False
    )
    assert started.status == 303


async def test_without_a_token_a_foreign_host_or_origin_is_refused(open_world: World) -> None:
    foreign = await open_world.client.get("/console", headers={"Host": "evil.example"})
    assert foreign.status == 403
    page = await open_world.client.get("/console")
    cross = await open_world.client.post(
        "/console/corps/Sales/sync", data={"csrf": csrf_of(await page.text())},
        headers={"Origin": "http://evil.example"}, allow_redirects=False,
    )  # fmt: skip
    assert cross.status == 403
    proxied = await open_world.client.get("/console", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status == 403


async def test_the_page_speaks_the_browsers_language_or_the_one_chosen(world: World) -> None:
    await sign_in(world.client)
    zh = await (await world.client.get("/console", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})).text()
    assert "企业" in zh and 'lang="zh-CN"' in zh
    en = await world.client.get("/console?lang=en", headers={"Accept-Language": "zh-CN"})
    assert 'lang="en"' in await en.text()
    kept = await (await world.client.get("/console/dead", headers={"Accept-Language": "zh-CN"})).text()
    assert 'lang="en"' in kept  # the choice is kept in a cookie


async def test_every_answer_forbids_framing_and_caching(world: World) -> None:
    await sign_in(world.client)
    page = await world.client.get("/console")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"


async def test_recent_callbacks_show_metadata_never_the_contents(world: World) -> None:
    change = mutations.add_member(world.hq.org, name="保密的名字")
    await world.push("HQ", change.wecom)
    await world.drained()
    await sign_in(world.client)
    html = await (await world.client.get("/console/callbacks")).text()
    assert "create_user" in html
    assert "保密的名字" not in html and str(change.subject) not in html


async def test_dead_letters_page_by_page(world: World) -> None:
    for _ in range(51):
        await dead_letter(world)
    await sign_in(world.client)
    first = await (await world.client.get("/console/dead")).text()
    assert first.count('class="retry"') == 50 and 'id="next-page"' in first
    second = await (await world.client.get("/console/dead?before=" + first.split("?before=")[1].split('"')[0])).text()
    assert second.count('class="retry"') == 1 and 'id="next-page"' not in second


async def test_a_bad_page_key_is_one_clear_line_not_an_error(world: World) -> None:
    await sign_in(world.client)
    answer = await world.client.get("/console/dead?before=abc")
    assert answer.status == 400 and "before" in await answer.text()
    unknown = await world.client.get("/console/corps/Nope/runs")
    assert unknown.status == 404


async def test_a_run_that_awaits_no_decision_cannot_be_confirmed_or_discarded(world: World) -> None:
    await sign_in(world.client)
    page = await (await world.client.get("/console")).text()
    run_id = await world.app[POOL].fetchval(
        "SELECT max(id) FROM sync_runs WHERE corp = $1 AND status = 'succeeded'", world.app[CORP_ROWS]["HQ"]
    )
    for verb in ("confirm", "discard"):
        answer = await world.client.post(
            f"/console/corps/HQ/runs/{run_id}/{verb}", data={"csrf": csrf_of(page)}, allow_redirects=False
        )
        assert answer.status == 409


async def test_discarding_a_quarantined_run_keeps_its_members_and_marks_it(world: World) -> None:
    run_id, held = await quarantined_run(world)
    await sign_in(world.client)
    page = await (await world.client.get(f"/console/corps/HQ/runs/{run_id}")).text()
    assert all(user_id in page for user_id in held[:50]) and 'id="confirm-run"' in page
    answer = await world.client.post(f"/console/corps/HQ/runs/{run_id}/discard", data={"csrf": csrf_of(page)})
    after = await answer.text()
    assert 'id="run-discarded"' in after and 'id="confirm-run"' not in after
    offline = await world.app[POOL].fetchval(
        "SELECT count(*) FROM members WHERE corp = $1 AND user_id = ANY($2) AND status = 'offline'",
        world.app[CORP_ROWS]["HQ"], held,
    )  # fmt: skip
    assert offline == 0


async def test_hostile_paths_and_keys_get_a_4xx_never_a_5xx(world: World) -> None:
    await sign_in(world.client)
    for path in (
        "/console/corps/H%00Q/runs",
        "/console/corps/HQ/members/u%00x",
        "/console/corps/HQ/depts?dept=a%00",
        "/console/corps/HQ/members?q=%00",
        "/console/corps/HQ/members?q=" + "x" * 300,
        "/console/corps/HQ/runs/1%00",
        "/console/corps/HQ/runs/99999999999999999999",
        "/console/corps/HQ/runs?after=%00",
        "/console/corps/HQ/runs?after=bm90LWEtY3Vyc29y",
        "/console/callbacks?before=-1",
    ):
        answer = await world.client.get(path)
        assert 400 <= answer.status < 500, (path, answer.status)
        assert "<!doctype html>" in await answer.text()  # the console's one-line error page


async def test_confirming_while_another_process_syncs_the_corp_confirms_nothing(world: World) -> None:
    run_id, held = await quarantined_run(world)
    await sign_in(world.client)
    page = await (await world.client.get(f"/console/corps/HQ/runs/{run_id}")).text()
    async with world.app[POOL].acquire() as other:  # another process's full sync of HQ holds the lock
        assert await locks.try_lock_full_sync(other, world.app[CORP_ROWS]["HQ"])
        try:
            answer = await world.client.post(f"/console/corps/HQ/runs/{run_id}/confirm", data={"csrf": csrf_of(page)})
            assert "already running" in await answer.text()
        finally:
            await locks.unlock_full_sync(other, world.app[CORP_ROWS]["HQ"])
    assert await statuses(world, "HQ", held) == {"active"}
    confirmed = await world.app[POOL].fetchval("SELECT confirmed_at FROM sync_runs WHERE id = $1", run_id)
    assert confirmed is None


async def test_a_runs_held_removals_come_a_page_at_a_time(world: World) -> None:
    run_id, _ = await quarantined_run(world)
    held = {"reason": "threshold", "members": [f"h{i:03}" for i in range(60)],
            "departments": [f"d{i:03}" for i in range(55)], "failed_departments": []}  # fmt: skip
    await world.app[POOL].execute("UPDATE sync_runs SET held = $2 WHERE id = $1", run_id, held)
    await sign_in(world.client)
    first = await (await world.client.get(f"/console/corps/HQ/runs/{run_id}")).text()
    assert first.count('class="held"') == 50 and "h049" in first and "h050" not in first
    assert "?after=50" in first and "?dafter=50" in first and "d049" in first and "d050" not in first
    second = await (await world.client.get(f"/console/corps/HQ/runs/{run_id}?after=50")).text()
    assert second.count('class="held"') == 10 and "h059" in second and 'id="next-page"' not in second
    depts = await (await world.client.get(f"/console/corps/HQ/runs/{run_id}?dafter=50")).text()
    assert "d054" in depts and "d049" not in depts


async def test_the_overview_shows_a_stream_corps_connection(
    tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    async with stream_world(tmp_path, db_url, aiohttp_client) as world:
        client = world.clients[0]
        page = await (await client.get("/console")).text()  # no admin token: a loopback caller
        row = page.split('data-corp="Field"')[1].split("</tr>")[0]
        assert "Stream" in row and "connected" in row and "/callback/" not in row
        world.sim.stream.refuse_open = 503  # the gateway goes away: the connection drops and cannot reopen
        await world.sim.stream.drop(world.ding.app_key)

        async def down() -> bool:
            return world.consumer().state.connected_since is None and world.consumer().state.last_error is not None

        await until(down, within=10.0)
        page = await (await client.get("/console")).text()
        row = page.split('data-corp="Field"')[1].split("</tr>")[0]
        assert "disconnected" in row and str(world.consumer().state.last_error) in row
