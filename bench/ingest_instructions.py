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
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench._load import drive
from bench.ingest import (
    CORP_ID,
    ROOT,
    SELF,
    Server,
    free_port,
    intake_only_env,
    scratch_database,
    stop,
    wait_healthy,
)
from receiver.testing import write_wecom_corp

STARTUP_SECONDS = 600  # the app starts some 50 times slower under valgrind
WARM_UP_ALLOWANCE = 3000  # callbacks the load generator's 1-s warm-up may take first (uninstrumented: fast)


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
            flags = ["--port", str(port), "--mode", "closed", "--seconds", "1e9"]
            flags += ["--concurrency", str(args.concurrency), "--count", str(args.callbacks + WARM_UP_ALLOWANCE)]

            async def instrument(_: list[int]) -> None:
                for command in ("--instr=on", "--zero"):
                    await control(command, proc.pid)

            (result,) = await drive([flags], at_ready=instrument, at_done=lambda: control("--dump", proc.pid))
        finally:
            await stop(proc, grace=120)
    answered = int(result["window_answers"])
    if not answered:
        raise RuntimeError(f"{name} answered nothing in the timed window: the warm-up took every callback")
    return dump_total(out, name, proc.pid), answered


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
    async with scratch_database("corpsync_instr") as (url, _):
        with tempfile.TemporaryDirectory(prefix="corpsync-instr-") as tmp:
            app_dir, out = Path(tmp) / "app", Path(tmp) / "callgrind"
            out.mkdir()
            write_wecom_corp(app_dir, "HQ", corp_id=CORP_ID)
            env = intake_only_env(url)
            bare = await count("bare", [sys.executable, str(SELF), "--serve-bare"], env, args, out)
            serve = [sys.executable, "-m", "receiver", "serve", "--app-dir", str(app_dir)]
            ours = await count("corpsync", serve, env, args, out)
    per_bare, per_ours = bare[0] / bare[1], ours[0] / ours[1]
    print(f"instructions per callback under callgrind ({args.concurrency} connections, closed loop):")
    print(f"  bare aiohttp handler: {per_bare:9.0f}   ({bare[1]} callbacks)")
    print(f"  corpsync serve:       {per_ours:9.0f}   ({ours[1]} callbacks)")
    print(f"  bare / corpsync: {per_bare / per_ours * 100:.1f}%   (what the throughput ratio would be at equal cost)")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--callbacks",
        type=int,
        default=4000,
        help="callbacks to time per server (about: the warm-up takes its share first)",
    )
    p.add_argument("--concurrency", type=int, default=64, help="connections of the closed loop")
    return asyncio.run(bench(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
