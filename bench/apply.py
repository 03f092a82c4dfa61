"""Apply-latency benchmark: time from a callback's 200 answer to its event being applied, under sustained load.

    .venv/bin/python bench/apply.py [--seconds 30] [--rate 1000] [--corps 1] [--thin 0.0] [--timings]
                                    [--profile [cpu|wall]] [--split-worker] [--server-log FILE]

One ``corpsync serve`` process (worker on, scheduler off) on a scratch database beside CORPSYNC_DATABASE_URL
(default the local 127.0.0.1:5432; created, dropped after). The simulated upstream (bench/_upstream.py) runs
in its own process: each corp is pre-populated by ``corpsync sync`` against it (not timed), then its org is
changed (mostly member updates, some joins, leaves and department changes) and every change's WeCom
``change_contact`` callback is pre-signed; ``--thin`` sends a share of them IDs-only, so the worker fetches
from the simulator. The load generator (bench/_load.py, its own process) sends them open loop at the offered
rate, 1 s of warm-up then the timed seconds, noting the wall-clock time (``time.time()``) of each 200; the
server stamps ``inbox.applied_at`` with PostgreSQL's ``clock_timestamp()``. Both read this machine's realtime
clock, so answer→applied is their difference (slightly negative when the worker applies an event before the
loader has read its 200). Printed: rates, percentiles, the backlog after the load, whether each stream was
applied in inbox order (from the xmin of the marked rows), whether the local directory ends equal to the
upstream orgs, CPU per process, and a 5-second timeline with the machine's CPU used by others.

Exit status 0 only when every answered event was applied (none lost, none dead) and every answer was 200;
the targets are printed MET or MISSED, not enforced. ``--timings`` turns the worker's per-transaction debug
log on (rows, ms) and times every statement the server awaits; ``--profile`` runs the server under cProfile
(both through bench/_apply_probe.py, which wraps the server);
``--split-worker`` answers in one serve process and applies in another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import orjson

from bench._apply_probe import (
    INBOX,
    LOCAL_DEPARTMENTS,
    LOCAL_MEMBERS,
    OVERTAKEN,
    PROFILE_ENV,
    PROFILE_TIMER_ENV,
    SYNC_REQUESTS,
    TIMINGS_ENV,
    Sampler,
    corp_name,
    cpu_sample,
    differences,
)
from bench._apply_report import InboxState, Outcome, report
from bench._load import drive, http_request, write_requests
from bench.ingest import Server, free_port, scratch_database, stop, wait_healthy
from receiver.testing import sign_wecom_callback, write_wecom_corp

ROOT = Path(__file__).resolve().parents[1]
WARMUP_SECONDS = 1.0  # bench/_load.py's warm-up, at the offered rate; its events count as answered, not as timed
PROBE = ROOT / "bench" / "_apply_probe.py"


# -- child processes ---------------------------------------------------------------------------------


class Upstream:
    """bench/_upstream.py as a child: its credentials line, then JSON commands and answers."""

    def __init__(self, proc: asyncio.subprocess.Process, info: dict[str, Any]) -> None:
        self.proc = proc
        self.info = info

    async def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(orjson.dumps(command) + b"\n")
        await self.proc.stdin.drain()
        answer: dict[str, Any] = orjson.loads(await self.proc.stdout.readline())
        return answer


@asynccontextmanager
async def upstream(args: argparse.Namespace) -> AsyncIterator[Upstream]:
    argv = [sys.executable, str(ROOT / "bench" / "_upstream.py"), "--corps", str(args.corps)]
    argv += ["--members", str(args.members), "--departments", str(args.departments), "--seed", str(args.seed)]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT, limit=1 << 24
    )
    try:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError("the upstream simulator did not start")
        yield Upstream(proc, orjson.loads(line))
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@asynccontextmanager
async def serving(
    app_dir: Path, env: dict[str, str], database: str, *, wrapped: bool, log_name: str = "serve.log"
) -> AsyncIterator[Server]:
    """One ``corpsync serve`` (or its bench-instrumented wrapper) with its log in ``app_dir``; SIGTERM on exit."""
    port = free_port()
    if wrapped:
        argv = [sys.executable, str(PROBE), "--app-dir", str(app_dir), "--port", str(port)]
    else:
        argv = [sys.executable, "-m", "receiver", "serve", "--app-dir", str(app_dir), "--port", str(port)]
    with (app_dir / log_name).open("a+b") as log:  # append mode: reading it never moves the writer
        proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=log, stderr=log, cwd=ROOT)
        server = Server("corpsync", proc, port, database, log)
        try:
            await wait_healthy(server)
            yield server
        finally:
            await stop(proc, grace=30)


async def run_cli(argv: list[str], env: dict[str, str]) -> str:
    """Run a ``corpsync`` command; its stdout (the logs on stderr are shown only when it fails)."""
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "receiver", *argv, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await done.communicate()
    if done.returncode != 0:
        raise RuntimeError(f"corpsync {' '.join(argv)} failed: {(out + err).decode()[-2000:]}")
    return out.decode().strip()


# -- the load ------------------------------------------------------------------------------------------


async def run_loaders(
    port: int, args: argparse.Namespace, files: list[Path], sampler: Sampler
) -> tuple[list[dict[str, Any]], dict[str, float], dict[str, float]]:
    """Start the loaders, wait until warm, sample CPU, let them go (and the sampler), sample again; their
    results and the two samples."""
    flags = []
    for path in files:
        f = [
            "--port",
            str(port),
            "--mode",
            "open",
            "--seconds",
            str(args.seconds),
            "--rate",
            str(args.rate / len(files)),
        ]
        f += ["--concurrency", str(max(1, args.concurrency // len(files))), "--requests", str(path), "--answer-log"]
        flags.append(f)
    samples: list[dict[str, float]] = []

    async def start(pids: list[int]) -> None:
        sampler.groups["loaders"] = pids
        samples.append(cpu_sample(sampler.database, sampler.groups))
        sampler.start()

    async def finish() -> None:
        samples.append(cpu_sample(sampler.database, sampler.groups))

    results = await drive(flags, at_ready=start, at_done=finish, limit=1 << 28)
    return results, samples[0], samples[1]


async def wait_drained(conn: asyncpg.Connection, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not await conn.fetchval("SELECT count(*) FROM inbox WHERE status = 'pending'"):
            return True
        await asyncio.sleep(0.05)
    return False


# -- the benchmark -------------------------------------------------------------------------------------


def sign_all(events: list[tuple[int, str, str]], corps: list[dict[str, Any]], port: int) -> list[bytes]:
    requests = []
    for corp, _, plaintext in events:
        c = corps[corp]
        query, body = sign_wecom_callback(
            plaintext.encode(),
            token=c["callback"]["token"],
            aes_key=c["callback"]["encodingAESKey"],
            receive_id=c["corpId"],
        )
        requests.append(http_request(f"/callback/wecom/{corp_name(corp)}", query, body, port))
    return requests


async def bench(args: argparse.Namespace) -> tuple[list[str], bool, str]:
    """The printed lines, whether every answered event was applied, and the server's log."""
    async with scratch_database("corpsync_apply", keep=args.keep_database) as (url, name):
        with tempfile.TemporaryDirectory(prefix="corpsync-apply-") as tmp:
            outcome = await run(args, Path(tmp), url, name)
            lines, ok = report(args, outcome)  # reads the profile in tmp
    if args.keep_database:
        lines.append(f"database kept: {url}")
    return lines, ok, outcome.log_text


async def run(args: argparse.Namespace, tmp: Path, url: str, name: str) -> Outcome:
    """Upstream, sync, events, server, load, drain; what was measured."""
    app_dir = tmp / "app"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORPSYNC_")}
    env.update(CORPSYNC_DATABASE_URL=url, CORPSYNC_SCHEDULER="false", CORPSYNC_LOG_FORMAT="json",
               PYTHONPATH=str(ROOT))  # fmt: skip
    if args.timings:
        env[TIMINGS_ENV] = str(tmp / "statements.json")
    if args.profile:
        env[PROFILE_ENV] = str(tmp / "serve.prof")
        env[PROFILE_TIMER_ENV] = args.profile
    async with upstream(args) as up:
        corps = up.info["corps"]
        for k, c in enumerate(corps):
            write_wecom_corp(app_dir, corp_name(k), corp_id=c["corpId"], secret=c["secret"],
                             contact_secret=c["contactSecret"], api_base=c["apiBase"],
                             token=c["callback"]["token"], aes_key=c["callback"]["encodingAESKey"])  # fmt: skip
        synced = [await run_cli(["sync", corp_name(k), "--app-dir", str(app_dir)], env) for k in range(len(corps))]
        await up.ask(cmd="stats")  # from here on, count the run's calls only
        total = int((args.seconds + WARMUP_SECONDS) * args.rate)
        made = await up.ask(cmd="events", total=total, rate=args.rate, thin=args.thin, start=time.time(),
                            out=str(tmp / "events.jsonl"), seed=args.seed)  # fmt: skip
        events = [tuple(orjson.loads(line)) for line in (tmp / "events.jsonl").read_bytes().splitlines()]
        instrumented = bool(args.timings or args.profile)
        async with contextlib.AsyncExitStack() as stack:
            if args.split_worker:  # a second process applies; the one that answers has its worker off
                worker = await stack.enter_async_context(
                    serving(app_dir, env, name, wrapped=instrumented, log_name="worker.log")
                )
                env = {**env, "CORPSYNC_WORKER": "false"}
                env = {k: v for k, v in env.items() if k not in (PROFILE_ENV, TIMINGS_ENV)}
            server = await stack.enter_async_context(
                serving(app_dir, env, name, wrapped=instrumented and not args.split_worker)
            )
            requests = sign_all(events, corps, server.port)
            files = []
            for k in range(args.loaders):  # loader k sends events k, k + K, ...: the global order holds
                files.append(tmp / f"requests{k}.bin")
                write_requests(files[-1], requests[k :: args.loaders])
            groups = {"server": [server.proc.pid], "upstream": [up.proc.pid]}
            if args.split_worker:
                groups["worker"] = [worker.proc.pid]
            sampler = Sampler(name, groups)
            results, before, after = await run_loaders(server.port, args, files, sampler)
            conn = await asyncpg.connect(url)
            try:
                drained = await wait_drained(conn, args.drain_timeout)
                await sampler.stop()
                rows = await conn.fetch(INBOX)
                sync_requests = [f"{r['name']}: {r['sync_request_reason']}" for r in await conn.fetch(SYNC_REQUESTS)]
                overtaken = {r["stream"]: (r["rows"], r["worst"]) for r in await conn.fetch(OVERTAKEN)}
                members, departments = await conn.fetch(LOCAL_MEMBERS), await conn.fetch(LOCAL_DEPARTMENTS)
            finally:
                await conn.close()
            calls = (await up.ask(cmd="stats"))["calls"]
            upstream_state = (await up.ask(cmd="state"))["corps"]
        # complete now the servers have stopped
        log_text = "".join(p.read_text(errors="replace") for p in sorted(app_dir.glob("*.log")))
    event_of = {hashlib.sha256(plaintext.encode()).hexdigest(): g for g, (_, _, plaintext) in enumerate(events)}
    inbox = {event_of[r["dedupe_key"]]: InboxState(r["status"], r["attempts"], r["applied"]) for r in rows}
    return Outcome(
        synced=synced, mix=made["mix"], events=len(events), corp_of=[e[0] for e in events], inbox=inbox,
        loaders=results, cpu_before=before, cpu_after=after, samples=sampler.samples, drained=drained, calls=calls,
        sync_requests=sync_requests, log_text=log_text, profile=tmp / "serve.prof" if args.profile else None,
        overtaken=overtaken,
        differences=differences(upstream_state, members, departments),
        statements=orjson.loads(stats.read_bytes()) if (stats := tmp / "statements.json").exists() else {},
    )  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0, help="length of the timed load")
    p.add_argument("--rate", type=float, default=1000.0, help="callbacks/s offered (all corps together)")
    p.add_argument("--corps", type=int, default=1, help="corps, i.e. ordered streams; events go round-robin")
    p.add_argument("--members", type=int, default=500, help="members per simulated corp at sync time")
    p.add_argument("--departments", type=int, default=40, help="departments per simulated corp")
    p.add_argument("--thin", type=float, default=0.0, help="share of changes sent in the IDs-only form (fetches)")
    p.add_argument("--concurrency", type=int, default=64, help="connections of the load generator(s)")
    p.add_argument("--loaders", type=int, default=1, help="load-generator processes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for the backlog to empty")
    p.add_argument("--timings", action="store_true", help="log the worker's transactions and time its statements")
    p.add_argument(
        "--profile", nargs="?", const="cpu", choices=("cpu", "wall"),
        help="run the server under cProfile (timer: process CPU time, or wall time) and print the top",
    )  # fmt: skip
    p.add_argument("--server-log", help="keep the server's log in this file")
    p.add_argument("--keep-database", action="store_true", help="do not drop the scratch database (print its URL)")
    p.add_argument(
        "--split-worker", action="store_true",
        help="experiment: answer in one serve process (worker off) and apply in a second one",
    )  # fmt: skip
    return p.parse_args(argv)


def main() -> int:
    args = parse_args()
    lines, ok, log_text = asyncio.run(bench(args))
    if args.server_log:
        Path(args.server_log).write_text(log_text)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
