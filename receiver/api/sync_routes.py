"""Full syncs over HTTP: ``POST …/sync`` starts one (202 with its run), ``GET …/sync-runs[/{runId}]`` reads them.

A sync started here runs in the background of this process, as a task of the app's scheduler (``SCHEDULER``):
the one owner of the process's full syncs, one task per corp. One run per corp at a time across processes
(the advisory lock of handlers.sync.fullsync): a sync already under way anywhere is answered with that run
and ``alreadyRunning: true`` — with the options it was started with.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from handlers.api import Corp
from handlers.errors import UnknownRecord
from handlers.sync.fullsync import RunStatus, SyncResult
from receiver.api import params
from receiver.api.corps import get_corp
from receiver.api.guard import endpoint, problem, reply
from receiver.api.read_routes import page_route, record_route
from receiver.keys import SCHEDULER

log = logging.getLogger("corpsync.api")

START_WAIT = 10.0  # seconds to wait for the run record before answering without it
POLL = 0.05


def _start(app: web.Application, corp: Corp, allow_deletes: bool) -> tuple[asyncio.Task[SyncResult], bool]:
    """(task, started now): the app's scheduler runs the sync, or already runs one of this corp."""
    return app[SCHEDULER].start(corp.config, "api", allow_deletes=allow_deletes)


async def _run_id(corp: Corp, task: asyncio.Task[SyncResult], after: int) -> tuple[int | None, bool]:
    """(run id, already running) once the run has its record, or (None, False) after START_WAIT."""
    deadline = asyncio.get_running_loop().time() + START_WAIT
    while True:
        if task.done():
            result = task.result()
            return result.run_id, result.status is RunStatus.ALREADY_RUNNING
        found = await corp.running_sync_run(after)
        if found is not None:
            return found, False
        if asyncio.get_running_loop().time() > deadline:
            return None, False
        await asyncio.wait({task}, timeout=POLL)


@endpoint
async def start_sync(request: web.Request) -> web.Response:
    params.query(request, ())
    allow_deletes = params.flag(await params.body(request, ("allowDeletes",), optional=True), "allowDeletes", False)
    name = request.match_info["corp"]
    corp = await get_corp(request.app, name)
    before = await corp.last_sync_run_id()
    task, fresh = _start(request.app, corp, allow_deletes)
    run_id, already = await _run_id(corp, task, before if fresh else 0)
    if run_id is None and task.done():
        return problem(500, "the sync could not start")
    log.info("api sync requested", extra={"action": "api_sync_requested", "corp": name, "run_id": run_id,
                                          "already_running": already or not fresh})  # fmt: skip
    run = None if run_id is None else (await corp.get_sync_run(run_id)).to_json()
    body = {"runId": None if run_id is None else str(run_id), "alreadyRunning": already or not fresh, "run": run}
    headers = {} if run_id is None else {"Location": f"{request.rel_url.raw_path}-runs/{run_id}"}
    return reply(body, 202, headers)


def _run_id_of(raw: str) -> int:
    """A run id of the path; anything else names no run (404)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise UnknownRecord("sync run", raw)
    return int(raw)


sync_runs = page_route(Corp.page_sync_runs)
sync_run = record_route(lambda corp, path: corp.get_sync_run(_run_id_of(path["runId"])))
