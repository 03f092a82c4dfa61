"""The deploy kit (deploy/): Dockerfile, compose file, systemd unit and its settings file, the LICENSE and the
CHANGELOG. No container runtime here: each file is checked for what the running service depends on (health
checks on /healthz and /readyz, settings corpsync reads, the command run), and the unit with systemd-analyze."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SETTINGS = set(re.findall(r'"(CORPSYNC_[A-Z_]+)"', (ROOT / "receiver" / "settings.py").read_text()))


def settings_named(text: str) -> set[str]:
    return set(re.findall(r"\b(CORPSYNC_[A-Z_]+)\b", text)) - {"CORPSYNC_APP_DIR_HOST"}  # compose's own variable


def test_the_image_serves_checks_liveness_on_healthz_and_reads_only_real_settings() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.MULTILINE)
    assert 'CMD ["corpsync", "serve"]' in text
    assert re.search(r"^USER corpsync$", text, re.MULTILINE)  # not root
    for copied in ("pyproject.toml", "README.md", "LICENSE", "handlers", "receiver"):
        assert re.search(rf"^COPY .*\b{re.escape(copied)}\b", text, re.MULTILINE), copied
    assert settings_named(text) <= SETTINGS


def test_compose_runs_postgres_and_corpsync_with_health_checks_wired() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    postgres, corpsync = text.split("\n  corpsync:\n")
    assert "image: postgres:15" in postgres and "pg_isready" in postgres
    assert "condition: service_healthy" in corpsync  # corpsync starts once PostgreSQL answers
    assert "/readyz" in corpsync.split("healthcheck:")[1]
    assert "dockerfile: deploy/Dockerfile" in corpsync
    assert "CORPSYNC_DATABASE_URL: postgresql://corpsync:" in corpsync
    assert settings_named(text) <= SETTINGS


def test_the_settings_file_example_names_only_real_settings() -> None:
    text = (DEPLOY / "corpsync.env.example").read_text()
    keys = {line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert keys <= SETTINGS and "CORPSYNC_DATABASE_URL" in keys


ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    text = (DEPLOY / "corpsync.service").read_text()
    assert "ExecStart=/opt/corpsync/.venv/bin/corpsync serve" in text and "RestartPreventExitStatus=2" in text
    corpsync = Path(sys.executable).with_name("corpsync")
    local = text.replace("/opt/corpsync/.venv/bin/corpsync", str(corpsync)).replace("/srv/corpsync", str(tmp_path))
    unit = tmp_path / "corpsync.service"
    unit.write_text(local)
    assert ANALYZE is not None
    done = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_license_file_is_the_licence_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text


def test_the_changelog_has_the_released_version_and_an_unreleased_section() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text and f"## [{version}]" in text
