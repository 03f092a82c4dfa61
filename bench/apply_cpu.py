"""CPU per applied event: the worker's share of serve's process and PostgreSQL's, without HTTP or load beside it.

    .venv/bin/python bench/apply_cpu.py [--events N] [--rounds K] [--batch-size B] [--profile FILE]

Fills a scratch database's inbox (beside CORPSYNC_DATABASE_URL, default the local 127.0.0.1:5432) with N of
bench/_load.py's distinct create_user callbacks for one corp whose departments exist, as the intake stores them,
then applies them with ``Worker.run_until_idle`` in this process (the worker of ``corpsync serve``, without its
periodic duties, on serve's event loop and with serve's garbage collector settings) and reports this process's CPU
and the CPU of the PostgreSQL backends it used, per event, and the statements it sent. K rounds after one more to
warm up, each on fresh rows (the directory grows by N members a round); the best round is the one a busy machine
disturbed least. CPU time, not wall time: it survives a machine shared with other work better, though a busy
machine still adds some (caches, frequency).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import time
import timeit
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from bench._load import CORP, CORP_ID, plaintext
from bench.ingest import SEED_DEPARTMENTS, proc_cpu, scratch_database
from handlers.events import Services, wecom
from handlers.events.parse import parse_xml
from handlers.store.inbox import InboxRecord, ensure_streams, inbox_values_of, insert_inbox_rows
from handlers.store.pool import create_pool, migrate
from handlers.store.queries import queries
from handlers.worker.loop import Worker
from handlers.worker.settle import WorkerSettings
from receiver.cli.serve import new_event_loop, tune_gc

CORP_ROW = (
    "INSERT INTO corps (name, platform, type, corp_id) VALUES ($1, 'wecom', 'corps.QywxInnerType', $2) RETURNING id"
)


async def fill(pool: asyncpg.Pool, corp: int, first: int, count: int) -> None:
    """Store ``count`` callbacks from event ``first`` on, in groups of the intake's size."""
    records = [
        InboxRecord(CORP, "wecom", "wecom", corp, f"bench:{i}", None, {}, b"<xml/>", plaintext(i, "create_user"))
        for i in range(first, first + count)
    ]
    async with pool.acquire() as conn:
        await ensure_streams(conn, [CORP])
        for start in range(0, count, 256):
            await insert_inbox_rows(conn, inbox_values_of(records[start : start + 256]))


def parse_cost(repeat: int = 5, number: int = 2000) -> tuple[float, float]:
    """Best-of-``repeat`` microseconds of ``parse_xml`` and of ``wecom.member_write`` on one of the events."""
    message = plaintext(7, "create_user")
    fields = parse_xml(message)
    parse = min(timeit.repeat(lambda: parse_xml(message), number=number, repeat=repeat)) / number
    write = min(timeit.repeat(lambda: wecom.member_write("create_user", fields, {}), number=number, repeat=repeat))
    return parse * 1e6, write / number * 1e6


def backend_cpu(pids: list[int]) -> float:
    return sum(proc_cpu(pid) for pid in pids)


def count_statements(pool: asyncpg.Pool, counts: Counter[str], seconds: Counter[str]) -> None:
    """Count every statement this process sends, and its round trips' seconds, by named query (the first words of
    an unnamed one)."""
    names = {body: name for name, body in queries().items()}

    def logger(record: Any) -> None:
        name = names.get(record.query) or " ".join(record.query.split())[:32]
        counts[name] += 1
        seconds[name] += record.elapsed

    async def add(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(logger)

    pool._init = add  # bench only: every connection the pool opens from now on


async def one_round(
    pool: asyncpg.Pool,
    corp: int,
    first: int,
    args: argparse.Namespace,
    profiler: cProfile.Profile | None,
    counts: Counter[str],
    seconds: Counter[str],
) -> dict[str, float]:
    start, spent = counts.copy(), seconds.copy()
    await fill(pool, corp, first, args.events)
    await pool.execute("ANALYZE")  # what serve's housekeeping duty keeps up as the tables grow
    filling, filling_seconds = counts - start, seconds - spent
    pids = [r["pid"] for r in await pool.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
    worker = Worker(pool, Services(), WorkerSettings(batch_size=args.batch_size, async_commit=True))
    cpu0, pg0, wall0 = time.process_time(), backend_cpu(pids), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    settled = await worker.run_until_idle()
    if profiler is not None:
        profiler.disable()
    cpu1, pg1, wall1 = time.process_time(), backend_cpu(pids), time.perf_counter()
    counts.subtract(filling)  # the applying's statements only
    seconds.subtract(filling_seconds)
    if settled != args.events:
        raise SystemExit(f"settled {settled} of {args.events} events")
    return {
        "serve_us": (cpu1 - cpu0) / settled * 1e6,
        "postgres_us": (pg1 - pg0) / settled * 1e6,
        "rate": settled / (wall1 - wall0),
    }


async def bench(args: argparse.Namespace) -> int:
    async with scratch_database("corpsync_apply_cpu") as (url, _):
        pool = await create_pool(url, min_size=args.connections, max_size=args.connections)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                corp = await conn.fetchval(CORP_ROW, CORP, CORP_ID)
                await conn.execute(SEED_DEPARTMENTS, CORP)
            await pool.expire_connections()
            counts: Counter[str] = Counter()  # the applying's statements, all rounds
            seconds: Counter[str] = Counter()
            count_statements(pool, counts, seconds)
            profiler = cProfile.Profile(time.process_time) if args.profile else None
            tune_gc()  # as serve does once it has started
            await one_round(pool, corp, 0, args, None, counts, seconds)  # warm-up: statistics, plans, caches
            counts.clear()
            seconds.clear()
            rounds = [
                await one_round(pool, corp, r * args.events, args, profiler, counts, seconds)
                for r in range(1, args.rounds + 1)
            ]
        finally:
            await pool.close()
    if profiler is not None:
        profiler.dump_stats(args.profile)
    best = min(rounds, key=lambda r: r["serve_us"] + r["postgres_us"])
    applied = args.events * args.rounds
    print(f"apply CPU per event: {args.rounds} rounds of {args.events} distinct create_user events, batch size "
          f"{args.batch_size}, worker in this process (no HTTP, no periodic duties; {args.loop}, serve's gc "
          "settings)")  # fmt: skip
    for k, r in enumerate(rounds, start=1):
        print(f"  round {k}: serve {r['serve_us']:6.1f} us, postgres {r['postgres_us']:6.1f} us, {r['rate']:6.0f}/s")
    print(f"best round: serve {best['serve_us']:.1f} us/event, postgres {best['postgres_us']:.1f} us/event")
    parse, write = parse_cost()
    print(f"of serve's: parse_xml {parse:.1f} us, wecom.member_write {write:.1f} us (best of 5 x 2,000 on one event)")
    print(f"statements per 100 events: {sum(counts.values()) / applied * 100:.1f} (each with its round trips' "
          "time per event, all rounds)")  # fmt: skip
    for name, n in counts.most_common():
        print(f"  {n / applied * 100:6.2f}  {seconds[name] / applied * 1e6:7.1f} us  {name}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=5000, help="events applied per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=WorkerSettings().batch_size, help="WorkerSettings.batch_size")
    p.add_argument("--connections", type=int, default=2, help="the pool's size")
    p.add_argument("--profile", help="write a cProfile (CPU time) of the applying to this file")
    return p.parse_args(argv)


if __name__ == "__main__":
    options = parse_args()
    loop, options.loop = new_event_loop("auto")  # serve's choice: uvloop where it is installed
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        sys.exit(runner.run(bench(options)))
