"""Instructions per callback of `corpsync serve` and of the bare aiohttp handler, counted by callgrind.

    .venv/bin/python bench/ingest_instructions.py [--callbacks N] [--concurrency C]

bench/ingest.py times both servers; on a shared machine their speed swings by tens of percent within seconds,
so its ratio moves from run to run. Instruction counts do not: each server runs under valgrind's callgrind
(instrumentation switched on only after start-up and the load generator's warm-up), takes N signed WeCom
callbacks from bench/_load.py at a closed loop of C connections, and the instructions it executed in that
window are divided by the callbacks it answered. The ratio bare / corpsync is what the throughput ratio would
be if an instruction cost the same everywhere (it does not: memory stalls and the CPU's SHA and AES
instructions, which valgrind does not offer, make the real ratio differ by a few percent). Needs valgrind;
takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import orjson

from bench.ingest import CORP_ID, DEFAULT_URL, LOAD, ROOT, SELF, Server, free_port, stop, wait_healthy, with_database
from receiver.testing import write_wecom_corp

STARTUP_SECONDS = 600  # the app starts some 50 times slower under valgrind


async def count(
    name: str, argv: list[str], env: dict[str, str], args: argparse.Namespace, out: Path
) -> tuple[int, int]:
    """(instructions, callbacks answered) of one server over the timed window."""
    port = free_port()
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}/{name}.%p"]
    with tempfile.TemporaryFile() as log:
        proc = await asyncio.create_subprocess_exec(
            *valgrind, *argv, "--port", str(port), env=env, stdout=log, stderr=log, cwd=ROOT
        )
        try:
            await wait_healthy(Server(name, proc, port, None, log), within=STARTUP_SECONDS)
            loader = await asyncio.create_subprocess_exec(
                sys.executable, str(LOAD), "--port", str(port), "--mode", "closed", "--seconds", "1e9",
                "--concurrency", str(args.concurrency), "--count", str(2 * args.callbacks),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT, limit=1 << 26,
            )  # fmt: skip
            assert loader.stdin is not None and loader.stdout is not None
            if (await loader.stdout.readline()).strip() != b"ready":
                raise RuntimeError("the load generator did not start")
            for command in ("--instr=on", "--zero"):
                await control(command, proc.pid)
            loader.stdin.write(b"go\n")
            await loader.stdin.drain()
            result = orjson.loads(await loader.stdout.readline())
            await control("--dump", proc.pid)
            await loader.wait()
        finally:
            await stop(proc, grace=120)
    return dump_total(out, name, proc.pid), int(result["window_answers"])


def dump_total(out: Path, name: str, pid: int) -> int:
    """The instruction total of the explicit dump (part 1; the exit writes a part 2 of its own)."""
    dumps = sorted(out.glob(f"{name}.{pid}.*"))
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump for {name}")
    match = re.search(rb"^(?:summary|totals): (\d+)", dumps[0].read_bytes(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction total in {dumps[0]}")
    return int(match.group(1))


async def control(command: str, pid: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        "callgrind_control", command, str(pid), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"callgrind_control {command} failed: {err.decode(errors='replace')[-300:]}")


async def bench(args: argparse.Namespace) -> int:
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("valgrind (with callgrind_control) is not installed", file=sys.stderr)
        return 2
    base_url = os.environ.get("CORPSYNC_DATABASE_URL") or DEFAULT_URL
    database = f"corpsync_instr_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        with tempfile.TemporaryDirectory(prefix="corpsync-instr-") as tmp:
            app_dir, out = Path(tmp) / "app", Path(tmp) / "callgrind"
            out.mkdir()
            write_wecom_corp(app_dir, "HQ", corp_id=CORP_ID)
            env = {k: v for k, v in os.environ.items() if not k.startswith("CORPSYNC_")}
            env.update(
                CORPSYNC_DATABASE_URL=with_database(base_url, database),
                CORPSYNC_SCHEDULER="false",
                CORPSYNC_WORKER="false",
                CORPSYNC_LOG_FORMAT="json",
                PYTHONPATH=str(ROOT),
            )
            bare = await count("bare", [sys.executable, str(SELF), "--serve-bare"], env, args, out)
            serve = [sys.executable, "-m", "receiver", "serve", "--app-dir", str(app_dir)]
            ours = await count("corpsync", serve, env, args, out)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    per_bare, per_ours = bare[0] / bare[1], ours[0] / ours[1]
    print(f"instructions per callback under callgrind ({args.concurrency} connections, closed loop):")
    print(f"  bare aiohttp handler: {per_bare:9.0f}   ({bare[1]} callbacks)")
    print(f"  corpsync serve:       {per_ours:9.0f}   ({ours[1]} callbacks)")
    print(f"  bare / corpsync: {per_bare / per_ours * 100:.1f}%   (what the throughput ratio would be at equal cost)")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--callbacks", type=int, default=4000, help="callbacks to pre-sign per server (about half are timed)"
    )
    p.add_argument("--concurrency", type=int, default=64, help="connections of the closed loop")
    return asyncio.run(bench(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
