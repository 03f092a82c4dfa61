"""Process settings from ``CORPSYNC_*`` environment variables; CLI flags override them."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from handlers.config import Secret
from handlers.errors import ConfigError
from handlers.feed.delivery import SCHEDULE
from handlers.worker.purge import Retention

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_SYNC_PARALLEL = 2
DEFAULT_DRIFT_DEBOUNCE = 60
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
MAX_PORT = 65535
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Settings:
    app_dir: Path = Path(".")
    database_url: str | None = None  # None: the embedded PostgreSQL under <app_dir>/.corpsync/
    host: str = "127.0.0.1"
    port: int = 8080
    admin_token: Secret | None = None
    public_url: str | None = None  # how the platforms reach us; used to print callback URLs
    callback_max_age: int | None = None  # opt-in timestamp freshness window, seconds
    max_body_bytes: int = DEFAULT_MAX_BODY
    sync_parallel: int = DEFAULT_SYNC_PARALLEL  # full syncs one process runs at once (receiver.runtime.pool_size)
    log_format: str = "auto"  # 'json', 'text' or 'auto' (text on a terminal)
    run_worker: bool = True
    run_scheduler: bool = True
    event_loop: str = "auto"  # 'uvloop', 'asyncio', or 'auto' (uvloop when it is installed)
    client_timeout: int = 10  # seconds a connection may idle, or take to send a request's headers or body
    run_feed: bool = True  # send the change feed's webhooks from this process
    feed_retry_schedule: tuple[float, ...] = SCHEDULE  # seconds before each retry of a webhook; the last repeats
    feed_disable_after: int = 5 * 24 * 3600  # seconds a subscriber may fail before it is disabled
    feed_retention: int = 7 * 24 * 3600  # seconds delivered outbox rows are kept
    feed_timeout: int = 15  # seconds one webhook POST may take
    retention: Retention = field(default_factory=Retention)  # how long inbox, change_log and sync_runs rows stay
    drift_debounce: int = DEFAULT_DRIFT_DEBOUNCE  # seconds from a corp's last sync start before a drift sync may start

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def with_overrides(self, **overrides: Any) -> Settings:
        """Apply CLI flags; a None value keeps the setting as it is."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _int(
    environ: Mapping[str, str], name: str, default: int | None, *, minimum: int = 0, maximum: int | None = None
) -> int | None:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment: {name}: expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"environment: {name}: must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"environment: {name}: must be at most {maximum}")
    return value


def _duration(environ: Mapping[str, str], name: str, default: timedelta | None) -> timedelta | None:
    """A retention period: a whole number with a unit (``90s``, ``15m``, ``12h``, ``7d``; none: seconds), or
    ``never`` (keep forever)."""
    raw = (environ.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw == "never":
        return None
    match = _DURATION.match(raw)
    if match is None or int(match[1]) == 0:
        raise ConfigError(f"environment: {name}: expected a period such as 90s, 15m, 12h or 7d, or never; got {raw!r}")
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


def _retention(env: Mapping[str, str]) -> Retention:
    d = Retention()
    return Retention(
        payloads=_duration(env, "CORPSYNC_RETAIN_PAYLOADS", d.payloads),
        inbox=_duration(env, "CORPSYNC_RETAIN_INBOX", d.inbox),
        change_log=_duration(env, "CORPSYNC_RETAIN_CHANGE_LOG", d.change_log),
        sync_runs=_duration(env, "CORPSYNC_RETAIN_SYNC_RUNS", d.sync_runs),
        interval=float(_int(env, "CORPSYNC_PURGE_INTERVAL", int(d.interval), minimum=0) or 0),
    )


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"environment: {name}: expected true or false, got {raw!r}")


def _choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    """``raw``, the value of environment variable ``name``, if it is one of ``allowed``; else ConfigError."""
    if raw not in allowed:
        raise ConfigError(f"environment: {name}: expected {', '.join(allowed[:-1])} or {allowed[-1]}, got {raw!r}")
    return raw


def _seconds_list(environ: Mapping[str, str], name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        values = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(f"environment: {name}: expected seconds separated by commas, got {raw!r}") from None
    if not 1 <= len(values) <= 32 or any(not 0 <= v <= 7 * 24 * 3600 for v in values):
        raise ConfigError(f"environment: {name}: 1 to 32 delays, each from 0 to 604800 seconds")
    return values


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    token = env.get("CORPSYNC_ADMIN_TOKEN") or None
    debounce = _int(env, "CORPSYNC_DRIFT_DEBOUNCE", DEFAULT_DRIFT_DEBOUNCE, minimum=0, maximum=86400)  # 0: none
    return Settings(
        app_dir=Path(env.get("CORPSYNC_APP_DIR") or "."),
        database_url=env.get("CORPSYNC_DATABASE_URL") or None,
        host=env.get("CORPSYNC_HOST") or "127.0.0.1",
        port=_int(env, "CORPSYNC_PORT", 8080, minimum=0, maximum=MAX_PORT) or 0,
        admin_token=Secret(token) if token else None,
        public_url=(env.get("CORPSYNC_PUBLIC_URL") or "").rstrip("/") or None,
        callback_max_age=_int(env, "CORPSYNC_CALLBACK_MAX_AGE", None, minimum=1),
        max_body_bytes=_int(env, "CORPSYNC_MAX_BODY_BYTES", DEFAULT_MAX_BODY, minimum=1024) or DEFAULT_MAX_BODY,
        sync_parallel=_int(env, "CORPSYNC_SYNC_PARALLEL", DEFAULT_SYNC_PARALLEL, minimum=1, maximum=32)
        or DEFAULT_SYNC_PARALLEL,
        log_format=_choice("CORPSYNC_LOG_FORMAT", env.get("CORPSYNC_LOG_FORMAT", "auto"), ("auto", "json", "text")),
        run_worker=_flag(env, "CORPSYNC_WORKER", True),
        run_scheduler=_flag(env, "CORPSYNC_SCHEDULER", True),
        event_loop=_choice("CORPSYNC_EVENT_LOOP", env.get("CORPSYNC_EVENT_LOOP") or "auto", EVENT_LOOPS),
        client_timeout=_int(env, "CORPSYNC_CLIENT_TIMEOUT", 10, minimum=1) or 10,
        run_feed=_flag(env, "CORPSYNC_FEED", True),
        feed_retry_schedule=_seconds_list(env, "CORPSYNC_FEED_RETRY_SCHEDULE", SCHEDULE),
        feed_disable_after=_int(env, "CORPSYNC_FEED_DISABLE_AFTER", 5 * 24 * 3600, minimum=1) or 1,
        feed_retention=_int(env, "CORPSYNC_FEED_RETENTION", 7 * 24 * 3600, minimum=0) or 0,
        feed_timeout=_int(env, "CORPSYNC_FEED_TIMEOUT", 15, minimum=1, maximum=300) or 15,
        retention=_retention(env),
        drift_debounce=DEFAULT_DRIFT_DEBOUNCE if debounce is None else debounce,
    )
