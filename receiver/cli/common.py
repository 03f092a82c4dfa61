"""What the commands share: the database they use, the app dir they load, and the one-line failure."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Callable, Iterator

from handlers.config import AppConfig
from receiver.appdir import load_app_dir
from receiver.embedded import EmbeddedPostgres, start_embedded
from receiver.settings import Settings

Command = Callable[[argparse.Namespace, Settings], int]  # exit status

log = logging.getLogger("corpsync.cli")


class CommandFailed(Exception):
    """A command cannot go on for a reason the user can fix: ``main`` prints the message as one line and exits
    with ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The database URL to use: CORPSYNC_DATABASE_URL, or the embedded server (stopped on exit)."""
    if settings.database_url:
        yield settings.database_url
        return
    embedded: EmbeddedPostgres = start_embedded(settings.app_dir)
    try:
        yield embedded.url
    finally:
        embedded.stop()


def load_config(settings: Settings) -> AppConfig:
    """The app dir's config; an app dir with no corps and no suite auths is loaded, with a warning that says what
    was expected (a suite's tenants may still arrive through its callbacks)."""
    import os

    config = load_app_dir(settings.app_dir, os.environ)
    if not config.corps and not config.auths:
        log.warning(
            f"no corps in {settings.app_dir}: expected corps/<Name>/e.json and corps/<Name>/<Name>.json "
            "(or auths/<Suite>/ for a WeCom suite); see the README's app dir layout",
            extra={"action": "app_dir_empty", "app_dir": str(settings.app_dir)},
        )
    return config
