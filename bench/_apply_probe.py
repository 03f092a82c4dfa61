"""What bench/apply.py measures beside the load: the instrumented server (statement timings, cProfile), CPU
samples, whether each stream was applied in inbox order, and the local directory against the upstream orgs.

    python bench/_apply_probe.py --app-dir DIR --port P    # ``corpsync serve`` with the instruments below

The instruments are asked for through environment variables only this wrapper reads (none of them is a
corpsync setting): CORPSYNC_BENCH_TIMINGS=<file> (the worker's debug log on, and every statement's call →
result time written to <file> at exit), CORPSYNC_BENCH_PROFILE=<file> (cProfile of the whole process) with
CORPSYNC_BENCH_PROFILE_TIMER=cpu|wall.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import cProfile
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import orjson

from bench.ingest import machine_busy, postgres_pids, proc_cpu, run_queue_wait

PROFILE_ENV = "CORPSYNC_BENCH_PROFILE"
PROFILE_TIMER_ENV = "CORPSYNC_BENCH_PROFILE_TIMER"
TIMINGS_ENV = "CORPSYNC_BENCH_TIMINGS"
SYNC_REQUESTS = "SELECT name, sync_request_reason FROM corps WHERE sync_requested_at IS NOT NULL ORDER BY name"
INBOX = "SELECT dedupe_key, status, attempts, extract(epoch FROM applied_at)::float8 AS applied FROM inbox"
LOCAL_MEMBERS = """
SELECT c.name AS corp, m.user_id, m.name, m.position, m.alias, m.telephone, m.status,
       array(SELECT d.dept_id FROM member_departments d WHERE d.member = m.id ORDER BY d.dept_id) AS depts
FROM members m JOIN corps c ON c.id = m.corp
"""
LOCAL_DEPARTMENTS = (
    "SELECT c.name AS corp, d.dept_id, d.name, d.parent_id FROM departments d JOIN corps c ON c.id = d.corp"
)
# Per stream: rows marked by an earlier transaction than some row with a smaller id (the marking transaction's
# xid is the row's xmin; one stream's transactions run one after another), and how much later that older row
# was applied. Zero when the stream was applied in inbox order.
OVERTAKEN = """
WITH x AS (
    SELECT stream, xmin::text::bigint AS tx, applied_at, max(xmin::text::bigint) OVER w AS older_tx,
           max(applied_at) OVER w AS older_applied
    FROM inbox WHERE status <> 'pending'
    WINDOW w AS (PARTITION BY stream ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT stream, count(*) AS rows, extract(epoch FROM max(older_applied - applied_at))::float8 AS worst
FROM x WHERE tx < older_tx GROUP BY stream ORDER BY stream
"""


# -- the instrumented server -------------------------------------------------------------------------


def serve_wrapped(app_dir: str, port: int) -> int:
    """``corpsync serve`` in this process, with the bench-only instruments its environment asks for."""
    from receiver.cli import main as cli_main

    if timings := os.environ.get(TIMINGS_ENV):
        logging.getLogger("corpsync.worker").setLevel(logging.DEBUG)  # survives cli's root-level INFO
        time_statements(Path(timings))
    argv = ["serve", "--app-dir", app_dir, "--port", str(port)]
    out = os.environ.get(PROFILE_ENV)
    if not out:
        return cli_main(argv)
    timer = time.process_time if os.environ.get(PROFILE_TIMER_ENV) == "cpu" else time.perf_counter
    profiler = cProfile.Profile(timer)
    try:
        return int(profiler.runcall(cli_main, argv))
    finally:
        profiler.dump_stats(out)


def time_statements(out: Path) -> None:
    """Time every asyncpg statement of this process from call to result (the round trip as the caller sees it,
    event-loop delays included), by named query; written to ``out`` as JSON when the process exits."""
    from asyncpg.connection import Connection

    from handlers.store.queries import queries

    names = {body: name for name, body in queries().items()}
    times: dict[str, list[float]] = {}

    def timed(method: Any) -> Any:
        async def call(self: Connection, query: str, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(self, query, *args, **kwargs)
            finally:
                name = names.get(query) or " ".join(query.split())[:40]
                times.setdefault(name, []).append(time.perf_counter() - started)

        return call

    for method in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
        setattr(Connection, method, timed(getattr(Connection, method)))
    atexit.register(lambda: out.write_bytes(orjson.dumps(times)))


# -- CPU -----------------------------------------------------------------------------------------------


def cpu_sample(database: str, groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far per group, seconds each group's main thread waited for a CPU, and the machine's."""
    groups = {**groups, "postgres": postgres_pids(database)}
    sample = {name: sum(proc_cpu(p) for p in pids) for name, pids in groups.items()}
    sample |= {f"wait_{name}": sum(run_queue_wait(p) for p in pids) for name, pids in groups.items()}
    sample["machine_busy"], sample["machine_total"] = machine_busy()
    return sample


class Sampler:
    """Once a second: the machine's busy CPU seconds and ours (server, its database's backends, loaders,
    upstream), so the timeline can show what the rest of the machine took while the events waited."""

    def __init__(self, database: str, groups: dict[str, list[int]]) -> None:
        self.database = database
        self.groups = groups
        self.samples: list[tuple[float, float, float]] = []  # (time.time(), machine busy, ours) over the second
        self._task: asyncio.Task[None] | None = None

    def _ours(self) -> dict[int, float]:
        pids = [p for pids in self.groups.values() for p in pids] + postgres_pids(self.database)
        return {pid: proc_cpu(pid) for pid in pids}

    async def _run(self) -> None:
        last, (busy, _) = self._ours(), machine_busy()
        while True:
            await asyncio.sleep(1.0)
            now, (busy_now, _) = self._ours(), machine_busy()
            ours = sum(max(0.0, cpu - last.get(pid, 0.0)) for pid, cpu in now.items())  # a gone pid reads 0
            self.samples.append((time.time(), busy_now - busy, ours))
            last, busy = now, busy_now

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# -- end state -----------------------------------------------------------------------------------------


def corp_name(k: int) -> str:
    return f"corp{k + 1}"


def differences(
    upstream: list[dict[str, Any]], members: list[asyncpg.Record], departments: list[asyncpg.Record]
) -> Counter[str]:
    """How the local directory differs from the orgs after every change: per field, the members (or
    departments) whose local value is not the upstream one; 'active' counts members present on one side only."""
    found: Counter[str] = Counter()
    local = {(r["corp"], r["user_id"]): r for r in members}
    for k, org in enumerate(upstream):
        corp = corp_name(k)
        for user_id, (name, position, alias, telephone, depts) in org["members"].items():
            row = local.pop((corp, user_id), None)
            if row is None or row["status"] != "active":
                found["member active"] += 1
                continue
            want = {"name": name, "position": position, "alias": alias, "telephone": telephone, "departments": depts}
            have = {**{f: row[f] for f in ("name", "position", "alias", "telephone")}, "departments": row["depts"]}
            found.update(f"member {field}" for field in want if want[field] != have[field])
        dept_rows = {r["dept_id"]: r for r in departments if r["corp"] == corp}
        for dept_id, (name, parent) in org["departments"].items():
            row = dept_rows.get(dept_id)
            if row is None or row["name"] != name or (dept_id != org["root"] and row["parent_id"] != parent):
                found["department"] += 1
    found["member active"] += sum(1 for row in local.values() if row["status"] == "active")  # left upstream
    return +found


def main() -> int:
    p = argparse.ArgumentParser(description="corpsync serve with the bench's instruments")
    p.add_argument("--app-dir", required=True)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    return serve_wrapped(args.app_dir, args.port)


if __name__ == "__main__":
    sys.exit(main())
