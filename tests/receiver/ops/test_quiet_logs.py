"""Quiet by default: the embedded database's narration is DEBUG, a failure repeating unchanged is a WARNING once."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from receiver.ops.logs import EmbeddedChatter, RepeatedFailures, configure_logging


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Caught(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def caught() -> Iterator[Caught]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("json")
    handler = Caught()
    root.handlers[:] = [handler]
    yield handler
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_embedded_servers_narration_is_debug_its_warnings_stay(caught: Caught) -> None:
    embedded = logging.getLogger("pgserver")
    embedded.info("Running commandline: initdb ...")
    embedded.warning("something is wrong")
    assert [(r.levelname, r.getMessage()) for r in caught.records] == [("WARNING", "something is wrong")]
    logging.getLogger().setLevel(logging.DEBUG)
    embedded.info("Running commandline: pg_ctl ...")
    assert caught.records[-1].levelname == "DEBUG"
    assert any(isinstance(f, EmbeddedChatter) for f in embedded.filters)


def test_a_failure_repeating_unchanged_is_a_warning_once_then_info_with_a_count() -> None:
    clock = Clock()
    quiet = RepeatedFailures(window=3600, clock=clock)

    def record(corp: str, error: str = "network") -> logging.LogRecord:
        made = logging.LogRecord("corpsync.fullsync", logging.WARNING, "", 0, "full sync failed", None, None)
        made.action, made.corp, made.error = "full_sync_failed", corp, error
        assert quiet.filter(made)
        return made

    levels = [record("HQ").levelname for _ in range(3)]
    assert levels == ["WARNING", "INFO", "INFO"]
    again = record("HQ")
    assert getattr(again, "repeated", None) == 4
    assert record("Sales").levelname == "WARNING"  # another corp
    assert record("HQ", "errcode=40001").levelname == "WARNING"  # another failure
    clock.now += 3600
    assert record("HQ").levelname == "WARNING"  # a new window says it again
    other = logging.LogRecord("corpsync.fullsync", logging.WARNING, "", 0, "x", None, None)
    other.action = "heartbeat_failed"
    assert quiet.filter(other) and other.levelname == "WARNING"
