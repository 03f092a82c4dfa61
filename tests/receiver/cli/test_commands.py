"""The ``corpsync`` command line as users run it: separate processes, real PostgreSQL, the simulator upstream."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from receiver.testing import write_dingtalk_corp, write_wecom_corp
from tests.support.processes import corpsync_env


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def simulator() -> Iterator[dict[str, Any]]:
    """``corpsync simulate`` in its own process; yields the credentials it prints."""
    with subprocess.Popen(  # on exit: waits, and closes its pipe
        [sys.executable, "-m", "receiver", "simulate", "--port", "0", "--members", "120", "--departments", "12"],
        stdout=subprocess.PIPE,
        text=True,
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


def test_simulate_serves_a_proxy_template_with_a_tenant(simulator: dict[str, Any]) -> None:
    (template,) = simulator["suites"].values()
    assert template["suiteId"].startswith("dk")  # 代开发, not a third-party suite
    assert template["apiBase"] == simulator["url"] + "/wecom"
    (tenant,) = template["tenants"].values()
    assert (tenant["members"], tenant["departments"]) == (60, 6)


def test_check_config_prints_each_corp_and_its_callback_url(tmp_path: Path) -> None:
    write_wecom_corp(tmp_path, "HQ", corp_id="wwhq")
    write_dingtalk_corp(tmp_path, "Sales", corp_id="dingcorp", app_key="dingappkey")
    env = corpsync_env(CORPSYNC_PUBLIC_URL="https://sync.example.com")
    done = run("check-config", "--app-dir", str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr
    assert "https://sync.example.com/callback/wecom/HQ" in done.stdout
    assert "https://sync.example.com/callback/dingtalk/Sales" in done.stdout
    assert "app-secret" not in done.stdout
    assert "CORPSYNC_PUBLIC_URL" not in done.stderr


def test_check_config_warns_when_the_public_url_is_unset(tmp_path: Path) -> None:
    write_wecom_corp(tmp_path, "HQ", corp_id="wwhq")
    done = run("check-config", "--app-dir", str(tmp_path), env=corpsync_env())
    assert done.returncode == 0
    assert "http://127.0.0.1:8080/callback/wecom/HQ" in done.stdout
    assert done.stderr.startswith("corpsync: warning: CORPSYNC_PUBLIC_URL is not set") and done.stderr.count("\n") == 1


def test_check_config_reports_a_broken_app_dir_in_one_line(tmp_path: Path) -> None:
    write_wecom_corp(tmp_path, "HQ", corp_id="wwhq", aes_key="short")
    done = run("check-config", "--app-dir", str(tmp_path), env=corpsync_env())
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "HQ.json" in done.stderr and "encodingAESKey" in done.stderr


def test_two_migrates_started_together_both_succeed_and_leave_one_schema(empty_db_url: str) -> None:
    env = corpsync_env(CORPSYNC_DATABASE_URL=empty_db_url)
    cmd = [sys.executable, "-m", "receiver", "migrate"]
    with contextlib.ExitStack() as started:  # on exit: each waited for, its pipes closed
        procs = [
            started.enter_context(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            for _ in range(2)
        ]
        assert [p.wait(timeout=60) for p in procs] == [0, 0]

    async def versions() -> list[int]:
        conn = await asyncpg.connect(empty_db_url)
        try:
            return [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
        finally:
            await conn.close()

    import asyncio

    from handlers.store.queries import migrations

    assert asyncio.run(versions()) == [m.version for m in migrations()]


def test_sync_pulls_the_simulated_org_and_prints_an_honest_summary(
    tmp_path: Path, simulator: dict[str, Any], db_url: str
) -> None:
    ((corp_id, wecom),) = simulator["wecom"].items()
    write_wecom_corp(
        tmp_path,
        "HQ",
        corp_id=corp_id,
        secret=wecom["secret"],
        contact_secret=wecom["contactSecret"],
        api_base=wecom["apiBase"],
        token=wecom["callback"]["token"],
        aes_key=wecom["callback"]["encodingAESKey"],
    )
    env = corpsync_env(CORPSYNC_DATABASE_URL=db_url)
    done = run("sync", "HQ", "--app-dir", str(tmp_path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout

    async def counts() -> tuple[int, int]:
        conn = await asyncpg.connect(db_url)
        try:
            members = await conn.fetchval("SELECT count(*) FROM members WHERE status = 'active'")
            runs = await conn.fetchval("SELECT count(*) FROM sync_runs WHERE status = 'succeeded'")
            return members, runs
        finally:
            await conn.close()

    import asyncio

    members, runs = asyncio.run(counts())
    assert runs == 1
    assert 0 < members <= wecom["members"]

    again = run("sync", "HQ", "--app-dir", str(tmp_path), env=env)
    assert again.returncode == 0
    assert asyncio.run(counts()) == (members, 2)


def test_sync_of_an_unknown_corp_names_the_known_ones(tmp_path: Path) -> None:
    write_wecom_corp(tmp_path, "HQ", corp_id="wwhq")
    done = run("sync", "Nope", "--app-dir", str(tmp_path), env=corpsync_env(CORPSYNC_DATABASE_URL="postgresql://x/y"))
    assert done.returncode == 2
    assert "HQ" in done.stderr


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "receiver", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_export_events_then_replay_to_another_receiver_moves_every_event(
    tmp_path: Path, db_url: str, empty_db_url: str, aiohttp_server: Any
) -> None:
    from receiver.app import create_app
    from receiver.appdir import load_app_dir
    from receiver.settings import Settings
    from receiver.testing import push_event

    write_wecom_corp(tmp_path, "HQ", corp_id="wwhq")
    config = load_app_dir(tmp_path, {})
    quiet = Settings(app_dir=tmp_path, run_worker=False, run_scheduler=False)
    source = await aiohttp_server(create_app(quiet, config, db_url))
    target = await aiohttp_server(create_app(quiet, config, empty_db_url))

    import aiohttp

    async with aiohttp.ClientSession(base_url=str(source.make_url("/"))) as client:
        for i in range(3):
            xml = f"<xml><ToUserName>wwhq</ToUserName><Event>change_contact</Event><UserID>u{i}</UserID></xml>"
            assert (await push_event(client, config, "HQ", xml)).status == 200

    dump = tmp_path / "events.jsonl"
    code, _, err = await _cli("export-events", "--out", str(dump), env=corpsync_env(CORPSYNC_DATABASE_URL=db_url))
    assert code == 0, err
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert len(lines) == 3
    assert all(line["plaintext"].startswith("<xml>") for line in lines)

    code, out, err = await _cli("replay", str(dump), "--url", str(target.make_url("/")), env=corpsync_env())
    assert code == 0, err
    assert "sent 3" in out
    conn = await asyncpg.connect(empty_db_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 3
    finally:
        await conn.close()


def test_version_and_every_option_has_help_and_a_metavar() -> None:
    from receiver.cli import _parser
    from receiver.testing.serve import _parser as simulate_parser

    done = run("--version", env=corpsync_env())
    assert done.returncode == 0 and done.stdout.startswith("corpsync 0.")
    parser = _parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert isinstance(commands, dict)
    for name, sub in [("corpsync", parser), *commands.items(), ("simulate", simulate_parser())]:
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest}: no help text"
            takes_value = action.nargs != 0 and not isinstance(action, argparse._VersionAction)
            if takes_value and action.dest != "command":
                assert action.metavar and action.metavar.isupper(), f"{name} {action.dest}: metavar {action.metavar}"
