"""DingTalk Stream intake benchmark: frames/s one Stream connection sustains with every event durable before its
ACK, next to the callbacks/s of the HTTP push route, against one `corpsync serve` on the same machine.

    .venv/bin/python bench/stream.py [--events N] [--rounds K] [--window W] [--concurrency C]

`corpsync serve` runs in its own process (intake only: CORPSYNC_WORKER=false, no scheduler) with two DingTalk
corps: Field on Stream mode, connected to the simulator's gateway in this process, and Sales on HTTP push. Per
round, in alternating order: N distinct user_modify_org events as EVENT frames over Field's connection, at most
W unACKed at once (the gateway's closed loop); and N distinct signed HTTP pushes of the same events to
/callback/dingtalk/Sales over C keep-alive connections. Reported: the median rate of each, every event's ACK or
200 against the inbox rows (an ACKed or answered event must be stored), redeliveries. Both loads come from this
one process; the database is a scratch one created beside CORPSYNC_DATABASE_URL (default the local
127.0.0.1:5432), dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg
import orjson

from receiver.testing import Simulator, generate_org, run_simulator, sign_dingtalk_callback, write_dingtalk_corp

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scratch(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def event(corp_id: str, userid: str) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "eventCorpId": corp_id,
        "eventType": "user_modify_org",
        "eventId": uuid.uuid4().hex,
        "eventBornTime": now,
        "data": {"timeStamp": str(now), "userId": [userid]},
    }


def http_plaintext(e: dict[str, Any]) -> bytes:
    """The same event in the HTTP push shape (http_v2)."""
    return orjson.dumps({"EventType": e["eventType"], "EventTime": e["eventBornTime"], "CorpId": e["eventCorpId"],
                         "eventId": e["eventId"], **e["data"]})  # fmt: skip


async def stream_round(
    sim: Simulator, app_key: str, events: list[dict[str, Any]], window: int
) -> tuple[float, list[str]]:
    gateway, slots, sent = sim.stream, asyncio.Semaphore(window), []

    async def one(e: dict[str, Any]) -> None:
        try:
            message_id = gateway.send_event(app_key, e)
            sent.append(message_id)
            await gateway.wait_delivered([message_id])
        finally:
            slots.release()

    started = time.perf_counter()
    tasks = []
    for e in events:
        await slots.acquire()
        tasks.append(asyncio.create_task(one(e)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - started, sent


async def http_round(url: str, bodies: list[tuple[dict[str, str], bytes]], concurrency: int) -> tuple[float, int]:
    ok, queue = 0, list(reversed(bodies))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal ok
            while queue:
                query, body = queue.pop()
                async with session.post(url, params=query, data=body,
                                        headers={"Content-Type": "application/json"}) as response:  # fmt: skip
                    await response.read()
                    ok += response.status == 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, ok


async def main(args: argparse.Namespace) -> None:
    base = os.environ.get("CORPSYNC_DATABASE_URL", DEFAULT_URL)
    name = f"corpsync_bench_stream_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = scratch(base, name)
    sim = Simulator(seed=1)
    field = sim.add_dingtalk_app(generate_org(1, members=50, departments=5, depth=2, tags=0))
    sales = sim.add_dingtalk_app(generate_org(2, members=50, departments=5, depth=2, tags=0))
    sim.stream.ack_timeout = 30.0  # the closed loop, not redeliveries, is measured
    port = free_port()
    server: asyncio.subprocess.Process | None = None
    try:
        async with run_simulator(sim):
            root = Path(tempfile.mkdtemp(prefix="corpsync-bench-stream-"))
            write_dingtalk_corp(root, "Field", corp_id=field.corp_id, app_key=field.app_key,
                                app_secret=field.app_secret, api_base=sim.dingtalk_api_base,
                                extra={"callback": {"mode": "stream"}, "streamBase": sim.stream_base})  # fmt: skip
            write_dingtalk_corp(root, "Sales", corp_id=sales.corp_id, app_key=sales.app_key,
                                app_secret=sales.app_secret, api_base=sim.dingtalk_api_base, token=sales.token,
                                aes_key=sales.aes_key)  # fmt: skip
            env = {k: v for k, v in os.environ.items() if not k.startswith("CORPSYNC_")}
            env.update(CORPSYNC_DATABASE_URL=url, CORPSYNC_WORKER="false", CORPSYNC_SCHEDULER="false",
                       CORPSYNC_LOG_FORMAT="json", CORPSYNC_PORT=str(port), CORPSYNC_APP_DIR=str(root))  # fmt: skip
            server = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "receiver", "serve", cwd=ROOT, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while not sim.stream.links(field.app_key):
                if time.monotonic() > deadline or server.returncode is not None:
                    raise SystemExit("serve did not connect to the Stream gateway")
                await asyncio.sleep(0.1)
            receiver = f"http://127.0.0.1:{port}/callback/dingtalk/Sales"
            users = sorted(field.org.members)
            stream_rates, http_rates, acked, answered = [], [], 0, 0
            for round_ in range(args.rounds):
                events = [event(field.corp_id, users[i % len(users)]) for i in range(args.events)]
                pushes = [sign_dingtalk_callback(http_plaintext(event(sales.corp_id, users[i % len(users)])),
                                                 token=sales.token, aes_key=sales.aes_key, receive_id=sales.app_key)
                          for i in range(args.events)]  # fmt: skip
                phases = ["stream", "http"] if round_ % 2 == 0 else ["http", "stream"]
                for phase in phases:
                    if phase == "stream":
                        seconds, sent = await stream_round(sim, field.app_key, events, args.window)
                        acked += sum(sim.stream.deliveries[m].done for m in sent)
                        stream_rates.append(len(sent) / seconds)
                    else:
                        seconds, ok = await http_round(receiver, pushes, args.concurrency)
                        answered += ok
                        http_rates.append(args.events / seconds)
                print(f"round {round_ + 1}: stream {stream_rates[-1]:7.0f} frames/s   http {http_rates[-1]:7.0f} "
                      "callbacks/s", flush=True)  # fmt: skip
            conn = await asyncpg.connect(url)
            rows = {r["route"]: r["n"] for r in await conn.fetch("SELECT route, count(*) AS n FROM inbox GROUP BY 1")}
            await conn.close()
            redelivered = sum(d.attempts - 1 for d in sim.stream.deliveries.values())
            print()
            print(f"Stream, one connection, every event stored before its ACK: {statistics.median(stream_rates):7.0f} "
                  f"frames/s (median of {args.rounds}; window {args.window})")  # fmt: skip
            print(f"HTTP push, {args.concurrency} connections, stored before the 200:       "
                  f"{statistics.median(http_rates):7.0f} callbacks/s")  # fmt: skip
            print(f"durability: {acked} ACKed, {rows.get('dingtalk-stream', 0)} Stream rows; {answered} answered 200, "
                  f"{rows.get('dingtalk', 0)} HTTP rows; {redelivered} redeliveries")  # fmt: skip
            if acked != rows.get("dingtalk-stream", 0) or answered != rows.get("dingtalk", 0):
                raise SystemExit("an ACKed or answered event is missing from the inbox")
    finally:
        if server is not None:
            server.terminate()
            await server.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="events per phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=int, default=256, help="unACKed frames the gateway allows")
    parser.add_argument("--concurrency", type=int, default=64, help="HTTP connections")
    asyncio.run(main(parser.parse_args()))
