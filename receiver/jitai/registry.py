"""The Apps open in this process, newest last: the static ``QywxProxyCorp.getAgentId`` uses one of them."""

from __future__ import annotations

import threading
from typing import Protocol

from handlers.config import AppConfig
from receiver.jitai.errors import JitaiError


class OpenApp(Protocol):
    config: AppConfig

    def agent_id(self, corp_id: str, suite_id: str) -> str | None: ...


_apps: list[OpenApp] = []
_lock = threading.Lock()


def opened(app: OpenApp) -> None:
    with _lock:
        _apps.append(app)


def closed(app: OpenApp) -> None:
    with _lock:
        if app in _apps:
            _apps.remove(app)


def app_for_suite(suite_id: str) -> OpenApp:
    """The newest open App whose app dir has the suite ``suite_id`` (else the newest open App)."""
    with _lock:
        apps = list(reversed(_apps))
    if not apps:
        raise JitaiError("no App is open: open the app dir first, e.g. app = App('path/to/app')")
    knows = [a for a in apps if any(auth.suite_id == suite_id for auth in a.config.auths.values())]
    return (knows or apps)[0]
