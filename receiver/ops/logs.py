"""Structured logs: one line per event with a stable ``action``; JSON by default, key=value on a terminal."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp.http_exceptions import HttpProcessingError

# Attributes every LogRecord has; anything else came from ``extra=`` and is a field of the event.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        event.update(_fields(record))
        if record.exc_info and record.exc_info[0] is not None:
            event["error"] = record.exc_info[0].__name__
        return orjson.dumps(event, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{stamp} {record.levelname.lower():7} {record.getMessage()}"
        if record.exc_info and record.exc_info[0] is not None:
            fields += f" error={record.exc_info[0].__name__}"
        return f"{line}  {fields}" if fields else line


def configure_logging(fmt: str = "auto", level: int = logging.INFO) -> None:
    """Send corpsync's logs to stderr; exception tracebacks are not printed (they may hold payloads)."""
    use_text = fmt == "text" or (fmt == "auto" and sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if use_text else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    embedded = logging.getLogger("pgserver")
    if not any(isinstance(f, EmbeddedChatter) for f in embedded.filters):
        embedded.addFilter(EmbeddedChatter())
    for name in ("corpsync.fullsync", "corpsync.clients", "corpsync.worker", "corpsync.triggers"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatedFailures) for f in logger.filters):
            logger.addFilter(RepeatedFailures())
    quiet_rejections()


class EmbeddedChatter(logging.Filter):
    """The embedded PostgreSQL's library narrates every command it runs at INFO (two thirds of serve's lines on a
    first start): those lines become DEBUG, shown only when the root logger is at DEBUG. Its warnings stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


# Failures that repeat while nothing changes (a corp whose platform cannot be reached fails every sync the same
# way), with the fields that say it is the same failure again.
REPEATING = {
    "full_sync_failed": ("corp", "error"),
    "full_sync_crashed": ("corp", "error"),
    "upstream_failed": ("corp", "api", "errcode", "http_status"),
    "corp_check_failed": ("corp", "error"),
}


class RepeatedFailures(logging.Filter):
    """The first of a failure is a WARNING; the same failure again within ``window`` seconds is an INFO line with
    ``repeated``: how many times it was seen in the window. Nothing is dropped, only the level changes."""

    def __init__(self, window: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window, self._clock = window, clock
        self._seen: dict[tuple[Any, ...], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        action = getattr(record, "action", None)
        fields = REPEATING.get(action) if isinstance(action, str) else None
        if fields is None or record.levelno != logging.WARNING:
            return True
        key = (action, *(str(getattr(record, name, None)) for name in fields))
        now = self._clock()
        first, count = self._seen.get(key, (now, 0))
        if now - first >= self.window:
            first, count = now, 0
        if len(self._seen) > 10_000:  # bounded, whatever the errors say
            self._seen.clear()
        self._seen[key] = (first, count + 1)
        if count:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.repeated = count + 1
        return True


# corpsync's own lines about refused requests, bounded like aiohttp's.
REJECTIONS = frozenset({"callback_rejected"})


class RequestRejections(logging.Filter):
    """aiohttp logs every malformed request, and every client gone mid-request, as an ERROR naming the bytes it
    could not parse: junk traffic would flood the log with the sender's text. Those are the client's doing, so
    they become INFO lines with the error's type only (action ``request_rejected``), at most ``burst`` of them
    per ``window`` seconds; the first line of the next window says how many were left out. corpsync's own
    rejection lines (``REJECTIONS``) share the bound. Anything else passes untouched."""

    def __init__(self, burst: int = 20, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.window, self._clock = burst, window, clock
        self._started = -window
        self._count = 0
        self._left_out = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        junk = isinstance(exc, HttpProcessingError | ConnectionError)
        if not junk and getattr(record, "action", None) not in REJECTIONS:
            return True
        now = self._clock()
        left_out = 0
        if now - self._started >= self.window:
            self._started, self._count, left_out, self._left_out = now, 0, self._left_out, 0
        self._count += 1
        if self._count > self.burst:
            self._left_out += 1
            return False
        if junk:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args, record.exc_info, record.exc_text = "request rejected", (), None, None
            record.action, record.error = "request_rejected", type(exc).__name__
        if left_out:
            record.left_out = left_out
        return True


def quiet_rejections() -> None:
    """Put one ``RequestRejections`` on aiohttp's server logger and on the callbacks' (again: nothing)."""
    for name in ("aiohttp.server", "corpsync.callbacks"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RequestRejections) for f in logger.filters):
            logger.addFilter(RequestRejections())
