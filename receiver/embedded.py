"""The embedded PostgreSQL used when no CORPSYNC_DATABASE_URL is set: a private server under <app dir>/.corpsync/."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("corpsync.embedded")


@dataclass
class EmbeddedPostgres:
    """A running private server; ``url`` connects over its Unix socket, ``stop()`` shuts it down."""

    data_dir: Path
    url: str
    _server: Any

    def stop(self) -> None:
        self._server.cleanup()
        log.info("embedded database stopped", extra={"action": "embedded_db_stopped"})


def start_embedded(app_dir: str | Path, *, keep_running: bool = False) -> EmbeddedPostgres:
    """Start (or join) the private server whose data lives in ``<app_dir>/.corpsync/pgdata``.

    ``keep_running`` leaves it up when this process exits (tests share one server across processes).
    """
    state = Path(app_dir).expanduser().resolve() / ".corpsync"
    state.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        from pgserver.postgres_server import get_server

        server = get_server(state / "pgdata", cleanup_mode=None if keep_running else "stop")
    url = server.get_uri()
    log.info("embedded database started", extra={"action": "embedded_db_started", "path": str(state)})
    return EmbeddedPostgres(data_dir=state / "pgdata", url=url, _server=server)
