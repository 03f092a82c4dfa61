"""What the commands share: the database they use and the app dir they load."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator

from handlers.config import AppConfig
from receiver.appdir import load_app_dir
from receiver.embedded import EmbeddedPostgres, start_embedded
from receiver.settings import Settings

Command = Callable[[argparse.Namespace, Settings], int]  # exit status


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
    import os

    return load_app_dir(settings.app_dir, os.environ)
