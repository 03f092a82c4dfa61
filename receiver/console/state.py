"""What the console shares across requests (``receiver.keys.CONSOLE``): its templates and session signer."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

import jinja2

from receiver.console.session import Sessions
from receiver.settings import Settings


@dataclass
class Console:
    """What the console shares across requests: templates and the session signer (``receiver.keys.CONSOLE``)."""

    sessions: Sessions
    templates: jinja2.Environment = field(default_factory=lambda: environment())
    clock: Callable[[], float] = time.time


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("receiver.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["part"] = lambda value: quote(str(value), safe="")
    env.filters["when"] = when
    env.filters["age"] = age
    return env


def when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def age(seconds: float | None) -> str:
    """A duration the way a person reads it: 42s, 7m, 3h 5m, 2d 4h."""
    if seconds is None:
        return "—"
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def console_sessions(settings: Settings) -> Sessions:
    """Sessions keyed by the admin token (shared by every process with it), or by a random secret of this process
    when none is set (the loopback console: a restart signs its pages' forms anew)."""
    token = settings.admin_token
    return Sessions(token.reveal().encode() if token is not None else secrets.token_bytes(32))
