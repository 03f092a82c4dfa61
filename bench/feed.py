"""Change feed: 100,000 changes from one full sync delivered to three webhook subscribers by ``corpsync serve``.

Subscribers (in this process, each verifying the Standard Webhooks signature of every request): ``fast``;
``slow`` (answers after --slow-ms); ``flaky`` (answers 503 for its first --flaky-seconds, then 200). The full sync
runs here, straight into the database ``serve`` uses (a snapshot of --members members, so no rate-limit floor).
Meanwhile signed WeCom callbacks go to ``serve`` at --rate per second: their answer latency is measured before
the sync (baseline) and while the feed is being delivered. Prints the time until each subscriber is caught up
(from the sync's commit), events per second, and the outbox's peak size (rows not yet delivered).

``serve`` runs with its worker and scheduler off (intake only: the callbacks' latency is the intake's) and a short
retry schedule (CORPSYNC_FEED_RETRY_SCHEDULE=1,2,5), or the flaky subscriber would wait minutes per retry.
The database is a scratch one created beside CORPSYNC_DATABASE_URL (default the local 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import asyncpg
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from handlers.api.register import GivenSnapshot
from handlers.config import CallbackKeys, Secret, WecomInnerCorp
from handlers.model import Department, Member, Membership, Snapshot
from handlers.store import pool as db
from handlers.store.corps import ensure_corp
from handlers.sync.fullsync import run_full_sync
from receiver.appdir import load_app_dir
from receiver.testing import write_wecom_corp
from receiver.testing.harness import signed_request

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--members", type=int, default=100_000)
    p.add_argument("--departments", type=int, default=500)
    p.add_argument("--slow-ms", type=float, default=2.0)
    p.add_argument("--flaky-seconds", type=float, default=20.0)
    p.add_argument("--rate", type=float, default=50.0, help="callbacks per second to serve")
    p.add_argument("--baseline-seconds", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=1800.0)
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Subscriber:
    def __init__(self, name: str, delay: float = 0.0, down_for: float = 0.0) -> None:
        self.name, self.delay, self.down_for = name, delay, down_for
        self.secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        self.verifier = Webhook(self.secret)
        self.first: float | None = None
        self.ok = 0
        self.failed = 0
        self.last_id = 0
        self.out_of_order = 0
        self.caught_up: float | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        event = self.verifier.verify(body, dict(request.headers))
        now = time.monotonic()
        self.first = self.first or now
        if now - self.first < self.down_for:
            self.failed += 1
            return web.Response(status=503)
        if self.delay:
            await asyncio.sleep(self.delay)
        if int(event["id"]) <= self.last_id:
            self.out_of_order += 1
        self.last_id = max(self.last_id, int(event["id"]))
        self.ok += 1
        return web.Response(status=204)


def snapshot(members: int, departments: int) -> Snapshot:
    depts = (Department("1", "0", "Root"), *(Department(str(d), "1", f"D{d}") for d in range(2, departments + 2)))
    people = tuple(
        Member(f"m{i:06d}", f"Member {i}", (Membership(str(2 + i % departments)),), position="staff")
        for i in range(members)
    )
    return Snapshot(root_dept_id="1", departments=depts, members=people)


def callback_xml(corp_id: str, n: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{1700000000 + n}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[update_user]]></ChangeType>"
        f"<UserID><![CDATA[m{n % 1000:06d}]]></UserID><Position><![CDATA[p{n}]]></Position></xml>"
    )


async def load(base: str, config: Any, rate: float, stop: asyncio.Event, latencies: list[float]) -> None:
    """Signed callbacks at ``rate`` per second until ``stop``; each answer's latency into ``latencies``."""
    n = int(time.time() * 1000) % 10_000_000
    async with aiohttp.ClientSession(base) as session:

        async def one(k: int) -> None:
            path, query, body = signed_request(config, "HQ", callback_xml("wwbench", k))
            started = time.perf_counter()
            async with session.post(path, params=query, data=body) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"callback answered {response.status}")
            latencies.append(time.perf_counter() - started)

        tasks: set[asyncio.Task[None]] = set()
        next_at = time.perf_counter()
        while not stop.is_set():
            n += 1
            task = asyncio.create_task(one(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.gather(*tasks)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 2 else float("nan")


async def main() -> None:
    args = parse_args()
    server_url = os.environ.get("CORPSYNC_DATABASE_URL", DEFAULT_URL)
    name = f"corpsync_bench_feed_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    subs = [
        Subscriber("fast"),
        Subscriber("slow", delay=args.slow_ms / 1000),
        Subscriber("flaky", down_for=args.flaky_seconds),
    ]
    hooks = web.Application()
    for sub in subs:
        hooks.router.add_post(f"/{sub.name}", sub.handle)
    hook_runner = web.AppRunner(hooks, access_log=None)
    await hook_runner.setup()
    hook_port = free_port()
    await web.TCPSite(hook_runner, "127.0.0.1", hook_port).start()
    proc: asyncio.subprocess.Process | None = None
    try:
        root = Path(tempfile.mkdtemp(prefix="corpsync-bench-feed-"))
        write_wecom_corp(root, "HQ", corp_id="wwbench", extra={"sync": {"scheduleSeconds": None}})
        for sub in subs:
            (root / f"subscribers/{sub.name}").mkdir(parents=True)
            (root / f"subscribers/{sub.name}/e.json").write_text(
                json.dumps({"title": sub.name, "type": "subscribers.Webhook"})
            )
            (root / f"subscribers/{sub.name}/{sub.name}.json").write_text(
                json.dumps({"url": f"http://127.0.0.1:{hook_port}/{sub.name}", "secret": sub.secret})
            )
        config = load_app_dir(root, {})
        port = free_port()
        env = {**os.environ, "CORPSYNC_DATABASE_URL": url, "CORPSYNC_APP_DIR": str(root), "CORPSYNC_PORT": str(port),
               "CORPSYNC_WORKER": "false", "CORPSYNC_SCHEDULER": "false", "CORPSYNC_LOG_FORMAT": "json",
               "CORPSYNC_FEED_RETRY_SCHEDULE": "1,2,5"}  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "receiver", "serve", env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as probe:
            for _ in range(300):
                try:
                    async with probe.get(base + "/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        pool = await db.create_pool(url, min_size=1, max_size=4)

        baseline: list[float] = []
        stop = asyncio.Event()
        loader = asyncio.create_task(load(base, config, args.rate, stop, baseline))
        await asyncio.sleep(args.baseline_seconds)
        stop.set()
        await loader

        during: list[float] = []
        stop = asyncio.Event()
        loader = asyncio.create_task(load(base, config, args.rate, stop, during))
        corp = WecomInnerCorp("HQ", "HQ", "wwbench", "1000002", Secret("s"), None,
                              CallbackKeys(Secret("t"), Secret("a" * 43), frozenset({"wwbench"})))  # fmt: skip
        async with pool.acquire() as conn:
            row = await ensure_corp(conn, corp)
        started = time.monotonic()
        result = await run_full_sync(pool, row, corp, GivenSnapshot(snapshot(args.members, args.departments)),
                                     trigger="bench")  # fmt: skip
        committed = time.monotonic()
        changes = int(await pool.fetchval("SELECT count(*) FROM change_log"))
        last = int(await pool.fetchval("SELECT max(id) FROM change_log"))
        peak, samples = 0, 0
        while time.monotonic() - committed < args.timeout:
            pending = int(await pool.fetchval("SELECT count(*) FROM feed_outbox WHERE delivered_at IS NULL"))
            fanned = int(await pool.fetchval("SELECT change_id FROM feed_fanout"))
            peak, samples = max(peak, pending), samples + 1
            now = time.monotonic()
            for sub in subs:
                if sub.caught_up is None and sub.last_id >= last and fanned >= last:
                    sub.caught_up = now - committed
            if all(s.caught_up is not None for s in subs):
                break
            await asyncio.sleep(0.5)
        stop.set()
        await loader
        total = time.monotonic() - committed
        print(f"full sync: {result.status.value}, {changes:,} changes committed in {committed - started:.1f} s")
        for sub in subs:
            took = "not caught up" if sub.caught_up is None else f"caught up after {sub.caught_up:.1f} s"
            print(f"  {sub.name:5}: {sub.ok:,} delivered, {sub.failed:,} refused, {sub.out_of_order} out of order; "
                  f"{took}")  # fmt: skip
        delivered = sum(s.ok for s in subs)
        print(f"all caught up after {total:.1f} s: {delivered:,} events, {delivered / total:,.0f} events/s")
        print(f"outbox peak: {peak:,} rows not delivered ({samples} samples, every 0.5 s)")
        print(f"callbacks at {args.rate:g}/s: baseline p50 {pct(baseline, 50):.1f} ms p99 {pct(baseline, 99):.1f} ms "
              f"({len(baseline)}); during delivery p50 {pct(during, 50):.1f} ms p99 {pct(during, 99):.1f} ms "
              f"({len(during)})")  # fmt: skip
        await pool.close()
    finally:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            await proc.wait()
        await hook_runner.cleanup()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
