"""`corpsync serve` as a real process: start-up, clean shutdown, and no acknowledged event lost to kill -9."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from handlers.errors import ConfigError
from receiver.cli.serve import new_event_loop, settle_heap
from receiver.settings import settings_from_env
from receiver.testing import sign_wecom_callback, write_wecom_corp
from receiver.testing.harness import WECOM_AES_KEY, WECOM_TOKEN

CORP = "wx5823bf96d3bd56c7"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(app_dir: Path, port: int, database_url: str | None, **settings: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORPSYNC_")}
    env.update({"CORPSYNC_LOG_FORMAT": "json", "CORPSYNC_SCHEDULER": "false", **settings})
    if database_url:
        env["CORPSYNC_DATABASE_URL"] = database_url
    return subprocess.Popen(
        [sys.executable, "-m", "receiver", "serve", "--app-dir", str(app_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_healthy(proc: subprocess.Popen[bytes], port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                if b"200 OK" in s.recv(200):
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("serve did not become healthy")


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    write_wecom_corp(tmp_path, "HQ", corp_id=CORP)
    return tmp_path


@pytest.fixture
def served(app_dir: Path, db_url: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    with start(app_dir, port, db_url) as proc:  # on exit: waits, and closes its pipes
        try:
            wait_healthy(proc, port)
            yield proc, port
        finally:
            if proc.poll() is None:
                proc.kill()


def event(i: int) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_contact]]></Event><ChangeType>create_user</ChangeType>"
        f"<UserID><![CDATA[user{i}]]></UserID></xml>"
    ).encode()


def test_serves_on_uvloop_and_shuts_down_cleanly_on_sigterm(served: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, _ = served
    proc.send_signal(signal.SIGTERM)
    _, logs = proc.communicate(timeout=20)
    assert proc.returncode == 0
    (started,) = [json.loads(line) for line in logs.splitlines() if b'"serve_started"' in line]
    assert started["event_loop"] == ("uvloop" if _has_uvloop() else "asyncio")


def _has_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None  # installed everywhere but Windows


def test_the_event_loop_is_uvloop_when_installed_unless_asyncio_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")
    for choice, kind, name in [("auto", uvloop.Loop, "uvloop"), ("uvloop", uvloop.Loop, "uvloop")]:
        loop, said = new_event_loop(choice)
        loop.close()
        assert isinstance(loop, kind) and said == name
    loop, said = new_event_loop("asyncio")
    loop.close()
    assert not isinstance(loop, uvloop.Loop) and isinstance(loop, asyncio.BaseEventLoop) and said == "asyncio"

    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on a platform without it: the import fails
    loop, said = new_event_loop("auto")
    loop.close()
    assert not isinstance(loop, uvloop.Loop) and said == "asyncio"
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        new_event_loop("uvloop")


def test_the_event_loop_setting_is_read_and_checked() -> None:
    assert settings_from_env({}).event_loop == "auto"
    assert settings_from_env({"CORPSYNC_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(ConfigError, match=r"CORPSYNC_EVENT_LOOP.*'tokio'"):
        settings_from_env({"CORPSYNC_EVENT_LOOP": "tokio"})


@pytest.mark.slow
@pytest.mark.timeout(180)  # a fresh embedded server runs initdb first: up to 120 s to healthy, 30 s to stop
def test_serve_starts_on_the_embedded_database_and_stops_it(app_dir: Path) -> None:
    port = free_port()
    with start(app_dir, port, None) as proc:  # on exit: waits, and closes its pipes
        try:
            wait_healthy(proc, port, timeout=120)
            assert (app_dir / ".corpsync" / "pgdata" / "PG_VERSION").exists()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
            assert not (app_dir / ".corpsync" / "pgdata" / "postmaster.pid").exists()
        finally:
            if proc.poll() is None:
                proc.kill()


async def test_kill_9_mid_burst_loses_no_acknowledged_event(
    served: tuple[subprocess.Popen[bytes], int], db_url: str
) -> None:
    proc, port = served
    acknowledged: list[bytes] = []
    enough = asyncio.Event()
    url = f"http://127.0.0.1:{port}/callback/wecom/HQ"

    async def send(session: aiohttp.ClientSession, i: int) -> None:
        plaintext = event(i)
        query, body = sign_wecom_callback(plaintext, token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, receive_id=CORP)
        try:
            async with session.post(url, params=query, data=body) as response:
                if response.status == 200:
                    acknowledged.append(plaintext)
                    if len(acknowledged) >= 150:
                        enough.set()
        except (TimeoutError, aiohttp.ClientError):
            pass  # not acknowledged: the platform would retry

    async def killer() -> None:
        await enough.wait()
        proc.kill()

    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(killer(), *(send(session, i) for i in range(2000)))
    proc.wait()
    assert 150 <= len(acknowledged) < 2000, "the kill should land in the middle of the burst"

    conn = await asyncpg.connect(db_url)
    try:
        stored = {r["dedupe_key"] for r in await conn.fetch("SELECT dedupe_key FROM inbox")}
    finally:
        await conn.close()
    missing = [p for p in acknowledged if hashlib.sha256(p).hexdigest() not in stored]
    assert not missing, f"{len(missing)} acknowledged events are not in the inbox"


def test_serving_settles_the_heap_for_the_collector() -> None:
    """Start-up's objects leave the collector's generations, and young collections are ten times rarer."""
    before = gc.get_threshold()
    try:
        asyncio.run(settle_heap(web.Application()))
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (7_000, 10, 10)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_connections_that_send_too_slowly_are_closed(app_dir: Path, db_url: str) -> None:
    port = free_port()
    with start(app_dir, port, db_url, CORPSYNC_CLIENT_TIMEOUT="1") as proc:
        try:
            wait_healthy(proc, port)
            slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(30)]
            for i, conn in enumerate(slow):
                conn.sendall([b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"POST /x HTTP/1.1\r\n"][i % 3])
            started = time.monotonic()
            for conn in slow:
                assert conn.recv(100) == b""  # closed by the server, with no answer
                conn.close()
            assert time.monotonic() - started < 4
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(b"POST /callback/wecom/HQ HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n<xml>")
                assert conn.recv(100).startswith(b"HTTP/1.1 408")
        finally:
            proc.terminate()


def test_the_client_timeout_setting_is_read_and_checked() -> None:
    assert settings_from_env({}).client_timeout == 10
    assert settings_from_env({"CORPSYNC_CLIENT_TIMEOUT": "3"}).client_timeout == 3
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigError, match="CORPSYNC_CLIENT_TIMEOUT"):
            settings_from_env({"CORPSYNC_CLIENT_TIMEOUT": bad})
