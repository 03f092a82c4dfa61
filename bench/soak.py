"""Soak: `corpsync serve` (worker and background purge on) at a steady callback rate, with retention periods of
minutes, for ten minutes by default.

    .venv/bin/python bench/soak.py [--seconds S] [--segment T] [--rate R] [--retain-payloads P]
                                   [--retain-inbox I] [--retain-change-log C] [--purge-interval N]

Distinct WeCom create_user callbacks (bench/_load.py, open loop from each request's due time) run in segments of
T seconds back to back. After each segment the script prints the segment's answer latency p50/p99, its answers,
the inbox and change_log row counts and sizes (from the database and /metrics) and the rows purged so far. What
must hold: once the retention periods have passed, the inbox and change_log stop growing, in rows and in bytes
on disk (the last segment no more than 10% above the one a retention period before it), and the callbacks' p99
while the purge runs stays within 1.5x (or 5 ms) of the p99 before any row was old enough to purge. The database
is a scratch one beside CORPSYNC_DATABASE_URL (default the local 127.0.0.1:5432), dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg

from bench._load import drive
from bench.ingest import running, scratch_database, seed_departments, serve_env
from receiver.testing import write_wecom_corp

CORP_ID = "wx5823bf96d3bd56c7"
WARMUP = 1.0  # bench/_load.py's warm-up, in seconds at the segment's rate

SIZES = """
SELECT (SELECT count(*) FROM inbox) AS inbox_rows,
       (SELECT count(*) FROM inbox WHERE plaintext IS NOT NULL) AS inbox_payloads,
       (SELECT count(*) FROM change_log) AS change_log_rows,
       (SELECT count(*) FROM inbox WHERE status = 'pending') AS pending
"""


async def metrics(port: int) -> dict[str, float]:
    """The retention families of /metrics, by series."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"(corpsync_(?:purged_rows_total|table_bytes|oldest_row_seconds)\{[^}]*\}) (\S+)", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def purged(found: dict[str, float], kind: str) -> int:
    return int(found.get(f'corpsync_purged_rows_total{{kind="{kind}"}}', 0))


def megabytes(found: dict[str, float], table: str) -> float:
    return found.get(f'corpsync_table_bytes{{table="{table}"}}', 0.0) / 1e6


async def segment(port: int, first: int, seconds: float, rate: float) -> dict[str, Any]:
    count = int((seconds + WARMUP + 2) * rate)
    flags = [
        ["--port", str(port), "--mode", "open", "--seconds", str(seconds), "--rate", str(rate),
         "--concurrency", "32", "--first", str(first), "--count", str(count), "--kinds", "create_user"]
    ]  # fmt: skip

    async def nothing(_: list[int]) -> None:
        return None

    (result,) = await drive(flags, at_ready=nothing)
    result["count"] = count
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=600.0, metavar="S", help="length of the soak (default 600)")
    p.add_argument("--segment", type=float, default=30.0, metavar="T", help="seconds per reported segment (30)")
    p.add_argument("--rate", type=float, default=300.0, metavar="R", help="callbacks per second (default 300)")
    p.add_argument("--retain-payloads", default="60s", metavar="P", help="CORPSYNC_RETAIN_PAYLOADS (default 60s)")
    p.add_argument("--retain-inbox", default="3m", metavar="I", help="CORPSYNC_RETAIN_INBOX (default 3m)")
    p.add_argument("--retain-change-log", default="3m", metavar="C", help="CORPSYNC_RETAIN_CHANGE_LOG (default 3m)")
    p.add_argument("--purge-interval", default="5", metavar="N", help="CORPSYNC_PURGE_INTERVAL (default 5)")
    return p.parse_args(argv)


def seconds_of(period: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(period[:-1]) * units[period[-1]] if period[-1] in units else float(period)


async def soak(args: argparse.Namespace) -> int:
    longest = max(seconds_of(args.retain_inbox), seconds_of(args.retain_change_log))
    first_purge = seconds_of(args.retain_payloads)
    async with scratch_database("corpsync_soak") as (url, name):
        with tempfile.TemporaryDirectory(prefix="corpsync-soak-") as tmp:
            app_dir = Path(tmp)
            write_wecom_corp(app_dir, "HQ", corp_id=CORP_ID)
            env = serve_env(url, worker=True) | {
                "CORPSYNC_RETAIN_PAYLOADS": args.retain_payloads,
                "CORPSYNC_RETAIN_INBOX": args.retain_inbox,
                "CORPSYNC_RETAIN_CHANGE_LOG": args.retain_change_log,
                "CORPSYNC_PURGE_INTERVAL": args.purge_interval,
            }
            argv = [sys.executable, "-m", "receiver", "serve", "--app-dir", str(app_dir)]
            async with running("corpsync", argv, env, name) as server:
                await seed_departments(url, "HQ")
                conn = await asyncpg.connect(url)
                rows: list[dict[str, Any]] = []
                started, first = time.monotonic(), 0
                print(
                    f"soak: {args.rate:g} callbacks/s for {args.seconds:g} s; payloads kept {args.retain_payloads}, "
                    f"inbox {args.retain_inbox}, change_log {args.retain_change_log}; purge every "
                    f"{args.purge_interval} s"
                )
                print(
                    "   t(s)  p50 ms  p99 ms  answers  pending  inbox rows (MB)  payloads  change_log rows (MB)"
                    "  stripped  deleted  cl deleted"
                )
                try:
                    for _ in range(max(1, round(args.seconds / args.segment))):
                        result = await segment(server.port, first, args.segment, args.rate)
                        first += result["count"]
                        sizes = dict(await conn.fetchrow(SIZES) or {})
                        found = await metrics(server.port)
                        row = {
                            "t": time.monotonic() - started,
                            "p50": result["p50_ms"],
                            "p99": result["p99_ms"],
                            "answers": result["answers"],
                            **sizes,
                            "inbox_mb": megabytes(found, "inbox"),
                            "change_log_mb": megabytes(found, "change_log"),
                            "stripped": purged(found, "inbox_payloads"),
                            "deleted": purged(found, "inbox"),
                            "cl_deleted": purged(found, "change_log"),
                        }
                        rows.append(row)
                        answers = ",".join(f"{k}:{v}" for k, v in row["answers"].items())
                        print(
                            f"{row['t']:7.0f} {row['p50']:7.2f} {row['p99']:7.2f}  {answers:>7}  {row['pending']:7}"
                            f"  {row['inbox_rows']:10} ({row['inbox_mb']:5.1f})  {row['inbox_payloads']:8}"
                            f"  {row['change_log_rows']:15} ({row['change_log_mb']:5.1f})"
                            f"  {row['stripped']:8}  {row['deleted']:7}  {row['cl_deleted']:10}",
                            flush=True,
                        )
                finally:
                    await conn.close()
    return verdict(rows, args, first_purge, longest)


def verdict(rows: list[dict[str, Any]], args: argparse.Namespace, first_purge: float, longest: float) -> int:
    """Print the two figures the soak is for, and whether they hold."""
    before = [r for r in rows if r["t"] <= first_purge]
    during = [r for r in rows if r["t"] > first_purge + args.segment]
    ok = True
    if before and during:
        p99_before = statistics.median(r["p99"] for r in before)
        p99_during = statistics.median(r["p99"] for r in during)
        worst = max(r["p99"] for r in during)
        held = p99_during <= max(1.5 * p99_before, p99_before + 5.0)
        ok &= held
        print(
            f"callback p99 before any purge {p99_before:.2f} ms; while purging {p99_during:.2f} ms (median of "
            f"{len(during)} segments, worst {worst:.2f} ms): {'unchanged' if held else 'SLOWER'}"
        )
    else:
        print("callback p99: the soak was too short to compare before and while purging")
    settled = [r for r in rows if r["t"] > longest + 2 * args.segment]
    lag = max(1, round(longest / args.segment))
    if len(settled) > lag:
        last, earlier = settled[-1], settled[-1 - lag]
        for table in ("inbox", "change_log"):
            rows_grew = last[f"{table}_rows"] / max(earlier[f"{table}_rows"], 1)
            bytes_grew = last[f"{table}_mb"] / max(earlier[f"{table}_mb"], 1e-9)
            level = rows_grew <= 1.10 and bytes_grew <= 1.10
            ok &= level
            print(
                f"{table}: {earlier[f'{table}_rows']} rows, {earlier[f'{table}_mb']:.1f} MB at {earlier['t']:.0f} s; "
                f"{last[f'{table}_rows']} rows, {last[f'{table}_mb']:.1f} MB at {last['t']:.0f} s "
                f"({rows_grew:.2f}x rows, {bytes_grew:.2f}x bytes): {'levels off' if level else 'STILL GROWING'}"
            )
    else:
        print("sizes: the soak was too short to see them level off (run it past the longest retention)")
    bad = sum(v for r in rows for k, v in r["answers"].items() if k != "200")
    ok &= bad == 0
    print(f"answers other than 200: {bad}")
    return 0 if ok else 1


def main() -> int:
    return asyncio.run(soak(parse_args()))


if __name__ == "__main__":
    sys.exit(main())
