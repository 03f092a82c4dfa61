"""What the synchronous JitAI facade costs per call over the async API it wraps (python -m bench.jitai).

One WeCom corp of ``--members`` members is synced from the simulator into a scratch database beside
CORPSYNC_DATABASE_URL (default the local 127.0.0.1:5432); then the same reads run through ``receiver.jitai``
(each call hops to the App's loop thread and back, and builds RowData records) and as plain awaits on the
App's own loop. Target: the hop and the records add under 0.5 ms to a one-member read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg

from handlers.api import Corp
from handlers.store import pool as db
from receiver.jitai import App
from receiver.jitai.runner import LoopThread
from receiver.testing import Simulator, WecomCorp, generate_org, run_simulator, write_wecom_corp

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_MS = 0.5


def with_database(url: str, name: str) -> str:
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


def per_call_ms(calls: Callable[[int], object], n: int, repeat: int = 5) -> float:
    """Median of ``repeat`` runs of ``n`` calls, in milliseconds per call."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        calls(n)
        times.append((time.perf_counter() - started) / n * 1000)
    return statistics.median(times)


async def _admin(server: str, statement: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    conn = await db.connect(url)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args(argv)
    server = os.environ.get("CORPSYNC_DATABASE_URL") or DEFAULT_URL
    name = f"corpsync_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    url = with_database(server, name)
    sim = Simulator(seed=3)
    org = generate_org(3, members=args.members, departments=max(2, args.members // 20), depth=3)
    account = sim.add_wecom_corp(org, contact_new_ip=False, privacy=False)
    loop = LoopThread("simulator")
    stack = contextlib.AsyncExitStack()
    try:
        asyncio.run(_migrate(url))
        loop.run(stack.enter_async_context(run_simulator(sim)))
        with tempfile.TemporaryDirectory() as root, App(_app_dir(Path(root), sim, account), database_url=url) as app:
            started = time.perf_counter()
            corp = app.getElement("corps.HQ")  # its first sync
            print(f"first sync of {args.members} members on getElement: {time.perf_counter() - started:.2f} s")
            native = app.run(app.runtime.corp("HQ"))
            user = next(iter(org.members))

            async def awaited(n: int) -> None:
                for _ in range(n):
                    await native.get_member(user)

            sync_ms = per_call_ms(lambda n: [corp.getMember(user) for _ in range(n)], args.calls)
            async_ms = per_call_ms(lambda n: app.run(awaited(n)), args.calls)
            many_sync = per_call_ms(lambda n: [corp.getMembers() for _ in range(n)], 10)
            many_async = per_call_ms(lambda n: app.run(_many(native, n)), 10)
        added = sync_ms - async_ms
        print(f"getMember: facade {sync_ms:.3f} ms, awaited on the App's loop {async_ms:.3f} ms: +{added:.3f} ms")
        print(f"getMembers ({args.members}): facade {many_sync:.1f} ms, awaited {many_async:.1f} ms")
        print(f"target: under {TARGET_MS} ms added per call: {'met' if added < TARGET_MS else 'MISSED'}")
        return 0 if added < TARGET_MS else 1
    finally:
        loop.run(stack.aclose())
        loop.stop()
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _many(native: Corp, n: int) -> None:
    for _ in range(n):
        await native.get_members()


def _app_dir(root: Path, sim: Simulator, account: WecomCorp) -> Path:
    write_wecom_corp(root, "HQ", corp_id=account.corp_id, secret=account.secret, api_base=sim.wecom_api_base,
                     agent_id=str(account.agent_id))  # fmt: skip
    return root


if __name__ == "__main__":
    raise SystemExit(main())
