"""Helpers shared by tests that run corpsync as a separate process."""

from __future__ import annotations

import os


def corpsync_env(**overrides: str) -> dict[str, str]:
    """The environment minus every CORPSYNC_* variable (so the host's settings never leak in), plus overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORPSYNC_")}
    env.update({"CORPSYNC_LOG_FORMAT": "json", "CORPSYNC_SCHEDULER": "false"})
    env.update(overrides)
    return env
