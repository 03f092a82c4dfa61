"""Operational endpoints: liveness (/healthz), readiness (/readyz) and Prometheus metrics (/metrics).

``/readyz`` answers 200 when the database answers, its schema is at head and, when this process runs one,
the inbox worker's loop is alive; otherwise 503 with short ``reasons``. It also reports, per corp, the last
full sync (status, seconds since it finished) and the pending inbox (count, age of the oldest event). Those
never make it 503, by design: readiness decides whether this process gets traffic, and its traffic is the
platforms' callbacks, which must be stored most of all when a backlog grows or syncs fail; and that state is
shared by every process on the database, so every one of them would turn unready at once and the platforms
would retry into nothing. Alert on the ``/metrics`` gauges instead, where each site picks its thresholds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from handlers.store import feed, health, retention
from handlers.store import pool as db
from handlers.store.feed import SubscriberState
from handlers.store.pool import Row
from receiver.keys import CONFIG, METRICS, POOL, SETTINGS, STREAMS, WORKER
from receiver.ops.metrics import SYNC_BUCKETS
from receiver.ops.state import StreamState, SyncRunBucket, TableState

TIMEOUT = 2.0  # seconds to get a connection, then again for the queries: probes poll these endpoints
WORKER_STALL = 60.0  # the worker's loop looks at the inbox every poll interval (1 s); this long without: stalled


@dataclass(frozen=True, slots=True)
class DatabaseState:
    problem: str | None  # "database unreachable" | "database timeout" | None
    version: int | None  # newest applied migration; None: unknown or no schema
    streams: tuple[StreamState, ...]  # empty unless the schema is at head
    tables: tuple[TableState, ...] = ()  # read only with ``tables``, at head
    sync_runs: tuple[SyncRunBucket, ...] = ()  # read for /metrics only


async def read_database(pool: asyncpg.Pool, *, tables: bool = False, sync_runs: bool = False) -> DatabaseState:
    """Schema version, then (at head) per-corp sync and inbox state; with ``tables`` the sizes and oldest rows of
    the tables that grow, with ``sync_runs`` every corp's finished full syncs: one connection, bounded time."""
    version = None
    table_rows: list[Row] = []
    runs: list[Row] = []
    try:
        async with pool.acquire(timeout=TIMEOUT) as conn, asyncio.timeout(TIMEOUT):
            version = await db.schema_version(conn)
            if version != db.head_version():
                return DatabaseState(None, version, ())
            rows = await health.stream_states(conn)
            if tables:
                table_rows = await retention.table_stats(conn)
            if sync_runs:
                runs = await health.sync_run_counts(conn, list(SYNC_BUCKETS))
    except TimeoutError:
        return DatabaseState("database timeout", version, ())
    except db.DB_ERRORS:
        return DatabaseState("database unreachable", version, ())
    return DatabaseState(
        None,
        version,
        tuple(StreamState.from_record(r) for r in rows),
        tuple(TableState.from_record(r) for r in table_rows),
        tuple(SyncRunBucket.from_record(r) for r in runs),
    )


async def feed_states(app: web.Application) -> list[SubscriberState] | None:
    """The webhook subscribers' state (disabled, pending, lag); None when the database did not answer in time.
    A disabled subscriber never makes the process unready: the callbacks it must take do not depend on it."""
    names = list(app[CONFIG].subscribers)
    if not names:
        return []
    try:
        async with asyncio.timeout(TIMEOUT):
            return await feed.states(app[POOL], names)
    except db.DB_ERRORS:  # TimeoutError among them
        return None


def worker_state(app: web.Application) -> str:
    """``off`` (this process runs no worker), ``running``, ``stopped`` or ``stalled``."""
    if not app[SETTINGS].run_worker:
        return "off"
    worker = app.get(WORKER)
    if worker is None or not worker.running:
        return "stopped"
    if time.monotonic() - worker.last_turn > max(WORKER_STALL, 30 * worker.settings.poll_interval):
        return "stalled"
    return "running"


async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when ready, 503 with the reasons otherwise; per-corp sync and inbox state either way."""
    state = await read_database(request.app[POOL])
    head = db.head_version()
    reasons: list[str] = []
    if state.problem is not None:
        reasons.append(state.problem)
    elif state.version is None:
        reasons.append("schema missing")
    elif state.version != head:
        reasons.append("schema not at head")
    worker = worker_state(request.app)
    if worker in {"stopped", "stalled"}:
        reasons.append(f"worker {worker}")
    subscribers = await feed_states(request.app)
    body = {
        "status": "not ready" if reasons else "ready",
        "reasons": reasons,
        "schemaVersion": state.version,
        "schemaHead": head,
        "worker": worker,
        "corps": {s.name: s.corp_json() for s in state.streams if s.is_corp},
        "streams": {s.name: s.inbox_json() for s in state.streams if not s.is_corp},
        "dingtalkStream": {name: c.state.json(c.now()) for name, c in request.app.get(STREAMS, {}).items()},
        "disabledSubscribers": sorted(s.name for s in subscribers or () if s.disabled_at is not None),
    }
    return web.json_response(body, status=503 if reasons else 200)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; the database gauges are read now (see ``Metrics.observe_database``)."""
    state = await read_database(request.app[POOL], tables=True, sync_runs=True)
    registry = request.app[METRICS]
    registry.observe_database(state.problem is None, state.streams, state.sync_runs)
    registry.observe_tables(state.tables)
    registry.observe_feed(await feed_states(request.app) or ())
    return web.Response(body=registry.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
