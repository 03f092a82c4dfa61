"""`corpsync demo` from a fresh install: bounded run, and every directory ends equal to its upstream."""

from __future__ import annotations

import subprocess
import sys

import pytest

from receiver.settings import Settings
from tests.support.processes import corpsync_env


@pytest.mark.timeout(320)  # starts its own embedded PostgreSQL (initdb on a fresh install); the run allows 300 s
def test_demo_runs_its_story_and_ends_in_sync() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "receiver", "demo", "--port", "0", "--seconds", "6", "--members", "40", "--rate", "5"],
        env=corpsync_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for corp in ("HQ", "T1", "Sales", "Field"):
        assert f"{corp}: succeeded" in out
    assert out.count(": in sync") == 4
    assert "all callbacks applied" in out
    answers = [line.rsplit("→ ", 1)[1] for line in out.splitlines() if line[:2].isdigit() and "→ " in line]
    assert len(answers) >= 10
    statuses = [word for answer in answers if not answer.startswith("no callback") for word in answer.split()]
    assert statuses and set(statuses) == {"200", "ACK"}  # ACK: Field's events, over DingTalk Stream


def test_demo_takes_the_port_and_admin_token_serve_would(monkeypatch: pytest.MonkeyPatch) -> None:
    import receiver.cli
    import receiver.cli.demo

    seen: list[Settings] = []

    def demo(settings: Settings, *rest: object) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(receiver.cli, "configure_logging", lambda fmt: None)
    monkeypatch.setattr(receiver.cli.demo, "main", demo)
    monkeypatch.setenv("CORPSYNC_PORT", "18765")
    monkeypatch.setenv("CORPSYNC_ADMIN_TOKEN", "demo-token")
    assert receiver.cli.main(["demo", "--seconds", "1"]) == 0
    assert seen[-1].port == 18765 and seen[-1].admin_token is not None
    assert seen[-1].admin_token.reveal() == "demo-token"
    assert receiver.cli.main(["demo", "--port", "0"]) == 0
    assert seen[-1].port == 0
