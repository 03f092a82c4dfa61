"""DingTalk Stream from the command line: `corpsync simulate` serves the gateway and prints the Stream-mode JSON;
`corpsync serve` with that JSON connects to it and says so in /readyz; `check-config` names no URL for it; two
`serve` processes on one database share a corp's events, each applied once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from receiver.testing import Simulator, generate_org, mutations, run_simulator
from tests.receiver.cli.test_serve import free_port, start, wait_healthy
from tests.support.eventkit import until
from tests.support.processes import corpsync_env
from tests.support.streaming import write_stream_corp


def simulate() -> Iterator[dict[str, Any]]:
    with subprocess.Popen(  # on exit: waits, and closes its pipe
        [sys.executable, "-m", "receiver", "simulate", "--port", "0", "--members", "20", "--departments", "3"],
        stdout=subprocess.PIPE,
        text=True,
        env=corpsync_env(),
    ) as proc:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("}"):
                break
        try:
            yield json.loads("".join(lines))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def write_stream_app_dir(root: Path, printed: dict[str, Any]) -> None:
    (app,) = printed["dingtalk"].values()
    corp = {"authConfig": app["authConfig"], "apiBase": app["apiBase"], **app["streamMode"]}
    folder = root / "corps" / "Field"
    folder.mkdir(parents=True)
    (folder / "e.json").write_bytes(orjson.dumps({"title": "Field", "type": "corps.DDInnerType"}))
    (folder / "Field.json").write_bytes(orjson.dumps(corp))


def readyz(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            body: dict[str, Any] = json.load(answer)
    except urllib.error.HTTPError as refused:  # 503 still carries the body
        body = json.load(refused)
    return body


def test_serve_connects_to_the_simulated_gateway_printed_by_simulate(tmp_path: Path, db_url: str) -> None:
    for printed in simulate():
        write_stream_app_dir(tmp_path, printed)
        check = subprocess.run(
            [sys.executable, "-m", "receiver", "check-config", "--app-dir", str(tmp_path)],
            env=corpsync_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr
        assert "Stream 模式推送" in check.stdout and "/callback/dingtalk/Field" not in check.stdout
        port = free_port()
        with start(tmp_path, port, db_url) as proc:
            try:
                wait_healthy(proc, port)
                deadline = time.monotonic() + 20
                while not readyz(port)["dingtalkStream"]["Field"]["connected"]:
                    assert time.monotonic() < deadline, readyz(port)
                    time.sleep(0.1)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        assert proc.returncode == 0


async def test_two_serve_processes_on_one_database_share_the_events_and_apply_each_once(
    tmp_path: Path, db_url: str
) -> None:
    sim = Simulator(seed=9)
    ding = sim.add_dingtalk_app(generate_org(9, members=20, departments=3, depth=2, tags=0))
    async with run_simulator(sim):
        write_stream_corp(tmp_path, ding, sim)
        env = corpsync_env(CORPSYNC_DATABASE_URL=db_url, CORPSYNC_APP_DIR=str(tmp_path), CORPSYNC_PORT="0")
        with (tmp_path / "serve.log").open("wb") as log:
            procs = [
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "receiver", "serve", env=env, stdout=log, stderr=log
                )
                for _ in range(2)
            ]
            try:

                async def both_connected() -> bool:
                    return len(sim.stream.links(ding.app_key)) == 2

                await until(both_connected, within=60)
                dept = sorted(d for d in ding.org.departments if d != ding.org.root_id)[0]
                changes = [mutations.add_member(ding.org, departments=[dept]) for _ in range(40)]
                people = [str(c.subject) for c in changes]
                sent = [m for c in changes for m in sim.stream.publish(ding.app_key, c)]

                async def acked() -> bool:
                    return sim.stream.delivered(sent)

                await until(acked, within=30)
                conn = await asyncpg.connect(db_url)
                try:

                    async def applied() -> bool:
                        pending: int = await conn.fetchval("SELECT count(*) FROM inbox WHERE status = 'pending'")
                        return pending == 0

                    await until(applied, within=30)
                    rows = await conn.fetch("SELECT status FROM inbox")
                    created = await conn.fetch(
                        "SELECT entity_id, count(*) AS n FROM change_log WHERE entity = 'member' AND op = 'create'"
                        " AND source = 'event' GROUP BY entity_id"
                    )
                finally:
                    await conn.close()
            finally:
                for proc in procs:
                    proc.terminate()
                assert [await proc.wait() for proc in procs] == [0, 0]
    assert len({a.link for a in sim.stream.acks}) == 2  # the gateway spread the events over both processes
    assert len(rows) == len(sent) and {r["status"] for r in rows} == {"done"}
    assert {r["entity_id"]: r["n"] for r in created} == dict.fromkeys(people, 1)
