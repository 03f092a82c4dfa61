"""Full syncs over HTTP: ``POST …/sync`` starts one (202 with its run), ``GET …/sync-runs[/{runId}]`` reads them.

A sync started here runs in the background of this process, as a task of the app's scheduler (``SCHEDULER``):
the one owner of the process's full syncs, one task per corp. One run per corp at a time across processes
(the advisory lock of handlers.sync.fullsync): a sync already under way anywhere is answered with that run
and ``alreadyRunning: true`` — with the options it was started with.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

import handlers.api.writes as writes
from handlers.api import Corp
from handlers.errors import InvalidInput, UnknownRecord
from handlers.sync.fullsync import RunStatus, SyncResult
from receiver.api import params
from receiver.api.corps import get_corp
from receiver.api.guard import endpoint, reply
from receiver.api.read_routes import page_route, record_route
from receiver.api.write_routes import MEMBER_IDS
from receiver.keys import SCHEDULER

log = logging.getLogger("corpsync.api")

START_WAIT = 10.0  # seconds to wait for the run record before answering without it
POLL = 0.05

RunOf = tuple[int | None, bool]  # (run id, already running)


async def _known_run(corp: Corp, task: asyncio.Task[SyncResult], known: asyncio.Future[RunOf]) -> RunOf:
    """(run id, already running) of the sync the request started or joined; the id is None only when no run
    record appeared within START_WAIT (the sync waits for a free slot)."""
    deadline = asyncio.get_running_loop().time() + START_WAIT
    either: set[asyncio.Future[Any]] = {task, known}
    await asyncio.wait(either, timeout=START_WAIT, return_when=asyncio.FIRST_COMPLETED)
    if known.done():
        run_id, already = known.result()
    elif task.done():
        result = task.result()  # a crash of the sync itself raises here: the guard answers it
        run_id, already = result.run_id, result.status is RunStatus.ALREADY_RUNNING
    else:
        return None, False
    # Coalesced with a run that holds the lock but has not written its record yet: it does so at once.
    while run_id is None and already and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(POLL)
        run_id = await corp.running_sync_run(0)
    return run_id, already


@endpoint
async def start_sync(request: web.Request) -> web.Response:
    params.query(request, ())
    allow_deletes = params.flag(await params.body(request, ("allowDeletes",), optional=True), "allowDeletes", False)
    corp = await get_corp(request.app, request.match_info["corp"])
    return await _start(request, corp, "api", allow_deletes)


@endpoint
async def init_corp(request: web.Request) -> web.Response:
    """initCorp: the corp's first full sync (trigger 'first'); once it has synced, another sync, as the API's."""
    params.query(request, ())
    await params.body(request, (), optional=True)
    corp = await get_corp(request.app, request.match_info["corp"])
    return await _start(request, corp, "api" if await corp.has_good_sync() else "first", False)


async def _start(request: web.Request, corp: Corp, trigger: str, allow_deletes: bool) -> web.Response:
    """Start (or join) a full sync of ``corp`` in the scheduler and answer 202 with its run."""
    name = corp.name
    known: asyncio.Future[RunOf] = asyncio.get_running_loop().create_future()

    def on_run(run_id: int | None, already: bool) -> None:
        if not known.done():
            known.set_result((run_id, already))

    task, fresh = request.app[SCHEDULER].start(corp.config, trigger, allow_deletes=allow_deletes, on_run=on_run)
    if not fresh:  # this process runs the corp's sync already: answer with that run
        known.set_result((await corp.running_sync_run(0), True))
    run_id, already = await _known_run(corp, task, known)
    log.info("api sync requested", extra={"action": "api_sync_requested", "corp": name, "run_id": run_id,
                                          "already_running": already})  # fmt: skip
    run = None if run_id is None else (await corp.get_sync_run(run_id)).to_json()
    body = {"runId": None if run_id is None else str(run_id), "alreadyRunning": already, "run": run}
    runs = request.rel_url.raw_path.rsplit("/", 1)[0] + "/sync-runs"
    headers = {} if run_id is None else {"Location": f"{runs}/{run_id}"}
    return reply(body, 202, headers)


@endpoint
async def bulk_register(request: web.Request) -> web.Response:
    """bulkRegister: read the platform's directory now (getThirdCorpData) and write it. Without a member list it is
    a full sync from that data (one recorded run, the deletion guard on unless ``allowDeletes``); with one, only
    those members are created or updated. Answers when it is done."""
    params.query(request, ())
    data = await params.body(request, (*MEMBER_IDS, "allowDeletes"), optional=True)
    member_ids = params.optional_id_list_of(data, MEMBER_IDS)
    allow_deletes = params.flag(data, "allowDeletes", False)
    if member_ids is not None and allow_deletes:
        raise InvalidInput("allowDeletes", "only for the whole directory (without a member list)")
    corp = await get_corp(request.app, request.match_info["corp"])
    if member_ids is not None:  # a bad list fails before the platform is read
        writes.check_ids(next(key for key in MEMBER_IDS if key in data), member_ids)
    result = await corp.bulk_register(await corp.get_third_corp_data(), member_ids, allow_deletes=allow_deletes)
    log.info("api bulk register", extra={"action": "api_bulk_register", "corp": corp.name,
                                         "status": result.status.value})  # fmt: skip
    return reply({
        "runId": None if result.run_id is None else str(result.run_id), "status": result.status.value,
        "counts": result.counts, "apiCalls": result.api_calls, "error": result.error,
    })  # fmt: skip


def _run_id_of(raw: str) -> int:
    """A run id of the path; anything else names no run (404)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise UnknownRecord("sync run", raw)
    return int(raw)


sync_runs = page_route(Corp.page_sync_runs)
sync_run = record_route(lambda corp, path: corp.get_sync_run(_run_id_of(path["runId"])))
