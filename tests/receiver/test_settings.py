"""Settings that size the process: how many full syncs run at once, and the pool that leaves room for the rest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from handlers.errors import ConfigError
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.keys import POOL, SCHEDULER
from receiver.runtime import pool_size
from receiver.settings import Settings, settings_from_env


def test_the_sync_parallelism_is_read_and_checked() -> None:
    assert settings_from_env({}).sync_parallel == 2
    assert settings_from_env({"CORPSYNC_SYNC_PARALLEL": "8"}).sync_parallel == 8
    for bad in ("0", "33", "many"):
        with pytest.raises(ConfigError, match="CORPSYNC_SYNC_PARALLEL"):
            settings_from_env({"CORPSYNC_SYNC_PARALLEL": bad})


def test_the_pool_keeps_connections_for_the_intake_and_the_worker_beside_the_syncs() -> None:
    assert pool_size(2) == 20
    assert pool_size(4) == 2 + 8 + 2 * 4 + 2 + 3  # intake, worker drains, syncs, API and probes, change feed
    assert pool_size(10) == 2 + 8 + 2 * 10 + 2 + 3


async def test_serve_runs_as_many_syncs_as_set_on_a_pool_sized_for_them(
    aiohttp_client: Callable[..., Any], tmp_path: Path, db_url: str
) -> None:
    settings = Settings(app_dir=tmp_path, run_worker=False, run_scheduler=False, sync_parallel=9)
    client = await aiohttp_client(create_app(settings, load_app_dir(tmp_path, {}), db_url))
    assert client.app[SCHEDULER].settings.max_parallel == 9
    assert client.app[POOL].get_max_size() == pool_size(9) == 33


def test_the_drift_debounce_is_read_and_checked() -> None:
    assert settings_from_env({}).drift_debounce == 60
    assert settings_from_env({"CORPSYNC_DRIFT_DEBOUNCE": "0"}).drift_debounce == 0
    assert settings_from_env({"CORPSYNC_DRIFT_DEBOUNCE": "300"}).drift_debounce == 300
    for bad in ("-1", "86401", "soon"):
        with pytest.raises(ConfigError, match="CORPSYNC_DRIFT_DEBOUNCE"):
            settings_from_env({"CORPSYNC_DRIFT_DEBOUNCE": bad})


async def test_serve_debounces_drift_syncs_as_set(
    aiohttp_client: Callable[..., Any], tmp_path: Path, db_url: str
) -> None:
    settings = Settings(app_dir=tmp_path, run_worker=False, run_scheduler=False, drift_debounce=5)
    client = await aiohttp_client(create_app(settings, load_app_dir(tmp_path, {}), db_url))
    assert client.app[SCHEDULER].settings.debounce_seconds == 5
