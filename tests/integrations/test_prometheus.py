"""Prometheus scraping the agent, and VictoriaMetrics discovering targets
through `consul_sd_configs` pointed at the agent (Debian's Prometheus is built
without Consul discovery; VictoriaMetrics reads the same config and sets the
same `__meta_consul_*` labels). Both are Debian packages, started here on
loopback with temporary storage; scripts/test installs them."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from waypost.testing import free_port, run_agent, wait_until

#: Start-up and first scrape on a loaded 2-core machine.
START_TIMEOUT = 60.0

PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: waypost
    metrics_path: /v1/agent/metrics
    params:
      format: [prometheus]
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""

DISCOVERY_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: services
    consul_sd_configs:
      - server: "127.0.0.1:{port}"
        services: [sdweb]
    relabel_configs:
      # Only passing instances are targets (README "Metrics").
      - source_labels: [__meta_consul_health]
        regex: passing
        action: keep
      - source_labels: [__meta_consul_tags]
        target_label: tags
      - source_labels: [__meta_consul_service_metadata_version]
        target_label: version
      - source_labels: [__meta_consul_service_id]
        target_label: service_id
"""


@contextlib.contextmanager
def server(command: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def api_get(url: str, **params: str) -> Any:
    try:
        response = httpx.get(url, params=params, timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return response.json()["data"]


@pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus is not installed (scripts/test installs Debian's)",
)
def test_prometheus_scrapes_the_agent(tmp_path: Path) -> None:
    with run_agent() as agent, httpx.Client(base_url=agent.url) as http:
        for i in range(3):
            http.put(
                "/v1/agent/service/register", json={"Name": "scraped", "ID": f"s{i}"}
            ).raise_for_status()
        config = tmp_path / "prometheus.yml"
        config.write_text(PROMETHEUS_CONFIG.format(port=agent.port))
        port = free_port()
        base = f"http://127.0.0.1:{port}/api/v1"
        command = [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        with server(command) as prometheus:

            def up() -> bool:
                assert prometheus.poll() is None, "prometheus exited"
                targets = api_get(base + "/targets")
                return bool(targets) and [
                    (t["health"], t["lastError"]) for t in targets["activeTargets"]
                ] == [("up", "")]

            assert wait_until(up, timeout=START_TIMEOUT, interval=0.2)

            def instances() -> list[Any]:
                found = api_get(base + "/query", query="consul_state_service_instances")
                return found["result"] if found else []

            (sample,) = wait_until(instances, timeout=START_TIMEOUT, interval=0.2)
            assert float(sample["value"][1]) == 4  # three plus "consul"
            assert sample["metric"]["job"] == "waypost"
            # Its own scrapes are counted (from the second one on).
            scrapes = (
                'waypost_http_request_duration_seconds_count{path="v1_agent_metrics"}'
            )

            def counted() -> list[Any]:
                found = api_get(base + "/query", query=scrapes)
                return found["result"] if found else []

            (counter,) = wait_until(counted, timeout=START_TIMEOUT, interval=0.2)
            assert float(counter["value"][1]) >= 1


@pytest.mark.skipif(
    shutil.which("victoria-metrics") is None,
    reason="victoria-metrics is not installed (scripts/test installs Debian's)",
)
def test_consul_sd_discovers_passing_instances(tmp_path: Path) -> None:
    with run_agent() as agent, httpx.Client(base_url=agent.url) as http:
        for i in range(3):
            register(http, i)
        config = tmp_path / "scrape.yml"
        config.write_text(DISCOVERY_CONFIG.format(port=agent.port))
        port = free_port()
        command = [
            "victoria-metrics",
            f"-promscrape.config={config}",
            f"-storageDataPath={tmp_path / 'data'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-promscrape.consulSDCheckInterval=1s",
            "-loggerLevel=ERROR",
        ]
        with server(command) as vm:

            def targets() -> dict[str, dict[str, str]]:
                assert vm.poll() is None, "victoria-metrics exited"
                found = api_get(f"http://127.0.0.1:{port}/api/v1/targets")
                if not found:
                    return {}
                return {
                    t["labels"]["service_id"]: t["labels"]
                    for t in found["activeTargets"]
                }

            assert wait_until(
                lambda: set(targets()) == {"sd0", "sd1", "sd2"},
                timeout=START_TIMEOUT,
                interval=0.2,
            )
            labels = targets()["sd1"]
            assert labels["tags"] == ",blue,v1,"
            assert labels["version"] == "1.2.3"
            assert labels["instance"] == "127.0.0.1:9101"
            # One turns critical: it is no longer a target within a refresh
            # (discovery runs blocking queries, so this is near-immediate).
            http.put("/v1/agent/check/fail/sd1").raise_for_status()
            assert wait_until(
                lambda: set(targets()) == {"sd0", "sd2"}, timeout=10, interval=0.2
            )
            http.put("/v1/agent/check/pass/sd1").raise_for_status()
            assert wait_until(
                lambda: set(targets()) == {"sd0", "sd1", "sd2"},
                timeout=10,
                interval=0.2,
            )


def register(http: httpx.Client, i: int) -> None:
    http.put(
        "/v1/agent/service/register",
        json={
            "Name": "sdweb",
            "ID": f"sd{i}",
            "Address": "127.0.0.1",
            "Port": 9100 + i,
            "Tags": ["blue", "v1"],
            "Meta": {"version": "1.2.3"},
            "Check": {"CheckID": f"sd{i}", "TTL": "60s", "Status": "passing"},
        },
    ).raise_for_status()
