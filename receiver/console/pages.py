"""The console's pages (GET): corps overview, department tree with members, member search, a member with their
change history, sync runs and one run with the removals it held, dead letters, recent callbacks. Every list is
one page of at most ``PAGE_SIZE`` rows with a link to the next."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers.api.reads import MemberFilter
from handlers.config import DingTalkCorp, WecomInnerCorp, WecomProxyCorp
from handlers.errors import InvalidInput, UnknownRecord
from handlers.store import console as store
from receiver.api.corps import get_corp
from receiver.console.base import PAGE_SIZE, Ctx, page, render
from receiver.keys import CONFIG, POOL, STREAMS

MAX_KEY = 256  # a page key (user id, corp name) longer than any the platforms issue is refused
MAX_CHILDREN = 100  # sub-departments listed per page under one department


def _text_key(request: web.Request, name: str) -> str | None:
    value = request.query.get(name) or None
    if value is not None and (len(value) > MAX_KEY or "\x00" in value):
        raise InvalidInput(name, f"at most {MAX_KEY} characters, no NUL")
    return value


def _int_key(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name) or None
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(name, "expected a whole number")
    return int(raw)


def _callback_state(request: web.Request, name: str) -> dict[str, Any]:
    """How this corp's events arrive: ``http`` (the callback path to register; a suite tenant's is its suite's
    data URL), ``stream`` (DingTalk Stream: this process's connection, when it holds one) or ``pull`` (none)."""
    corp = request.app[CONFIG].corps.get(name)
    if isinstance(corp, DingTalkCorp):
        if corp.stream:
            consumer = request.app.get(STREAMS, {}).get(name)
            link = None if consumer is None else consumer.state.json(consumer.now())
            return {"kind": "stream", "link": link}
        return {"kind": "http", "path": f"/callback/dingtalk/{name}"} if corp.callback else {"kind": "pull"}
    if isinstance(corp, WecomInnerCorp | WecomProxyCorp):
        return {"kind": "http", "path": f"/callback/wecom/{name}"}
    return {"kind": "http", "path": f"/callback/wecom-suite/{name.split('/', 1)[0]}/data"}


@page
async def overview(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    config = request.app[CONFIG]
    after = _text_key(request, "after")
    rows = await store.corps(request.app[POOL], sorted(config.corps), sorted(config.auths), after, PAGE_SIZE + 1)
    corps = [{**dict(row), "callback": _callback_state(request, row["name"])} for row in rows[:PAGE_SIZE]]
    more = corps[-1]["name"] if len(rows) > PAGE_SIZE else None
    dead = await store.dead_count(request.app[POOL])
    return render(request, ctx, "overview.html", corps=corps, more=more, dead=dead)


@page
async def departments(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    corp = await get_corp(request.app, request.match_info["corp"])
    pool = request.app[POOL]
    dept_id = _text_key(request, "dept")
    if dept_id is None:
        try:
            dept_id = (await corp.get_root_dept()).dept_id
        except UnknownRecord:  # never synced: nothing to show yet
            return render(request, ctx, "departments.html", corp=corp.name, path=[], children=[], members=None,
                          more_children=None)  # fmt: skip
    path = await store.dept_path(pool, corp.row_id, dept_id)
    if not path:
        raise UnknownRecord("department", dept_id)
    skip = _int_key(request, "from") or 0
    children = await store.dept_children(pool, corp.row_id, dept_id, MAX_CHILDREN + 1, skip)
    more_children = skip + MAX_CHILDREN if len(children) > MAX_CHILDREN else None
    members = await corp.page_members(MemberFilter(dept_id=dept_id), PAGE_SIZE, _text_key(request, "after"))
    return render(request, ctx, "departments.html", corp=corp.name, path=path, children=children[:MAX_CHILDREN],
                  more_children=more_children, members=members, dept=dept_id)  # fmt: skip


@page
async def member_search(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    corp = await get_corp(request.app, request.match_info["corp"])
    text = (_text_key(request, "q") or "").strip()
    rows: list[Any] = []
    more = None
    if text:
        found = await store.search_members(
            request.app[POOL], corp.row_id, text, _text_key(request, "after"), PAGE_SIZE + 1
        )
        rows = found[:PAGE_SIZE]
        more = rows[-1]["user_id"] if len(found) > PAGE_SIZE else None
    return render(request, ctx, "search.html", corp=corp.name, q=text, rows=rows, more=more)


@page
async def member(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    corp = await get_corp(request.app, request.match_info["corp"])
    found = await corp.get_member(request.match_info["memberId"])
    history = await store.member_history(
        request.app[POOL], corp.row_id, found.member_id, _int_key(request, "before"), PAGE_SIZE + 1
    )
    more = history[PAGE_SIZE - 1]["id"] if len(history) > PAGE_SIZE else None
    return render(request, ctx, "member.html", corp=corp.name, m=found, history=history[:PAGE_SIZE], more=more)


@page
async def sync_runs(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    corp = await get_corp(request.app, request.match_info["corp"])
    runs = await corp.page_sync_runs(PAGE_SIZE, _text_key(request, "after"))
    return render(request, ctx, "runs.html", corp=corp.name, runs=runs)


@page
async def sync_run(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    corp = await get_corp(request.app, request.match_info["corp"])
    raw = request.match_info["runId"]
    run = None
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        run = await store.sync_run(request.app[POOL], corp.row_id, int(raw))
    if run is None:
        raise UnknownRecord("sync run", raw)
    after = _int_key(request, "after") or 0
    held = await store.held_members(request.app[POOL], corp.row_id, run["id"], after, PAGE_SIZE + 1)
    more = held[PAGE_SIZE - 1]["position"] if len(held) > PAGE_SIZE else None
    dafter = _int_key(request, "dafter") or 0
    depts = await store.held_departments(request.app[POOL], corp.row_id, run["id"], dafter, PAGE_SIZE + 1)
    more_depts = depts[PAGE_SIZE - 1]["position"] if len(depts) > PAGE_SIZE else None
    awaiting = run["status"] == "quarantined" and run["confirmed_at"] is None and run["discarded_at"] is None
    return render(request, ctx, "run.html", corp=corp.name, run=run, held=held[:PAGE_SIZE], more=more,
                  held_depts=depts[:PAGE_SIZE], more_depts=more_depts, awaiting=awaiting)  # fmt: skip


@page
async def dead_letters(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    rows = await store.dead_letters(request.app[POOL], _int_key(request, "before"), PAGE_SIZE + 1)
    more = rows[PAGE_SIZE - 1]["id"] if len(rows) > PAGE_SIZE else None
    return render(request, ctx, "dead.html", rows=rows[:PAGE_SIZE], more=more)


@page
async def callbacks(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    rows = await store.recent_callbacks(request.app[POOL], _int_key(request, "before"), PAGE_SIZE + 1)
    more = rows[PAGE_SIZE - 1]["id"] if len(rows) > PAGE_SIZE else None
    return render(request, ctx, "callbacks.html", rows=rows[:PAGE_SIZE], more=more)
