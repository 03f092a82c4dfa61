"""DingTalk Stream from the command line: `corpsync simulate` serves the gateway and prints the Stream-mode JSON;
`corpsync serve` with that JSON connects to it and says so in /readyz; `check-config` names no URL for it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tests.receiver.cli.test_serve import free_port, start, wait_healthy
from tests.support.processes import corpsync_env


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
