"""CPU per first full sync: fresh tenant-sized corps synced one after another, PostgreSQL's and the syncer's CPU.

    .venv/bin/python bench/synccpu.py [--tenants 40 --min-members 50 --max-members 500 --seed 1]

bench/tenants.py's 1,000 tenants are CPU-bound on 2 cores, and its wall time moves with whatever else shares the
machine; this probe measures what survives load: CPU seconds per sync. The simulator (rate limits off) runs in a
child process holding ``--tenants`` WeCom corps made as bench/_tenants.py makes its tenants (no contact secret:
``department/list`` then ``user/list`` per department, tags, admins); this process syncs each once, never synced
before, in a scratch database beside CORPSYNC_DATABASE_URL. Printed per sync: PostgreSQL CPU (the database's
backends and the WAL writer, from /proc), this process's CPU (fetch, decode, records, staging: what serve spends),
statements and commits the syncer sent, rows written, and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg
import orjson

from bench._tenants import tenant_org
from bench.fullsync import corp_config
from bench.ingest import postgres_pids, scratch_database
from handlers.clients import make_client
from handlers.store import pool as db
from handlers.store.corps import ensure_corp
from handlers.store.queries import queries
from handlers.sync.fullsync import RunStatus, run_full_sync
from receiver.testing import Simulator, run_simulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tenants", type=int, default=40)
    p.add_argument("--min-members", type=int, default=50)
    p.add_argument("--max-members", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--statements", action="store_true", help="also print the time per sync of each statement")
    p.add_argument("--serve-simulator", action="store_true", help=argparse.SUPPRESS)  # the child process
    return p.parse_args(argv)


async def serve_simulator(args: argparse.Namespace) -> int:
    """Child: the tenants' orgs served without rate limits; one JSON line of corps, then wait for EOF."""
    sim = Simulator(rate_limits=None, seed=args.seed)
    rng = random.Random(args.seed)
    async with run_simulator(sim):
        corps = []
        for k in range(args.tenants):
            org = tenant_org(args.seed, k, rng.randint(args.min_members, args.max_members))
            w = sim.add_wecom_corp(org)
            corps.append({
                "corp_id": w.corp_id, "agent_id": str(w.agent_id), "secret": w.secret, "token": w.token,
                "aes_key": w.aes_key, "api_base": sim.wecom_api_base, "members": len(org.members),
            })  # fmt: skip
        print(orjson.dumps(corps).decode(), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    return 0


def on_cpu(pids: list[int]) -> float:
    """Seconds the processes ran on a CPU (schedstat: nanoseconds, where /proc/PID/stat counts 10-ms ticks)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    return total / 1e9


class Counted:
    """Statements the pool's connections ran (asyncpg's query logger): how many, how many were COMMITs, and per
    named query (handlers.store.queries) or other statement the time it took and, when ``pids`` are set, the CPU the
    database spent since the statement before (the syncs run one at a time; COPY is not logged, so the CPU of the
    staging COPYs is the next statement's)."""

    def __init__(self) -> None:
        self.statements = 0
        self.commits = 0
        self.names = {sql: name for name, sql in queries().items()}
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.cpu: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.pids: list[int] = []
        self.last_cpu = 0.0

    def __call__(self, record: Any) -> None:
        self.statements += 1
        if record.query.lstrip().upper().startswith("COMMIT"):
            self.commits += 1
        name = self.names.get(record.query) or " ".join(record.query.split())[:40]
        self.seconds[name] += record.elapsed
        self.calls[name] += 1
        if self.pids:
            now = on_cpu(self.pids)
            self.cpu[name] += now - self.last_cpu
            self.last_cpu = now

    def start(self, pids: list[int]) -> None:
        self.seconds.clear()
        self.cpu.clear()
        self.calls.clear()
        self.pids = pids
        self.last_cpu = on_cpu(pids)


async def rows_written(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables") or 0)


async def probe(args: argparse.Namespace, corps: list[dict[str, Any]], url: str, name: str) -> int:
    conn = await db.connect(url)
    await db.migrate(conn)
    counted = Counted()

    async def count_statements(pooled: asyncpg.Connection) -> None:  # at every acquire; the loggers are a set
        pooled.add_query_logger(counted)

    pool = await db.create_pool(url, min_size=4, max_size=4, setup=count_statements)
    ok = True
    try:
        async with aiohttp.ClientSession() as session:
            configs = []
            for c in corps:
                cfg = corp_config("wecom", {**c, "contact_secret": ""})
                configs.append((cfg, await ensure_corp(conn, cfg)))
            await conn.execute("SELECT pg_stat_force_next_flush()")
            rows0 = await rows_written(conn)
            pg0, me0, wall0 = on_cpu(postgres_pids(name)), time.process_time(), time.monotonic()
            statements0, commits0 = counted.statements, counted.commits
            counted.start(postgres_pids(name) if args.statements else [])
            for cfg, row in configs:
                result = await run_full_sync(pool, row, cfg, make_client(cfg, session, pool), trigger="first")
                ok = ok and result.status is RunStatus.SUCCEEDED
            pg1, me1, wall1 = on_cpu(postgres_pids(name)), time.process_time(), time.monotonic()
            statements, commits = counted.statements - statements0, counted.commits - commits0
    finally:
        await pool.close()  # a backend's table statistics are all flushed when it exits
    try:
        await asyncio.sleep(1.0)
        rows = await rows_written(conn) - rows0
    finally:
        await conn.close()
    n = len(configs)
    members = sum(c["members"] for c in corps)
    report = {
        "tenants": n,
        "members_mean": round(members / n),
        "all_succeeded": ok,
        "postgres_cpu_ms_per_sync": round((pg1 - pg0) * 1000 / n, 1),
        "syncer_cpu_ms_per_sync": round((me1 - me0) * 1000 / n, 1),
        "wall_ms_per_sync": round((wall1 - wall0) * 1000 / n, 1),
        "statements_per_sync": round(statements / n, 1),
        "commits_per_sync": round(commits / n, 2),
        "rows_written_per_sync": round(rows / n, 1),
        "load_average": " ".join(os.getloadavg().__repr__().strip("()").split(", ")),
    }
    for key, value in report.items():
        print(f"{key:<26} {value}")
    if args.statements:
        print("  database CPU ms, wall ms and calls per sync, by statement (with --statements the syncer's CPU")
        print("  includes reading /proc after each statement)")
        for name, cpu in sorted(counted.cpu.items(), key=lambda kv: -kv[1]):
            ms = counted.seconds[name] * 1000 / n
            print(f"  {cpu * 1000 / n:7.2f}  {ms:7.2f}  {counted.calls[name] / n:5.2f}x  {name}")
    return 0 if ok else 1


async def bench(args: argparse.Namespace) -> int:
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-simulator", *sys.argv[1:],
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 24,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        corps = orjson.loads(await child.stdout.readline())
        async with scratch_database("corpsync_synccpu") as (url, name):
            return await probe(args, corps, url, name)
    finally:
        child.stdin.close()
        await child.wait()


def main() -> int:
    args = parse_args()
    return asyncio.run(serve_simulator(args) if args.serve_simulator else bench(args))


if __name__ == "__main__":
    sys.exit(main())
