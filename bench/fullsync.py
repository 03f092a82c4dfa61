"""Full-sync benchmark: a large simulated org with the documented rate limits, synced into real PostgreSQL.

    .venv/bin/python bench/fullsync.py [--members N --departments M --platform wecom|dingtalk]

The simulator runs in a child process (its memory and CPU are not the syncing process's). Reported:
wall time of the first sync, the rate-limit floor (fewest calls the platform needs, per API, divided
by that API's allowed rate; APIs are paced independently, so the floor is the slowest API), their
ratio, rows applied per second, peak RSS of this process, and a no-op resync (time, rows written).
The database is a scratch one created beside CORPSYNC_DATABASE_URL (default the local 127.0.0.1:5432)
and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg
import orjson

from handlers.clients import make_client
from handlers.config import CallbackKeys, CorpConfig, DingTalkCorp, Secret, WecomInnerCorp
from handlers.store import pool as db
from handlers.store.corps import ensure_corp
from handlers.sync.fullsync import RunStatus, SyncResult, format_summary, run_full_sync
from receiver.testing import RateLimits, SimOrg, Simulator, generate_org, run_simulator
from tests.support.directory import TABLES

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=100_000)
    p.add_argument("--departments", type=int, default=5_000)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--platform", choices=("wecom", "dingtalk"), default="wecom")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-rate-limits", action="store_true", help="turn the simulator's limits off")
    p.add_argument("--serve-simulator", action="store_true", help=argparse.SUPPRESS)  # the child process
    return p.parse_args(argv)


# -- the child: the simulator ------------------------------------------------------------------------


def call_plan(org: SimOrg, platform: str, limits: RateLimits) -> dict[str, tuple[int, float]]:
    """Fewest calls per API a full read of ``org`` needs, with that API's allowed rate (calls/s)."""
    depts = len(org.departments)
    if platform == "wecom":
        pairs = sum(len(m.departments) for m in org.members.values())
        plan = {
            "gettoken": 2,  # app secret + contact-sync secret
            "department/list": 1,  # the whole tree in one answer
            "user/list": depts,  # every member of one department per call (no paging)
            "user/list_id": math.ceil(pairs / 10_000),  # authoritative memberships, 10,000 a page
            "tag/list": 1,
            "tag/get": len(org.tags),
            "agent/get_admin_list": 1,
        }
        rate = limits.wecom_limit / limits.wecom_window
        return {api: (n, rate) for api, n in plan.items()}
    pages = sum(max(1, math.ceil(len(users) / 100)) for users in org.dept_members.values())
    role_pages = sum(max(1, math.ceil(len(r.members) / 200)) for r in org.roles.values())
    plan = {
        "gettoken": 1,
        "topapi/v2/department/get": 1,  # the visible root
        "topapi/v2/department/listsub": depts,  # one level per call: every department is asked once
        "topapi/v2/user/list": pages,  # 100 members a page, at least one page per department
        "topapi/role/list": max(1, math.ceil(len(org.role_groups) / 200)),
        "topapi/role/simplelist": role_pages,
        "topapi/user/listadmin": 1,
    }
    rate = limits.dingtalk_limit / limits.dingtalk_window
    return {api: (n, rate) for api, n in plan.items()}


async def serve_simulator(args: argparse.Namespace) -> None:
    """Child: build the org, serve it, print one JSON line; answer 'stats' lines; stop at EOF."""
    limits = RateLimits()
    sim = Simulator(rate_limits=None if args.no_rate_limits else limits, seed=args.seed)
    org = generate_org(args.seed, args.members, args.departments, min(args.depth, args.departments))
    async with run_simulator(sim):
        if args.platform == "wecom":
            w = sim.add_wecom_corp(org)
            corp = {
                "corp_id": w.corp_id,
                "agent_id": str(w.agent_id),
                "secret": w.secret,
                "contact_secret": w.contact_secret,
                "token": w.token,
                "aes_key": w.aes_key,
                "api_base": sim.wecom_api_base,
            }
        else:
            d = sim.add_dingtalk_app(org)
            corp = {
                "corp_id": d.corp_id,
                "agent_id": str(d.agent_id),
                "app_key": d.app_key,
                "app_secret": d.app_secret,
                "token": d.token,
                "aes_key": d.aes_key,
                "api_base": sim.dingtalk_api_base,
            }
        info = {
            "corp": corp,
            "plan": call_plan(org, args.platform, limits),
            "members": len(org.members),
            "departments": len(org.departments),
        }
        print(orjson.dumps(info).decode(), flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "stats":
                errors = {f"{api} {code}": n for (api, code), n in sim.errors.items()}
                print(orjson.dumps({"calls": dict(sim.calls), "errors": errors}).decode(), flush=True)
                sim.reset_counters()


# -- the parent: the syncing process -----------------------------------------------------------------


def corp_config(platform: str, c: dict[str, str]) -> CorpConfig:
    keys = CallbackKeys(Secret(c["token"]), Secret(c["aes_key"]), frozenset({c["corp_id"]}))
    if platform == "wecom":
        return WecomInnerCorp(
            name=f"bench-{uuid.uuid4().hex[:6]}",
            title="bench",
            corp_id=c["corp_id"],
            agent_id=c["agent_id"],
            secret=Secret(c["secret"]),
            contact_secret=Secret(c["contact_secret"]),
            callback=keys,
            api_base=c["api_base"],
        )
    return DingTalkCorp(
        name=f"bench-{uuid.uuid4().hex[:6]}",
        title="bench",
        corp_id=c["corp_id"],
        agent_id=c["agent_id"],
        app_key=c["app_key"],
        app_secret=Secret(c["app_secret"]),
        callback=keys,
        api_base=c["api_base"],
    )


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def marks(pool: asyncpg.Pool) -> dict[str, tuple[int, int]]:
    """Per table: rows and the newest xmin. Any INSERT or UPDATE raises the xmin; a DELETE lowers the count."""
    found = {}
    for table in TABLES:
        row = await pool.fetchrow(f"SELECT count(*), coalesce(max(xmin::text::bigint), 0) FROM {table}")  # noqa: S608 - fixed names
        found[table] = (row[0], row[1])
    return found


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def progress_printer() -> Any:
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or done == total:
            last[0] = now
            print(f"\r  {stage:<12} {done:>7}/{total:<7}", end="", file=sys.stderr, flush=True)

    return show


async def timed_sync(pool: asyncpg.Pool, row: int, corp: CorpConfig, client: Any) -> tuple[SyncResult, float]:
    started = time.monotonic()
    result = await run_full_sync(pool, row, corp, client, trigger="manual", progress=progress_printer())
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return result, time.monotonic() - started


async def bench(args: argparse.Namespace) -> int:
    server = os.environ.get("CORPSYNC_DATABASE_URL") or DEFAULT_URL
    name = f"corpsync_bench_{uuid.uuid4().hex[:8]}"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve-simulator",
        *sys.argv[1:],
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 24,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    admin = await asyncpg.connect(server)
    try:
        info = orjson.loads(await child.stdout.readline())
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(server, name)
        conn = await db.connect(url)
        await db.migrate(conn)
        await conn.close()
        pool = await db.create_pool(url, min_size=2, max_size=4)

        async def stats() -> dict[str, Any]:
            child.stdin.write(b"stats\n")  # type: ignore[union-attr] # checked above
            result: dict[str, Any] = orjson.loads(await child.stdout.readline())  # type: ignore[union-attr]
            return result

        try:
            return await measure(args, info, pool, stats)
        finally:
            await pool.close()
    finally:
        child.stdin.close()
        await child.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def measure(args: argparse.Namespace, info: dict[str, Any], pool: asyncpg.Pool, stats: Any) -> int:
    corp = corp_config(args.platform, info["corp"])
    plan: dict[str, list[float]] = info["plan"]
    floor_api, (floor_calls, floor_rate) = max(plan.items(), key=lambda kv: kv[1][0] / kv[1][1])
    floor = floor_calls / floor_rate
    fewest = sum(int(n) for n, _ in plan.values())
    rss_before = peak_rss_mb()
    async with aiohttp.ClientSession() as session:
        client = make_client(corp, session, pool)
        async with pool.acquire() as conn:
            row = await ensure_corp(conn, corp)
        first, wall = await timed_sync(pool, row, corp, client)
        first_stats = await stats()
        rows = sum(n for n, _ in (await marks(pool)).values())
        rss_first = peak_rss_mb()
        before = await marks(pool)
        noop, noop_wall = await timed_sync(pool, row, corp, client)
        noop_written = await marks(pool) != before
    print(format_summary(first))
    apply_seconds = max(first.seconds - first.fetch_seconds, 1e-9)
    report = {
        "platform": args.platform,
        "members": info["members"],
        "departments": info["departments"],
        "rate_limits": not args.no_rate_limits,
        "status": first.status.value,
        "wall_seconds": round(wall, 2),
        "fetch_seconds": round(first.fetch_seconds, 2),
        "apply_seconds": round(apply_seconds, 2),
        "floor_seconds": round(floor, 2),
        "floor_api": f"{floor_api}: {int(floor_calls)} calls at {floor_rate:g}/s",
        "wall_over_floor": round(wall / floor, 3) if floor else None,
        "api_calls": first.api_calls,
        "fewest_calls": fewest,
        "calls_by_api": first_stats["calls"],
        "upstream_errors": first_stats["errors"],
        "rows_written": rows,
        "rows_per_second_apply": round(rows / apply_seconds),
        "rows_per_second_wall": round(rows / wall),
        "peak_rss_mb": round(rss_first, 1),
        "rss_before_sync_mb": round(rss_before, 1),
        "noop_seconds": round(noop_wall, 2),
        "noop_fetch_seconds": round(noop.fetch_seconds, 2),
        "noop_status": noop.status.value,
        "noop_changes": noop.changes,
        "noop_rows_written": noop_written,
    }
    for key, value in report.items():
        print(f"{key:<24} {value}")
    ok = first.status is RunStatus.SUCCEEDED and noop.changes == 0 and not noop_written
    return 0 if ok else 1


def main() -> int:
    args = parse_args()
    if args.serve_simulator:
        asyncio.run(serve_simulator(args))
        return 0
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
