"""Load generator of bench/ingest.py and bench/apply.py: pre-signed callbacks over keep-alive connections.

    python bench/_load.py --port P --mode closed|open [--seconds S --concurrency C --rate R --first I --count N]
                          [--kinds mixed|create_user] [--requests FILE] [--answer-log]

Runs in its own process. It signs every request first, warms up, prints ``ready`` and waits for ``go`` on
stdin (so the caller can sample CPU around the timed section only), then prints one JSON line of results.
Raw asyncio protocol, no HTTP client library: one request in flight per connection, responses parsed
by Content-Length. Open loop: request i is due at t0 + i/R and its latency runs from that due time,
whether or not a connection was free to send it (no coordinated omission).

``--requests FILE`` sends ready-made requests (``write_requests``) instead of generating them, in file
order; ``--answer-log`` adds, per answer, the request's index in that order, the wall-clock time
(``time.time()``) it was received and its status, so a caller can match answers with server-side times.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from receiver.cli.serve import new_event_loop
from receiver.testing import sign_wecom_callback
from receiver.testing.harness import WECOM_AES_KEY, WECOM_TOKEN

SELF = Path(__file__).resolve()
CORP_ID = "wx5823bf96d3bd56c7"
CORP = "HQ"
WARMUP_SECONDS = 1.0


KINDS = ("mixed", "create_user")


def plaintext(i: int, kinds: str = "mixed") -> bytes:
    """A distinct contact event of about 600 bytes, as WeCom sends it: create_user for even ``i`` and update_user
    for odd (``mixed``), or create_user for every ``i``. Its departments are 1, 2..98 and 200..212."""
    kind = "create_user" if i % 2 == 0 or kinds == "create_user" else "update_user"
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{1_700_000_000 + i}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_contact]]></Event><ChangeType>{kind}</ChangeType>"
        f"<UserID><![CDATA[bench{i:09d}]]></UserID><Name><![CDATA[测试用户{i}]]></Name>"
        f"<Department><![CDATA[{i % 97 + 2},{i % 13 + 200},1]]></Department><MainDepartment>{i % 97 + 2}"
        f"</MainDepartment><IsLeaderInDept><![CDATA[0,{i % 2},0]]></IsLeaderInDept>"
        f"<Position><![CDATA[产品经理]]></Position><Mobile>1380013{i % 10000:04d}</Mobile><Gender>{i % 2 + 1}"
        f"</Gender><Email><![CDATA[bench{i}@example.com]]></Email><Status>1</Status>"
        f"<Alias><![CDATA[u{i}]]></Alias></xml>"
    ).encode()


def request_bytes(i: int, port: int, kinds: str = "mixed") -> bytes:
    """The whole HTTP/1.1 request of event ``i``; signature, timestamp and nonce need no URL escaping."""
    query, body = sign_wecom_callback(plaintext(i, kinds), token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, receive_id=CORP_ID)
    return http_request(f"/callback/wecom/{CORP}", query, body, port)


def http_request(path: str, query: dict[str, str], body: bytes, port: int) -> bytes:
    """A POST of ``body`` to ``path``; the query values are signatures, timestamps and nonces (no escaping)."""
    target = path + "?" + "&".join(f"{k}={v}" for k, v in query.items())
    head = (
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def write_requests(path: Path, requests: list[bytes]) -> None:
    """The ``--requests`` file: each request preceded by its length (4 bytes, big-endian)."""
    with path.open("wb") as out:
        for request in requests:
            out.write(len(request).to_bytes(4, "big"))
            out.write(request)


def read_requests(path: Path) -> list[bytes]:
    data = path.read_bytes()
    requests, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        requests.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return requests


class Conn(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.since = 0.0  # when the request in flight was due (open loop) or sent (closed loop)
        self.index = -1  # the request in flight, by its position in the run's list

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes

    def send(self, request: bytes, since: float, index: int = -1) -> None:
        assert self.transport is not None
        self.since = since
        self.index = index
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            at = buf.find(b"\r\ncontent-length:", 0, head_end)
            if at < 0:
                at = buf.lower().find(b"\r\ncontent-length:", 0, head_end)
            if at < 0:
                raise RuntimeError("answer without Content-Length")
            length = int(buf[at + 17 : buf.find(b"\r\n", at + 2)])
            total = head_end + 4 + length
            if len(buf) < total:
                return
            status = int(buf[9:12])
            del buf[:total]
            self.run.answered(self, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.lost(self)


class Run:
    """The state of one load phase (warm-up or timed): requests to send, answers, latencies."""

    def __init__(
        self,
        requests: list[bytes],
        *,
        rate: float | None,
        seconds: float,
        cycle: bool,
        answer_log: list[tuple[int, float, int]] | None = None,
    ) -> None:
        self.requests = requests
        self.answer_log = answer_log  # (request index, time.time() of the answer, status), when asked for
        self.rate = rate
        self.seconds = seconds
        self.cycle = cycle
        self.next = 0
        self.statuses: Counter[int] = Counter()
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.window_answers = 0
        self.lost_count = 0
        self.exhausted = False
        self.stopping = False
        self.in_flight = 0
        self.idle: list[Conn] = []
        self.waiting: deque[tuple[int, float]] = deque()
        self.start = 0.0
        self.end = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def take(self) -> int | None:
        """The index of the next request to send (None when they ran out)."""
        if self.next >= len(self.requests):
            if not self.cycle:
                self.exhausted = True
                return None
            self.next = 0
        self.next += 1
        return self.next - 1

    def send(self, conn: Conn, index: int, since: float) -> None:
        self.in_flight += 1
        conn.send(self.requests[index], since, index)

    def answered(self, conn: Conn, status: int) -> None:
        now = time.perf_counter()
        if self.answer_log is not None:
            self.answer_log.append((conn.index, time.time(), status))
        self.in_flight -= 1
        self.statuses[status] += 1
        if now <= self.end:
            self.window_answers += 1
            self.latencies.append(now - conn.since)
        if self.rate is None:
            index = None if self.stopping or now >= self.end else self.take()
            if index is not None:
                self.send(conn, index, now)
        elif self.waiting:
            index, due = self.waiting.popleft()
            self.send(conn, index, due)
        else:
            self.idle.append(conn)
        self.check_done()

    def lost(self, conn: Conn) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        elif not self.stopping:
            self.lost_count += 1
            self.in_flight -= 1
            self.check_done()

    def check_done(self) -> None:
        finished = self.stopping or self.exhausted or time.perf_counter() >= self.end
        if finished and self.in_flight == 0 and not self.waiting and not self.done.done():
            self.done.set_result(None)

    async def closed(self, conns: list[Conn]) -> None:
        self.start = time.perf_counter()
        self.end = self.start + self.seconds
        for conn in conns:
            index = self.take()
            if index is None:
                break
            self.send(conn, index, time.perf_counter())
        self.check_done()  # nothing was left to send: done at once
        asyncio.get_running_loop().call_at(asyncio.get_running_loop().time() + self.seconds + 0.001, self.check_done)
        await self.done

    async def open(self, conns: list[Conn]) -> None:
        assert self.rate is not None
        self.idle = list(conns)
        self.start = time.perf_counter()
        total = int(self.seconds * self.rate)
        self.end = self.start + self.seconds + 60.0  # every answer of a request due in the window counts
        interval = 1.0 / self.rate
        for i in range(total):
            due = self.start + i * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            index = self.take()
            if index is None:
                break
            self.lags.append(time.perf_counter() - due)
            if self.idle:
                self.send(self.idle.pop(), index, due)
            else:
                self.waiting.append((index, due))
        self.stopping = True
        self.check_done()
        await self.done


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def load(args: argparse.Namespace) -> dict[str, object]:
    if args.requests:
        requests = read_requests(Path(args.requests))
    else:
        requests = [request_bytes(i, args.port, args.kinds) for i in range(args.first, args.first + args.count)]
    loop = asyncio.get_running_loop()
    rate = args.rate if args.mode == "open" else None
    answer_log: list[tuple[int, float, int]] | None = [] if args.answer_log else None
    warm = Run(requests, rate=rate, seconds=WARMUP_SECONDS, cycle=args.cycle, answer_log=answer_log)
    conns: list[Conn] = []
    for _ in range(args.concurrency):
        _, conn = await loop.create_connection(lambda: Conn(warm), "127.0.0.1", args.port)
        conns.append(conn)
    await (warm.open(conns) if rate else warm.closed(conns))
    timed = Run(requests, rate=rate, seconds=args.seconds, cycle=args.cycle, answer_log=answer_log)
    timed.next = warm.next
    for conn in conns:
        conn.run = timed
    print("ready", flush=True)
    if (await loop.run_in_executor(None, sys.stdin.readline)).strip() != "go":
        raise SystemExit("no go from the benchmark (it has gone away)")
    cpu = cpu_seconds()
    await (timed.open(conns) if rate else timed.closed(conns))
    wall = time.perf_counter() - timed.start
    cpu = cpu_seconds() - cpu
    timed.stopping = True
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    statuses = warm.statuses + timed.statuses
    window = args.seconds if rate is None else wall
    extra: dict[str, object] = {}
    if answer_log is not None:
        extra = {"answer_log": answer_log, "timed_first": warm.next, "sent": timed.next}
    return {
        "answers": {str(k): v for k, v in sorted(statuses.items())},
        "lost": warm.lost_count + timed.lost_count,
        "window_answers": timed.window_answers,
        "window_seconds": window,
        "rate": timed.window_answers / window,
        "latencies": timed.latencies if rate else [],
        "p50_ms": percentile(timed.latencies, 0.50) * 1e3,
        "p99_ms": percentile(timed.latencies, 0.99) * 1e3,
        "max_ms": max(timed.latencies, default=float("nan")) * 1e3,
        "send_lag_p99_ms": percentile(timed.lags, 0.99) * 1e3,
        "exhausted": timed.exhausted,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        **extra,
    }


async def drive(
    flags: list[list[str]],
    *,
    at_ready: Callable[[list[int]], Awaitable[None]],
    at_done: Callable[[], Awaitable[None]] | None = None,
    limit: int = 1 << 26,
) -> list[dict[str, Any]]:
    """The caller's side of this script: start one load generator per list of ``flags``, wait until every one
    is warm, await ``at_ready`` (given their pids), let them go, and return the results they print. ``at_done``
    is awaited once every result is in, before they exit. A generator still running on the way out is killed."""
    me = str(SELF)
    loaders = [
        await asyncio.create_subprocess_exec(
            sys.executable, me, *f, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=limit
        )
        for f in flags
    ]
    try:
        for loader in loaders:
            assert loader.stdout is not None
            if (line := await loader.stdout.readline()).strip() != b"ready":
                raise RuntimeError(f"loader failed to start: {line!r}")
        await at_ready([loader.pid for loader in loaders])
        for loader in loaders:
            assert loader.stdin is not None
            loader.stdin.write(b"go\n")
            await loader.stdin.drain()
        results = []
        for loader in loaders:
            assert loader.stdout is not None
            results.append(orjson.loads(await loader.stdout.readline()))
        if at_done is not None:
            await at_done()
        for loader in loaders:
            await loader.wait()
        return results
    finally:
        for loader in loaders:
            if loader.returncode is None:
                loader.kill()
                await loader.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=("closed", "open"), required=True)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--first", type=int, default=0, help="index of the first event (events are distinct by index)")
    p.add_argument("--count", type=int, default=10_000, help="events to pre-sign")
    p.add_argument("--kinds", choices=KINDS, default="mixed", help="the events generated (see plaintext)")
    p.add_argument("--cycle", action="store_true", help="reuse the events when they run out (bare handler only)")
    p.add_argument("--requests", help="send the requests of this file (see write_requests) instead of generating")
    p.add_argument("--answer-log", action="store_true", help="report each answer's request index, time and status")
    return p.parse_args(argv)


def main() -> int:
    args = parse_args()
    # The generator's CPU is taken from the machine the servers run on: uvloop, where installed, takes less.
    with asyncio.Runner(loop_factory=lambda: new_event_loop("auto")[0]) as runner:
        result = runner.run(load(args))
    print(orjson.dumps(result).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
