"""Every runtime mistake a user can make ends in one clear line on stderr and a non-zero status, never a
traceback: each case runs the real command in its own process."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from receiver.testing import write_wecom_corp
from tests.support.pgcluster import PASSWORD, password_cluster
from tests.support.processes import corpsync_env


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def the_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line the command said about its failure: its JSON log lines aside, stderr holds exactly one line,
    starting ``corpsync:``, and no traceback."""
    assert "Traceback" not in done.stderr
    said = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert len(said) == 1, done.stderr
    assert said[0].startswith("corpsync: ")
    return said[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_database_down(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    done = run("migrate", env=corpsync_env(CORPSYNC_DATABASE_URL=url))
    assert done.returncode == 1
    assert (
        the_line(done) == f"corpsync: database {url}: connection refused (is PostgreSQL running and listening there?)"
    )


@pytest.fixture(scope="module")
def password_db() -> Iterator[str]:
    with password_cluster() as url:
        yield url


def test_wrong_password_names_the_database_but_never_the_password(password_db: str) -> None:
    wrong = password_db.replace(PASSWORD, "not-the-password")
    done = run("migrate", env=corpsync_env(CORPSYNC_DATABASE_URL=wrong))
    assert done.returncode == 1
    line = the_line(done)
    assert 'password authentication failed for user "postgres"' in line
    assert "postgres@127.0.0.1" in line and "not-the-password" not in done.stderr
    assert run("migrate", env=corpsync_env(CORPSYNC_DATABASE_URL=password_db)).returncode == 0


def test_missing_database_or_role(pg_server_url: str) -> None:
    base = pg_server_url.rsplit("/", 1)[0]
    missing_db = run("migrate", env=corpsync_env(CORPSYNC_DATABASE_URL=base + "/no_such_db_17"))
    assert missing_db.returncode == 1
    assert 'database "no_such_db_17" does not exist (create it, or fix CORPSYNC_DATABASE_URL)' in the_line(missing_db)
    no_role = base.replace("postgres@", "no_such_role_17@", 1) + "/postgres"
    missing_role = run("migrate", env=corpsync_env(CORPSYNC_DATABASE_URL=no_role))
    assert missing_role.returncode == 1
    assert 'role "no_such_role_17" does not exist' in the_line(missing_role)


def test_port_in_use(tmp_path: Path, db_url: str) -> None:
    write_wecom_corp(tmp_path, "HQ", corp_id="wwhq000000000001")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(
            "serve", "--app-dir", str(tmp_path), "--port", str(port), env=corpsync_env(CORPSYNC_DATABASE_URL=db_url)
        )
    assert done.returncode == 1
    assert the_line(done) == (
        f"corpsync: cannot listen on 127.0.0.1:{port}: the port is in use by another process "
        "(choose another with --port or CORPSYNC_PORT)"
    )
    assert '"serve_started"' not in done.stderr  # never claimed to be serving


@pytest.mark.parametrize("where", ["flag", "environment"])
def test_port_out_of_range(tmp_path: Path, where: str) -> None:
    if where == "flag":
        done = run("serve", "--app-dir", str(tmp_path), "--port", "70000", env=corpsync_env())
        expected = "corpsync: configuration error: --port: expected 0 to 65535, got 70000"
    else:
        done = run("serve", "--app-dir", str(tmp_path), env=corpsync_env(CORPSYNC_PORT="70000"))
        expected = "corpsync: configuration error: environment: CORPSYNC_PORT: must be at most 65535"
    assert done.returncode == 2
    assert the_line(done) == expected


def test_export_events_before_any_migration(empty_db_url: str) -> None:
    done = run("export-events", env=corpsync_env(CORPSYNC_DATABASE_URL=empty_db_url))
    assert done.returncode == 1
    assert "has no corpsync schema yet" in the_line(done) and "corpsync migrate" in the_line(done)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"route": "wecom"\n', "line 1: not JSON (expected one event per line, as export-events writes)"),
        ("[1, 2]\n", "line 1: expected a JSON object, as export-events writes"),
        ('\n{"route": "wecom", "platform": "wecom", "stream": "HQ"}\n', "line 2: not an exported event (no plaintext)"),
        (b"\xff\xfe\n", "line 1: not JSON (expected one event per line, as export-events writes)"),
    ],
)
def test_malformed_replay_file(tmp_path: Path, db_url: str, content: str | bytes, says: str) -> None:
    path = tmp_path / "events.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    for url in ([], ["--url", "http://127.0.0.1:9"]):
        done = run("replay", str(path), *url, env=corpsync_env(CORPSYNC_DATABASE_URL=db_url))
        assert done.returncode == 2
        assert the_line(done) == f"corpsync: {path}, {says}"


def test_replay_to_a_url_fails_naming_why(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    line = {"route": "wecom", "platform": "wecom", "stream": "HQ", "corp": "HQ", "plaintext": "<xml/>", "body": "x"}
    path.write_text(json.dumps(line) + "\n" + json.dumps(line) + "\n")
    port = free_port()
    done = run("replay", str(path), "--url", f"http://127.0.0.1:{port}", env=corpsync_env())
    assert done.returncode == 1
    assert done.stdout == "read 2, sent 0, failed 2, skipped 0\n"
    assert the_line(done).startswith(f"corpsync: 2 of 2 sends failed: cannot connect to 127.0.0.1:{port}")


async def _fill_inbox(url: str, rows: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO inbox (stream, platform, route, dedupe_key, query, body, plaintext)"
            " SELECT 'HQ', 'wecom', 'wecom', 'k' || n, '{}', repeat('b', 500), repeat('p', 500)"
            " FROM generate_series(1, $1) n",
            rows,
        )
    finally:
        await conn.close()


def test_broken_pipe(db_url: str) -> None:
    asyncio.run(_fill_inbox(db_url, 3000))
    env = corpsync_env(CORPSYNC_DATABASE_URL=db_url)
    with subprocess.Popen(
        [sys.executable, "-m", "receiver", "export-events"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()  # a reader that takes one line and goes away (``| head -1``)
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        status = proc.wait(timeout=60)
    assert status == 141
    assert the_line(subprocess.CompletedProcess([], status, "", stderr)) == (
        "corpsync: output closed before it was all written (broken pipe)"
    )


def test_an_app_dir_with_no_corps_warns_and_says_what_it_expected(tmp_path: Path) -> None:
    done = run("check-config", "--app-dir", str(tmp_path), env=corpsync_env(CORPSYNC_LOG_FORMAT="text"))
    assert done.returncode == 0
    assert f"no corps in {tmp_path}: expected corps/<Name>/e.json and corps/<Name>/<Name>.json" in done.stderr


def _postgres_of(data_dir: Path) -> int | None:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return None
    return int(pid_file.read_text().split()[0])


@pytest.mark.timeout(240)  # its own waits: 90 s for the embedded server, 60 s for the call, 60 s to stop
@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"])
def test_sigterm_to_sync_stops_the_embedded_postgres_it_started(tmp_path: Path, signum: int, expected: int) -> None:
    """SIGTERM (exit 143) and Ctrl-C (130) in the middle of a sync both stop the embedded PostgreSQL it started."""
    with socket.socket() as silent:  # a platform API that accepts and never answers: the sync waits on it
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        api = f"http://127.0.0.1:{silent.getsockname()[1]}"
        write_wecom_corp(tmp_path, "HQ", corp_id="wwhq000000000001", api_base=api)
        env = corpsync_env()
        with subprocess.Popen(
            [sys.executable, "-m", "receiver", "sync", "HQ", "--app-dir", str(tmp_path)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) as proc:  # fmt: skip
            data_dir = tmp_path / ".corpsync" / "pgdata"
            deadline = time.monotonic() + 90
            while _postgres_of(data_dir) is None:
                assert time.monotonic() < deadline, "the embedded PostgreSQL did not start"
                time.sleep(0.2)
            silent.settimeout(60)
            conn, _ = silent.accept()  # the sync is under way: it called the platform
            postgres = _postgres_of(data_dir)
            assert postgres is not None
            try:
                proc.send_signal(signum)
                _, stderr = proc.communicate(timeout=60)  # read while waiting: a full pipe would block the child
            finally:
                conn.close()
    assert proc.returncode == expected, stderr[-2000:]
    assert _postgres_of(data_dir) is None
    assert not _alive(postgres)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a server daemonized under a container's init may stay one)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
