"""``corpsync changes``: status, enable and replay of the feed's webhook subscribers, as a user runs them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg

from handlers.feed.delivery import declare
from handlers.model import Member
from handlers.store import pool as db
from handlers.store.directory import Directory, Source
from receiver.appdir import load_app_dir
from receiver.testing import write_wecom_corp
from tests.support.feed import corp_row, new_secret
from tests.support.processes import corpsync_env


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "receiver", "changes", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


def app_dir(root: Path) -> Path:
    write_wecom_corp(root, "HQ", corp_id="HQ")
    (root / "subscribers/HR").mkdir(parents=True)
    (root / "subscribers/HR/e.json").write_text(json.dumps({"title": "HR", "type": "subscribers.Webhook"}))
    doc = {"url": "http://127.0.0.1:9/hook", "secret": new_secret(), "events": ["member.*"]}
    (root / "subscribers/HR/HR.json").write_text(json.dumps(doc))
    return root


async def three_changes(url: str) -> list[int]:
    pool = await db.create_pool(url, min_size=1, max_size=2)
    try:
        corp = await corp_row(pool)
        async with pool.acquire() as conn:
            directory = Directory(conn, corp, Source("event"))
            for user_id in ("u1", "u2", "u3"):
                await directory.upsert_member(Member(user_id, user_id))
        return [r["id"] for r in await pool.fetch("SELECT id FROM change_log ORDER BY id")]
    finally:
        await pool.close()


async def outbox(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [r["change_id"] for r in await conn.fetch("SELECT change_id FROM feed_outbox ORDER BY id")]
    finally:
        await conn.close()


def test_replay_queues_the_changes_after_a_cursor_and_status_shows_them(tmp_path: Path, db_url: str) -> None:
    ids = asyncio.run(three_changes(db_url))
    env = corpsync_env(CORPSYNC_DATABASE_URL=db_url, CORPSYNC_APP_DIR=str(app_dir(tmp_path)))
    done = run("replay", "HR", "--after", str(ids[0]), env=env)
    assert (done.returncode, done.stdout) == (0, "HR: 2 changes queued again\n"), done.stderr
    assert asyncio.run(outbox(db_url)) == ids[1:]
    status = run("status", env=env)
    assert status.returncode == 0 and status.stdout.startswith("HR: ok, 2 pending, oldest ")
    assert run("enable", "HR", env=env).stdout == "HR: enabled\n"


def test_mistakes_are_one_line(tmp_path: Path, db_url: str) -> None:
    env = corpsync_env(CORPSYNC_DATABASE_URL=db_url, CORPSYNC_APP_DIR=str(app_dir(tmp_path)))
    for args, expected in [
        (("replay", "Nope", "--after", "1"), "no subscriber named 'Nope' (subscribers: HR)"),
        (("replay", "HR"), "give a change id to replay after, or a time to replay since"),
        (("replay", "HR", "--after", "x"), "--after: expected a change id"),
        (("replay", "HR", "--since", "yesterday"), "--since: expected an ISO-8601 time"),
        (("enable",), "changes enable needs a subscriber name"),
    ]:
        done = run(*args, env=env)
        assert done.returncode == 2, args
        assert expected in done.stderr and done.stderr.count("\n") == 1, done.stderr


async def serve_starts(url: str, app: Path) -> None:
    """What ``serve`` does with the app dir's subscribers when it starts."""
    pool = await db.create_pool(url, min_size=1, max_size=1)
    try:
        await declare(pool, load_app_dir(app, {}).subscribers)
    finally:
        await pool.close()


def test_status_shows_a_subscriber_removed_from_the_app_dir_and_removes_none_itself(
    tmp_path: Path, db_url: str
) -> None:
    ids = asyncio.run(three_changes(db_url))
    env = corpsync_env(CORPSYNC_DATABASE_URL=db_url, CORPSYNC_APP_DIR=str(app_dir(tmp_path)))
    assert run("replay", "HR", "--after", str(ids[0]), env=env).returncode == 0
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    elsewhere = run("status", env={**env, "CORPSYNC_APP_DIR": str(empty)})  # the wrong directory drops nothing
    assert elsewhere.stdout == "no subscribers in subscribers/\n" and len(asyncio.run(outbox(db_url))) == 2
    for name in ("e.json", "HR.json"):
        (tmp_path / "subscribers/HR" / name).unlink()
    (tmp_path / "subscribers/HR").rmdir()
    asyncio.run(serve_starts(db_url, tmp_path))
    status = run("status", env=env)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("HR: removed ") and status.stdout.endswith(" (not in subscribers/)\n")
    assert asyncio.run(outbox(db_url)) == []
