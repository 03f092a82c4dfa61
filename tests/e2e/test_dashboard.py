"""The Grafana dashboard (deploy/grafana/corpsync.json) against a real Prometheus scraping a running demo: every
panel's query parses and evaluates, every metric it names is one corpsync exports, and each returns data.

Prometheus is the Debian package ``prometheus``; .ci/run installs it. Outside CI the test skips when it is absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import corpsync_env

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "corpsync.json"
PROMETHEUS = shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a local URL the test built
        body = response.read()
    return json.loads(body) if body[:1] in (b"{", b"[") else body.decode()


def queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every target of every panel."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_dashboard_is_grafana_json_with_a_datasource_choice() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "corpsync" and dashboard["panels"]
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]


@pytest.fixture
def demo(db_url: str, tmp_path: Path) -> Iterator[int]:
    """``corpsync demo`` on the test's database, with the purge on a one-second retention (so every family has
    samples); yields its port. Should it end early, its last log lines say why."""
    port = free_port()
    env = corpsync_env(
        CORPSYNC_DATABASE_URL=db_url,
        CORPSYNC_RETAIN_PAYLOADS="1s",
        CORPSYNC_PURGE_INTERVAL="1",
    )
    log = tmp_path / "demo.log"
    with log.open("w") as stderr, subprocess.Popen(
        [sys.executable, "-m", "receiver", "demo", "--port", str(port), "--seconds", "90", "--members", "20",
         "--rate", "5"],
        env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("now changing"):
                break
        else:
            last = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise AssertionError(f"the demo ended (exit {proc.wait()}) before it changed the orgs; it logged:\n{last}")
        try:
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=60)


@pytest.fixture
def prometheus(demo: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the demo every second; yields its base URL."""
    if PROMETHEUS is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed (.ci/run installs the Debian package)")
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    work = tmp_path_factory.mktemp("prometheus")
    (work / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: corpsync\n    static_configs:\n      - targets: ['127.0.0.1:{demo}']\n"
    )
    port = free_port()
    with subprocess.Popen(
        [PROMETHEUS, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ) as proc:  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    scraped = get(url + "/api/v1/query?query=" + urllib.parse.quote("count_over_time(up[1m])"))
                    if scraped["data"]["result"] and float(scraped["data"]["result"][0]["value"][1]) >= 15:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "prometheus did not scrape the demo"
                time.sleep(1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def exported(port: int) -> set[str]:
    """The metric families the demo exports (its # HELP lines), with each histogram's series names."""
    text = get(f"http://127.0.0.1:{port}/metrics")
    names = set(re.findall(r"^# HELP (\S+)", text, re.MULTILINE))
    histograms = set(re.findall(r"^# TYPE (\S+) histogram", text, re.MULTILINE))
    return names | {h + suffix for h in histograms for suffix in ("_bucket", "_sum", "_count")}


# The demo makes no dead letters and its simulator answers every call at once (no retries): these panels are
# checked to parse, evaluate and name exported metrics only.
NO_DATA_IN_THE_DEMO = {"Dead letters (last hour)", "Platform API retries per second"}


def full_sync_through_the_api(port: int, prometheus: str) -> None:
    """A full sync run by the scheduler (as the API starts it), finished and scraped before and after."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/corps/HQ/sync", data=b"{}", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the demo on loopback
        assert response.status == 202
    query = prometheus + "/api/v1/query?query=" + urllib.parse.quote("count_over_time(corpsync_sync_runs_total[1m])")
    deadline = time.monotonic() + 60
    while True:
        found = get(query)["data"]["result"]
        if found and float(found[0]["value"][1]) >= 3:
            return
        assert time.monotonic() < deadline, "the sync's run never reached /metrics"
        time.sleep(1)


@pytest.mark.timeout(240)
def test_every_panel_query_evaluates_on_a_real_prometheus_and_returns_data(demo: int, prometheus: str) -> None:
    full_sync_through_the_api(demo, prometheus)
    families = exported(demo)
    empty = []
    for title, expr in queries():
        for name in re.findall(r"\bcorpsync_[a-z_]+\b", expr):
            assert name in families, f"{title}: {name} is not a metric corpsync exports"
        answer = get(prometheus + "/api/v1/query?query=" + urllib.parse.quote(expr))
        assert answer["status"] == "success", f"{title}: {answer}"
        if not answer["data"]["result"]:
            empty.append(title)
    assert set(empty) <= NO_DATA_IN_THE_DEMO, f"panels with no data: {empty}"
