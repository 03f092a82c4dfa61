"""The console's actions (POST, each behind a session and its CSRF token): start a full sync, confirm or discard
the removals a quarantined run held, retry or discard a dead letter. Each answers 303 to the page that shows
the result, with a message."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web

from handlers.errors import UnknownRecord
from handlers.store import console as store
from handlers.sync.fullsync import RunStatus
from receiver.api.corps import get_corp
from receiver.console.base import Ctx, action, problem, redirect
from receiver.keys import POOL, SCHEDULER, WORKER

log = logging.getLogger("corpsync.console")

RUN_WAIT = 5.0  # seconds to wait for a started sync's run record, to show that run next


def _run_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise UnknownRecord("sync run", raw)
    return int(raw)


def _inbox_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise UnknownRecord("event", raw)
    return int(raw)


async def _start(request: web.Request, *, allow_deletes: bool) -> web.StreamResponse:
    """Start (or join) the corp's full sync; answer with its run's page once its record exists."""
    corp = await get_corp(request.app, request.match_info["corp"])
    known: asyncio.Future[tuple[int | None, bool]] = asyncio.get_running_loop().create_future()

    def on_run(run_id: int | None, already: bool) -> None:
        if not known.done():
            known.set_result((run_id, already))

    task, fresh = request.app[SCHEDULER].start(corp.config, "console", allow_deletes=allow_deletes, on_run=on_run)
    run_id, already = None, not fresh  # not fresh: this process runs the corp's sync already, with its own options
    if fresh:
        either: set[asyncio.Future[Any]] = {task, known}
        await asyncio.wait(either, timeout=RUN_WAIT, return_when=asyncio.FIRST_COMPLETED)
        if known.done():
            run_id, already = known.result()
        elif task.done() and not task.cancelled() and task.exception() is None:
            result = task.result()
            run_id, already = result.run_id, result.status is RunStatus.ALREADY_RUNNING
    log.info("console sync requested", extra={"action": "console_sync", "corp": corp.name, "run_id": run_id,
                                              "allow_deletes": allow_deletes, "already_running": already})  # fmt: skip
    base = f"/console/corps/{quote(corp.name, safe='')}/runs"
    if already:  # joined a run that may keep its removals held: nothing was confirmed
        return redirect(base, msg="already_running")
    msg = "confirmed" if allow_deletes else "sync_started"
    return redirect(base if run_id is None else f"{base}/{run_id}", msg=msg)


@action
async def start_sync(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    return await _start(request, allow_deletes=False)


@action
async def confirm_run(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """Confirm a quarantined run's removals: a fresh full sync with the guard off (it marks the run confirmed)."""
    corp = await get_corp(request.app, request.match_info["corp"])
    run = await store.sync_run(request.app[POOL], corp.row_id, _run_id(request.match_info["runId"]))
    if run is None:
        raise UnknownRecord("sync run", request.match_info["runId"])
    if run["status"] != "quarantined" or run["confirmed_at"] is not None or run["discarded_at"] is not None:
        return problem(request, ctx, 409, "not_awaiting")
    return await _start(request, allow_deletes=True)


@action
async def discard_run(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    corp = await get_corp(request.app, request.match_info["corp"])
    run_id = _run_id(request.match_info["runId"])
    if not await store.discard_run(request.app[POOL], corp.row_id, run_id):
        return problem(request, ctx, 409, "not_awaiting")
    log.info("console run discarded", extra={"action": "console_run_discarded", "corp": corp.name, "run_id": run_id})
    return redirect(f"/console/corps/{quote(corp.name, safe='')}/runs/{run_id}", msg="discarded")


@action
async def retry_dead(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    inbox_id = _inbox_id(request.match_info["inboxId"])
    stream = await store.retry_dead(request.app[POOL], inbox_id)
    if stream is None:
        return problem(request, ctx, 409, "not_dead")
    request.app[WORKER].wake([stream])
    log.info("console dead letter retried", extra={"action": "console_dead_retried", "inbox_id": inbox_id})
    return redirect("/console/dead", msg="retried")


@action
async def discard_dead(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    inbox_id = _inbox_id(request.match_info["inboxId"])
    if not await store.discard_dead(request.app[POOL], inbox_id):
        return problem(request, ctx, 409, "not_dead")
    log.info("console dead letter discarded", extra={"action": "console_dead_discarded", "inbox_id": inbox_id})
    return redirect("/console/dead", msg="dead_discarded")
