"""ISV-scale benchmark: one 代开发 template, N tenants authorized at run time, synced by one `corpsync serve`.

    .venv/bin/python bench/tenants.py [--tenants 1000 --min-members 50 --max-members 500 --seconds 60 --rate 20
                                       --timeout 900 --profile [cpu|wall] --timings --server-log FILE]
                                      [--sync-parallel N] [--poll-seconds S]   # the last one an experiment

The upstream (simulator, documented rate limits on) and the platform's callback sender run in their own processes
(bench/_tenants.py). The server starts with an app dir holding only the template's auth (auths/Suite) and a
scratch database beside CORPSYNC_DATABASE_URL (default the local 127.0.0.1:5432; dropped after). At "go" the
sender pushes a suite_ticket and every tenant's create_auth to the instruction URL, signed as WeCom signs them
(the receiver exchanges each auth code for the permanent code and registers the tenant; its scheduler finds the
tenant and runs its first full sync), and from the same instant a steady open loop of --rate contact changes a
second for random authorized tenants to the 代开发 callback URL. The stream runs until every tenant has a
succeeded sync and for at least --seconds; the run stops by itself after --timeout seconds.

Printed, with the targets: time until every tenant has a succeeded sync against the rate-limit floor (the
slowest of: one tenant's busiest API at the per-corp limit, the template's get_permanent_code calls at the
per-suite limit, and each API's calls over all tenants at the provider-IP limit; protocol/wecom.md §6), peak
RSS of the serve process (VmHWM), peak connections to the scratch database (pg_stat_activity, sampled 4 times
a second), upstream calls per tenant, suite-token and corp-token fetches, callback answer latency p50/p99 while
the syncs ran (whole phase and worst 30-s window), CPU per process and what the rest of the machine took.
Exit status 0 when every tenant was synced and every callback answered 200; targets are printed OK or MISSED.

``--sync-parallel`` is serve's CORPSYNC_SYNC_PARALLEL. The experiment changes the product's internals in the server
process only (bench/_tenants.py ``serve``, through bench/_apply_probe.py's instruments): the scheduler's
``poll_seconds``. It says what a change would buy; nothing else uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg
import orjson

from bench._apply_probe import PROFILE_ENV, PROFILE_TIMER_ENV, TIMINGS_ENV
from bench._apply_report import profile_lines
from bench._tenants import AUTH, SCHEDULER_ENV
from bench.ingest import (
    Server,
    free_port,
    machine_busy,
    postgres_pids,
    proc_cpu,
    run_queue_wait,
    scratch_database,
    stop,
    wait_healthy,
)
from receiver.testing import write_suite

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "bench" / "_tenants.py"
# protocol/wecom.md §6 (doc 90454): a third-party provider's IP may call each API 40,000 times a minute. The
# simulator enforces only the per-corp (and per-suite) limit; the floor counts both.
PROVIDER_IP_LIMIT = (40_000, 60.0)
RSS_TARGET_MB = 400.0
P99_TARGET_MS = 100.0
FLOOR_FACTOR = 1.2
WINDOW_SECONDS = 30.0  # latency windows for "p99 throughout"
SAMPLE_SECONDS = 0.25
TOKEN_TTL = 7200.0  # the simulator's token lifetime (wecom.md §6: 7200 s for suite and corp tokens)

GOOD_TENANTS = """
SELECT count(DISTINCT r.corp) FROM sync_runs r JOIN corps c ON c.id = r.corp
WHERE c.auth_name = $1 AND r.status = 'succeeded'
"""
CONNECTIONS = """
SELECT count(*) AS n, count(*) FILTER (WHERE state = 'active') AS active
FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()
"""
FIRST_GOOD = """
SELECT c.corp_id, extract(epoch FROM min(r.finished_at))::float8 AS at
FROM corps c JOIN sync_runs r ON r.corp = c.id AND r.status = 'succeeded'
WHERE c.auth_name = $1 GROUP BY c.corp_id
"""
RUNS = """
SELECT r.status, r.trigger, extract(epoch FROM r.started_at)::float8 AS started,
       extract(epoch FROM r.finished_at)::float8 AS finished, r.api_calls, left(r.error, 200) AS error
FROM sync_runs r JOIN corps c ON c.id = r.corp WHERE c.auth_name = $1
"""
REGISTERED = """
SELECT count(*) AS n, extract(epoch FROM max(created_at))::float8 AS last FROM corps WHERE auth_name = $1
"""
INBOX = "SELECT route, status, count(*) AS n FROM inbox GROUP BY 1, 2 ORDER BY 1, 2"
DEAD = "SELECT route, last_error, count(*) AS n FROM inbox WHERE status = 'dead' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5"


# -- the children ------------------------------------------------------------------------------------


class Upstream:
    """bench/_tenants.py upstream: its info line, then ``stats`` on demand."""

    def __init__(self, proc: asyncio.subprocess.Process, info: dict[str, Any]) -> None:
        self.proc = proc
        self.info = info

    async def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b'{"cmd": "stats"}\n')
        await self.proc.stdin.drain()
        answer: dict[str, Any] = orjson.loads(await self.proc.stdout.readline())
        return answer


@contextlib.asynccontextmanager
async def upstream(args: argparse.Namespace) -> AsyncIterator[Upstream]:
    argv = [sys.executable, str(HELPER), "upstream", "--tenants", str(args.tenants), "--seed", str(args.seed)]
    argv += ["--min-members", str(args.min_members), "--max-members", str(args.max_members)]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT, limit=1 << 28
    )
    try:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError("the upstream simulator did not start")
        yield Upstream(proc, orjson.loads(line))
    finally:
        await close_child(proc)


@contextlib.asynccontextmanager
async def sender(args: argparse.Namespace, port: int, sim_url: str) -> AsyncIterator[asyncio.subprocess.Process]:
    argv = [sys.executable, str(HELPER), "sender", "--port", str(port), "--sim-url", sim_url]
    argv += ["--rate", str(args.rate), "--timeout", str(args.timeout), "--connections", str(args.connections)]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT, limit=1 << 28
    )
    try:
        assert proc.stdout is not None
        if (await proc.stdout.readline()).strip() != b"ready":
            raise RuntimeError("the callback sender did not start")
        yield proc
    finally:
        await close_child(proc)


@contextlib.asynccontextmanager
async def serving(app_dir: Path, env: dict[str, str], database: str, *, wrapped: bool) -> AsyncIterator[Server]:
    """``corpsync serve`` (or, for --profile/--timings/--max-parallel, bench/_tenants.py's wrapper of it), its log
    in ``app_dir``; SIGTERM on the way out."""
    port = free_port()
    if wrapped:
        argv = [sys.executable, str(HELPER), "serve", "--app-dir", str(app_dir), "--port", str(port)]
    else:
        argv = [sys.executable, "-m", "receiver", "serve", "--app-dir", str(app_dir), "--port", str(port)]
    with (app_dir / "serve.log").open("a+b") as log:  # append mode: reading it never moves the writer
        proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=log, stderr=log, cwd=ROOT)
        server = Server("corpsync", proc, port, database, log)
        try:
            await wait_healthy(server)
            yield server
        finally:
            await stop(proc, grace=30)


async def close_child(proc: asyncio.subprocess.Process) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    await stop(proc, grace=10)


async def tell(proc: asyncio.subprocess.Process, line: bytes) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line)
    await proc.stdin.drain()


async def server_side(port: int) -> tuple[dict[str, int], int]:
    """(cumulative answers per ``le`` bound, size of the page) of the data URL's answer-time histogram, from
    serve's /metrics: the time inside the handler, without the time a request waited for the event loop."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    found = {}
    for line in text.splitlines():
        match = re.match(r"corpsync_callback_answer_seconds_bucket\{(.*)\} (\S+)", line)
        if match and 'route="wecom-suite-data"' in match.group(1):
            le = re.search(r'le="([^"]+)"', match.group(1))
            if le:
                found[le.group(1)] = int(float(match.group(2)))
    return found, len(text)


def over(buckets: dict[str, int], bound: str) -> str:
    """The share of answers slower than ``bound`` seconds, from cumulative buckets."""
    total = buckets.get("+Inf", 0)
    return f"{(total - buckets.get(bound, 0)) / total * 100:.1f}%" if total else "-"


# -- watching the run --------------------------------------------------------------------------------


def vm_kb(pid: int, field: str) -> int:
    """A ``VmRSS`` / ``VmHWM`` line of /proc/<pid>/status, in kB (0 when the process is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def loadavg() -> str:
    """The machine's 1-, 5- and 15-minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Watch:
    """Sampled during the run: tenants with a good sync, connections, RSS, CPU; a timeline every few seconds."""

    database: str
    serve_pid: int
    pids: dict[str, int]
    good: int = 0
    peak_connections: int = 0
    peak_active: int = 0
    peak_rss_kb: int = 0
    timeline: list[dict[str, float]] = field(default_factory=list)
    cpu_start: dict[str, float] = field(default_factory=dict)
    cpu_end: dict[str, float] = field(default_factory=dict)

    def cpu(self) -> dict[str, float]:
        found = {name: proc_cpu(pid) for name, pid in self.pids.items()}
        found["postgres"] = sum(proc_cpu(p) for p in postgres_pids(self.database))
        found["machine_busy"], found["machine_total"] = machine_busy()
        found["machine_serve_wait"] = run_queue_wait(self.serve_pid)  # "machine_": not a process's CPU
        return found

    async def sample(self, conn: asyncpg.Connection) -> None:
        self.good = await conn.fetchval(GOOD_TENANTS, AUTH)
        row = await conn.fetchrow(CONNECTIONS, self.database)
        self.peak_connections = max(self.peak_connections, row["n"])
        self.peak_active = max(self.peak_active, row["active"])
        self.peak_rss_kb = max(self.peak_rss_kb, vm_kb(self.serve_pid, "VmRSS"))

    def mark(self, t: float, last: dict[str, float]) -> dict[str, float]:
        now = self.cpu()
        span = max(now["machine_total"] - last["machine_total"], 1e-9) / 2  # wall seconds (2 cores)
        ours = sum(now[k] - last[k] for k in now if not k.startswith("machine"))
        self.timeline.append(
            {
                "t": t,
                "good": self.good,
                "rss_mb": vm_kb(self.serve_pid, "VmRSS") / 1024,
                "serve_cpu": (now["serve"] - last["serve"]) / span,
                "postgres_cpu": (now["postgres"] - last["postgres"]) / span,
                "machine_busy": (now["machine_busy"] - last["machine_busy"]) / span,
                "others": (now["machine_busy"] - last["machine_busy"] - ours) / span,
            }
        )
        return now


async def watch_until_synced(
    watch: Watch, url: str, tenants: int, started: float, args: argparse.Namespace
) -> float | None:
    """Sample until every tenant has a good sync (return the wall time seen) or the timeout (None)."""
    conn = await asyncpg.connect(url)
    try:
        watch.cpu_start = last = watch.cpu()
        next_mark = started + args.timeline
        while True:
            await watch.sample(conn)
            now = time.time()
            if now >= next_mark:
                last = watch.mark(now - started, last)
                next_mark += args.timeline
            if watch.good >= tenants:
                return now
            if now - started >= args.timeout:
                return None
            await asyncio.sleep(SAMPLE_SECONDS)
    finally:
        watch.cpu_end = watch.cpu()
        await conn.close()


# -- figures -----------------------------------------------------------------------------------------


def floor_of(info: dict[str, Any]) -> tuple[float, str, list[str]]:
    """(seconds, binding limit, every component) of the rate-limit floor of authorizing and syncing every tenant."""
    limits = info["limits"]
    corp_rate = limits["calls"] / limits["seconds"]
    ip_rate = PROVIDER_IP_LIMIT[0] / PROVIDER_IP_LIMIT[1]
    tenants = info["tenants"]
    parts: list[tuple[float, str]] = []
    busiest = max(((n, api) for t in tenants for api, n in t["calls"].items()), default=(0, "-"))
    parts.append(
        (busiest[0] / corp_rate, f"one tenant's {busiest[1]}: {busiest[0]} calls at {corp_rate:.4g}/s per corp")
    )
    parts.append(
        (len(tenants) / corp_rate, f"service/get_permanent_code: {len(tenants)} calls at {corp_rate:.4g}/s per suite")
    )
    totals: dict[str, int] = defaultdict(int)
    for t in tenants:
        for api, n in t["calls"].items():
            totals[api] += n
    totals["service/get_permanent_code"] += len(tenants)
    for api, n in sorted(totals.items()):
        parts.append((n / ip_rate, f"{api}: {n} calls at {ip_rate:.4g}/s per provider IP (not simulated)"))
    seconds, binding = max(parts)
    return seconds, binding, [f"{s:8.2f} s  {what}" for s, what in sorted(parts, reverse=True)[:5]]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_windows(answers: list[tuple[float, float]], start: float, end: float) -> list[tuple[float, float, int]]:
    """(window start relative to ``start``, p99 ms, count) per WINDOW_SECONDS of due times in [start, end]."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for due, latency in answers:
        if start <= due <= end:
            buckets[int((due - start) // WINDOW_SECONDS)].append(latency)
    return [(k * WINDOW_SECONDS, percentile(v, 0.99) * 1e3, len(v)) for k, v in sorted(buckets.items())]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = running = 0
    for _, step in events:
        running += step
        best = max(best, running)
    return best


def statement_lines(statements: dict[str, list[float]], tenants: int, top: int = 40) -> list[str]:
    """The statements serve awaited (call → result, event-loop delays included), most total time first."""
    ranked = sorted(statements.items(), key=lambda kv: -sum(kv[1]))
    lines = ["statements serve awaited (whole run; total s, count, per tenant, mean ms):"]
    for name, times in ranked[:top]:
        total = sum(times)
        lines.append(
            f"  {total:8.2f} {len(times):8d} {len(times) / tenants:7.2f} {total / len(times) * 1e3:8.2f}  {name}"
        )
    everything = sum(sum(t) for t in statements.values())
    lines.append(f"  {everything:8.2f} {sum(len(t) for t in statements.values()):8d}  all {len(statements)} kinds")
    return lines


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


@dataclass
class Outcome:
    info: dict[str, Any]
    started: float
    done: float | None
    sent: dict[str, Any]
    watch: Watch
    peak_rss_kb: int
    first_good: dict[str, float]
    runs: list[asyncpg.Record]
    registered: asyncpg.Record
    inbox: list[asyncpg.Record]
    dead: list[asyncpg.Record]
    stats: dict[str, Any]
    server_buckets: dict[str, int]
    metrics_bytes: int
    loadavg: tuple[str, str]  # /proc/loadavg at the start and at the end of the sync phase
    log_text: str


def report(args: argparse.Namespace, o: Outcome) -> tuple[list[str], bool]:
    tenants = o.info["tenants"]
    n = len(tenants)
    floor, binding, parts = floor_of(o.info)
    synced_in = None if o.done is None else o.done - o.started  # seen by the watcher (commits, not now())
    end = o.done or o.started + args.timeout
    changes = [(a[1], a[2]) for a in o.sent["answers"] if a[0] == "change"]
    during = [lat for due, lat in changes if o.started <= due <= end]
    windows = latency_windows(changes, o.started, end)
    worst = max(windows, key=lambda w: w[1], default=(0.0, float("nan"), 0))
    statuses: dict[str, int] = defaultdict(int)
    for a in o.sent["answers"]:
        statuses[f"{a[0]} {a[3]}"] += 1
    auths = [a[2] for a in o.sent["answers"] if a[0] == "create_auth"]

    calls: dict[str, int] = o.stats["calls"]
    per_tenant: dict[str, int] = defaultdict(int)
    gettoken_per: dict[str, int] = defaultdict(int)
    for owner, api, count in o.stats["byOwner"]:
        if owner not in ("suite", "?"):
            per_tenant[owner] += count
            if api == "gettoken":
                gettoken_per[owner] += count
    fewest = [sum(t["calls"].values()) for t in tenants]
    tenant_calls = [per_tenant.get(t["corpId"], 0) for t in tenants]
    suite_tokens = calls.get("wecom:service/get_suite_token", 0)
    corp_tokens = calls.get("wecom:gettoken", 0)
    run_seconds = max((o.done or time.time()) - o.started, 1.0)
    token_periods = max(1, math.ceil(run_seconds / TOKEN_TTL))

    good_runs = [r for r in o.runs if r["status"] == "succeeded" and r["finished"]]
    durations = [r["finished"] - r["started"] for r in good_runs]
    by_status: dict[str, int] = defaultdict(int)
    for r in o.runs:
        by_status[f"{r['status']}/{r['trigger']}"] += 1
    errors: dict[str, int] = defaultdict(int)
    for r in o.runs:
        if r["error"]:
            errors[r["error"][:120]] += 1
    first_start = min((r["started"] for r in o.runs), default=float("nan"))
    overlap = max_overlap([(r["started"], r["finished"] or end) for r in o.runs])

    w = o.watch
    cpu_span = max(w.cpu_end["machine_total"] - w.cpu_start["machine_total"], 1e-9) / 2
    cpu = {k: (w.cpu_end[k] - w.cpu_start[k]) / cpu_span for k in w.cpu_end if not k.startswith("machine")}
    busy = (w.cpu_end["machine_busy"] - w.cpu_start["machine_busy"]) / cpu_span
    serve_wait = (w.cpu_end["machine_serve_wait"] - w.cpu_start["machine_serve_wait"]) / cpu_span
    members = [t["members"] for t in tenants]

    figures: dict[str, Any] = {
        "tenants": f"{n} ({min(members)}–{max(members)} members, {sum(members)} in all; "
        f"{sum(t['departments'] for t in tenants)} departments)",
        "change_rate": f"{args.rate:g}/s offered to random authorized tenants",
        "all_synced_seconds": "not within the timeout" if synced_in is None else round(synced_in, 1),
        "tenants_synced": f"{len(o.first_good)}/{n}",
        "floor_seconds": f"{floor:.2f} ({binding})",
        "synced_over_floor": "-" if synced_in is None else round(synced_in / floor, 1),
        "authorized_seconds": f"{o.registered['last'] - o.started:.1f} ({o.registered['n']} tenants registered)"
        if o.registered["last"]
        else "-",
        "first_sync_started_s": round(first_start - o.started, 1),
        "sync_runs": dict(sorted(by_status.items())),
        "sync_fetch_seconds": f"mean {sum(durations) / max(len(durations), 1):.2f}, "
        f"max {max(durations, default=0):.2f} (run start → its apply transaction's start)",
        "syncs_at_once_max": overlap,
        "peak_rss_mb": round(o.peak_rss_kb / 1024, 1),
        "peak_db_connections": f"{w.peak_connections} (active at once: {w.peak_active})",
        "calls_per_tenant": f"mean {sum(tenant_calls) / n:.1f}, min {min(tenant_calls)}, max {max(tenant_calls)} "
        f"(fewest a first sync needs: mean {sum(fewest) / n:.1f})",
        "calls_by_api": dict(sorted(calls.items())),
        "upstream_errors": o.stats["errors"],
        "suite_token_calls": suite_tokens,
        "corp_token_calls": f"{corp_tokens} (max per tenant {max(gettoken_per.values(), default=0)})",
        "create_auth_answer_ms": f"p50 {percentile(auths, 0.5) * 1e3:.1f}, p99 {percentile(auths, 0.99) * 1e3:.1f}, "
        f"max {max(auths, default=float('nan')) * 1e3:.1f} (must be < 1000)",
        "change_answer_ms": f"p50 {percentile(during, 0.5) * 1e3:.1f}, p99 {percentile(during, 0.99) * 1e3:.1f}, "
        f"max {max(during, default=float('nan')) * 1e3:.1f} ({len(during)} while syncing)",
        "in_handler_slower": f"than 50 ms {over(o.server_buckets, '0.05')}, than 100 ms "
        f"{over(o.server_buckets, '0.1')} (serve's own histogram of the data URL)",
        "metrics_page_bytes": o.metrics_bytes,
        "worst_30s_p99_ms": f"{worst[1]:.1f} (window at +{worst[0]:.0f} s, {worst[2]} callbacks)",
        "answers": dict(sorted(statuses.items())),
        "change_slots_skipped": f"{o.sent['skipped']} (no tenant authorized yet), {o.sent['starved']} starved",
        "inbox": {f"{r['route']} {r['status']}": r["n"] for r in o.inbox},
        "load_average": f"{o.loadavg[0]} at the start, {o.loadavg[1]} at the end (2 cores)",
        "cpu_of_a_core": ", ".join(f"{k} {v * 100:.0f}%" for k, v in cpu.items())
        + f"; machine {busy * 100:.0f}% of 200%, others {max(0.0, busy - sum(cpu.values())) * 100:.0f}%; "
        f"serve's loop waited for a CPU {serve_wait * 100:.0f}% of the time",
        "cpu_ms_per_tenant": ", ".join(
            f"{k} {(w.cpu_end[k] - w.cpu_start[k]) * 1e3 / n:.1f}" for k in w.cpu_end if not k.startswith("machine")
        )
        + " (until every tenant synced, the change stream's work included; less load-dependent than wall time)",
    }
    lines = [f"{key:<22} {value}" for key, value in figures.items()]
    if errors:
        lines.append("sync errors:")
        lines += [f"  {count:5d}  {text}" for text, count in sorted(errors.items(), key=lambda kv: -kv[1])[:5]]
    if o.dead:
        lines.append("dead inbox rows:")
        lines += [f"  {r['n']:5d}  {r['route']}: {r['last_error']}" for r in o.dead]
    lines.append("floor components (slowest first):")
    lines += ["  " + p for p in parts]
    lines.append("timeline (t s, tenants synced, serve RSS MB, CPU of a core: serve / postgres / others, p99 ms):")
    for mark in w.timeline:
        t = mark["t"]
        window = [lat for due, lat in changes if o.started + t - args.timeline <= due < o.started + t]
        lines.append(
            f"  {t:6.0f} {mark['good']:5.0f} {mark['rss_mb']:7.1f}   {mark['serve_cpu'] * 100:4.0f}% / "
            f"{mark['postgres_cpu'] * 100:4.0f}% / {mark['others'] * 100:4.0f}%   {percentile(window, 0.99) * 1e3:7.1f}"
        )
    rss_mb, p99_ms = o.peak_rss_kb / 1024, percentile(during, 0.99) * 1e3
    shown = "not within the timeout" if synced_in is None else f"{synced_in:.1f} s"
    targets = [
        (synced_in is not None and synced_in <= FLOOR_FACTOR * floor,
         f"every tenant synced within {FLOOR_FACTOR}× the floor ({FLOOR_FACTOR * floor:.1f} s): {shown}"),
        (rss_mb <= RSS_TARGET_MB, f"serve peak RSS ≤ {RSS_TARGET_MB:.0f} MB: {rss_mb:.1f} MB"),
        (p99_ms < P99_TARGET_MS and worst[1] < P99_TARGET_MS,
         f"callback p99 < {P99_TARGET_MS:.0f} ms throughout: {p99_ms:.1f} ms, "
         f"worst {WINDOW_SECONDS:.0f}-s window {worst[1]:.1f} ms"),
        (suite_tokens <= token_periods, f"suite token fetched once per expiry: {suite_tokens} call(s)"),
        (corp_tokens <= n * token_periods and max(gettoken_per.values(), default=0) <= token_periods,
         f"corp token fetched once per tenant per expiry: {corp_tokens} for {n} tenants"),
    ]  # fmt: skip
    lines.append("targets:")
    lines += [f"  {verdict(ok):<6} {text}" for ok, text in targets]
    complete = len(o.first_good) == n and all(k.endswith(" 200") for k in statuses)
    return lines, complete


# -- the run -----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, tmp: Path, url: str, database: str) -> Outcome:
    app_dir = tmp / "app"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORPSYNC_")}
    env.update(CORPSYNC_DATABASE_URL=url, CORPSYNC_LOG_FORMAT="json", PYTHONPATH=str(ROOT))
    if args.profile:
        env.update({PROFILE_ENV: str(tmp / "serve.prof"), PROFILE_TIMER_ENV: args.profile})
    if args.timings:
        env[TIMINGS_ENV] = str(tmp / "statements.json")
    if args.sync_parallel:
        env["CORPSYNC_SYNC_PARALLEL"] = str(args.sync_parallel)
    experiment = {k: v for k, v in (("poll_seconds", args.poll_seconds),) if v}
    if experiment:
        env[SCHEDULER_ENV] = orjson.dumps(experiment).decode()
    wrapped = bool(args.profile or args.timings or experiment)
    async with upstream(args) as up:
        s = up.info["suite"]
        write_suite(app_dir, AUTH, suite_id=s["suiteId"], suite_secret=s["suiteSecret"], api_base=s["apiBase"],
                    provider_corp_id=s["providerCorpId"], token=s["token"], aes_key=s["encodingAESKey"])  # fmt: skip
        async with serving(app_dir, env, database, wrapped=wrapped) as server:
            await up.stats()  # from here on, count the run's calls only
            async with sender(args, server.port, up.info["url"]) as out:
                pids = {"serve": server.proc.pid, "upstream": up.proc.pid, "sender": out.pid}
                watch = Watch(database, server.proc.pid, pids)
                load_before = loadavg()
                started = time.time()
                await tell(out, b"go\n")
                done = await watch_until_synced(watch, url, len(up.info["tenants"]), started, args)
                if done is not None and time.time() - started < args.seconds:
                    await asyncio.sleep(args.seconds - (time.time() - started))
                peak_rss = max(watch.peak_rss_kb, vm_kb(server.proc.pid, "VmHWM"))
                load_after = loadavg()
                server_buckets, metrics_bytes = await server_side(server.port)
                await tell(out, b"stop\n")
                assert out.stdout is not None
                sent = orjson.loads(await out.stdout.readline())
            conn = await asyncpg.connect(url)
            try:
                first_good = {r["corp_id"]: r["at"] for r in await conn.fetch(FIRST_GOOD, AUTH)}
                runs = await conn.fetch(RUNS, AUTH)
                registered = await conn.fetchrow(REGISTERED, AUTH)
                inbox = await conn.fetch(INBOX)
                dead = await conn.fetch(DEAD)
            finally:
                await conn.close()
            stats = await up.stats()
    log_text = (app_dir / "serve.log").read_text(errors="replace")
    return Outcome(up.info, started, done, sent, watch, peak_rss, first_good, runs, registered, inbox, dead, stats,
                   server_buckets, metrics_bytes, (load_before, load_after), log_text)  # fmt: skip


async def bench(args: argparse.Namespace) -> tuple[list[str], bool, str]:
    async with scratch_database("corpsync_tenants", keep=args.keep_database) as (url, name):
        with tempfile.TemporaryDirectory(prefix="corpsync-tenants-") as tmp:
            outcome = await asyncio.wait_for(run(args, Path(tmp), url, name), args.timeout + 300)
            lines, ok = report(args, outcome)
            if args.profile:
                lines += profile_lines(Path(tmp) / "serve.prof", args.profile)
            if args.timings:
                lines += statement_lines(orjson.loads((Path(tmp) / "statements.json").read_bytes()), args.tenants)
    if args.keep_database:
        lines.append(f"database kept: {url}")
    return lines, ok, outcome.log_text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tenants", type=int, default=1000, help="tenants of the 代开发 template")
    p.add_argument("--min-members", type=int, default=50)
    p.add_argument("--max-members", type=int, default=500)
    p.add_argument("--seconds", type=float, default=60.0, help="shortest length of the change stream")
    p.add_argument("--rate", type=float, default=20.0, help="contact-change callbacks/s, all tenants together")
    p.add_argument("--timeout", type=float, default=900.0, help="give up this long after the first callback")
    p.add_argument("--connections", type=int, default=8, help="connections pushing the create_auth instructions")
    p.add_argument("--timeline", type=float, default=10.0, help="seconds between timeline lines")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--profile", nargs="?", const="cpu", choices=("cpu", "wall"),
        help="run the server under cProfile (process CPU or wall time) and print the top",
    )  # fmt: skip
    p.add_argument("--timings", action="store_true", help="time every statement serve awaits, by named query")
    p.add_argument("--sync-parallel", type=int, help="serve's CORPSYNC_SYNC_PARALLEL (default: serve's, 2)")
    p.add_argument("--poll-seconds", type=float, help="experiment: the scheduler's poll_seconds (product default 5)")
    p.add_argument("--server-log", help="keep the server's log in this file")
    p.add_argument("--keep-database", action="store_true", help="do not drop the scratch database (print its URL)")
    args = p.parse_args(argv)
    if not 1 <= args.min_members <= args.max_members or args.tenants < 1 or args.rate <= 0:
        p.error("need 1 <= --min-members <= --max-members, --tenants >= 1 and --rate > 0")
    return args


def main() -> int:
    args = parse_args()
    lines, ok, log_text = asyncio.run(bench(args))
    if args.server_log:
        Path(args.server_log).write_text(log_text)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
