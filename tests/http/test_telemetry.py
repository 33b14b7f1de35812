"""/v1/agent/metrics (Consul's JSON and Prometheus text), /v1/agent/monitor
and --log-json, against real agents."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import dns.message
import dns.query
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from waypost.testing import AgentProcess, run_agent, wait_until


def scrape(http: httpx.Client) -> dict[str, list[Sample]]:
    """Prometheus samples by metric family name."""
    response = http.get("/v1/agent/metrics", params={"format": "prometheus"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f.samples for f in text_string_to_metric_families(response.text)}


def value(families: dict[str, list[Sample]], sample: str, **labels: str) -> float:
    family = sample.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    family = family.removesuffix("_bucket")
    return sum(
        s.value
        for s in families.get(family, [])
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture
def fresh(agent: AgentProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=agent.url, timeout=30) as client:
        yield client


def test_metrics_json_has_consuls_shape(fresh: httpx.Client) -> None:
    fresh.get("/v1/agent/self").raise_for_status()
    body = fresh.get("/v1/agent/metrics").json()
    assert set(body) == {"Timestamp", "Gauges", "Points", "Counters", "Samples"}
    assert body["Timestamp"].endswith("+0000 UTC")
    (self_timer,) = [
        s
        for s in body["Samples"]
        if s["Name"] == "consul.api.http"
        and s["Labels"] == {"method": "GET", "path": "v1_agent_self"}
    ]
    assert set(self_timer) == {
        "Name", "Count", "Rate", "Sum", "Min", "Max", "Mean", "Stddev", "Labels"
    }  # fmt: skip
    assert self_timer["Count"] == 1
    assert 0 < self_timer["Min"] <= self_timer["Mean"] <= self_timer["Max"]
    gauges = {g["Name"]: g["Value"] for g in body["Gauges"] if not g["Labels"]}
    assert gauges["consul.state.nodes"] == 1
    assert gauges["consul.state.service_instances"] == 1  # the "consul" service
    fresh.get("/v1/agent/self").raise_for_status()
    again = fresh.get("/v1/agent/metrics").json()["Samples"]
    counts = [
        s["Count"]
        for s in again
        if s["Name"] == "consul.api.http" and s["Labels"]["path"] == "v1_agent_self"
    ]
    assert counts == [2]


def test_prometheus_counts_requests_catalog_health_and_dns(
    agent: AgentProcess, fresh: httpx.Client
) -> None:
    for i in range(3):
        fresh.put(
            "/v1/agent/service/register",
            json={
                "Name": "api",
                "ID": f"api{i}",
                "Check": {"TTL": "60s", "Status": "passing"},
            },
        ).raise_for_status()
    for _ in range(4):
        fresh.get("/v1/health/service/api?passing").raise_for_status()
    fresh.put("/v1/agent/check/fail/service:api2").raise_for_status()
    fresh.put("/v1/agent/check/pass/service:api1").raise_for_status()
    host, port = agent.dns_address
    dns.query.udp(
        dns.message.make_query("nope.service.consul", "A"), host, port=port, timeout=5
    )
    dns.query.udp(
        dns.message.make_query("api.service.consul", "A"), host, port=port, timeout=5
    )
    families = scrape(fresh)
    assert (
        value(
            families,
            "waypost_http_request_duration_seconds_count",
            method="GET",
            path="v1_health_service_",
        )
        == 4
    )
    assert (
        value(
            families,
            "waypost_http_request_duration_seconds_bucket",
            le="+Inf",
            path="v1_health_service_",
        )
        == 4
    )
    assert value(families, "consul_state_service_instances") == 4
    assert value(families, "consul_state_services") == 2
    assert value(families, "waypost_service_instances", status="passing") == 3
    assert value(families, "waypost_service_instances", status="critical") == 1
    assert value(families, "waypost_checks", status="critical") == 1
    assert value(families, "waypost_ttl_heartbeats_total") == 2
    assert (
        value(families, "waypost_dns_queries_total", result="nxdomain", protocol="udp")
        == 1
    )
    assert (
        value(families, "waypost_dns_queries_total", result="noerror", protocol="udp")
        == 1
    )
    assert value(families, "waypost_dns_query_duration_seconds_count") == 2
    assert value(families, "waypost_self_preservation_engaged") == 0
    assert value(families, "process_resident_memory_bytes") > 0


def test_blocking_queries_waiting_are_counted(
    agent: AgentProcess, fresh: httpx.Client
) -> None:
    index = fresh.get("/v1/catalog/services").headers["X-Consul-Index"]

    def block() -> None:
        with httpx.Client(base_url=agent.url, timeout=30) as c:
            c.get(f"/v1/health/service/waiting?index={index}&wait=20s")

    waiter = threading.Thread(target=block)
    waiter.start()
    try:
        assert wait_until(
            lambda: value(scrape(fresh), "consul_rpc_queries_blocking") == 1
        )
    finally:
        fresh.put(
            "/v1/agent/service/register", json={"Name": "waiting"}
        ).raise_for_status()
        waiter.join(10)
    assert value(scrape(fresh), "consul_rpc_queries_blocking") == 0


def test_durable_commits_and_check_runs_are_measured() -> None:
    with run_agent(dev=False) as agent, httpx.Client(base_url=agent.url) as http:
        http.put(
            "/v1/agent/service/register",
            json={
                "Name": "probed",
                "Check": {"TCP": f"127.0.0.1:{agent.port}", "Interval": "100ms"},
            },
        ).raise_for_status()
        families = scrape(http)
        assert value(families, "waypost_store_commit_duration_seconds_count") >= 1
        assert value(families, "waypost_store_commit_batch_size_sum") >= 1

        def tcp_runs() -> float:
            return value(
                scrape(http), "waypost_check_runs_total", type="tcp", status="passing"
            )

        assert wait_until(lambda: tcp_runs() >= 2, timeout=10)


def test_monitor_streams_logs_at_the_asked_level(
    agent: AgentProcess, fresh: httpx.Client
) -> None:
    bad = fresh.get("/v1/agent/monitor", params={"loglevel": "verbose"})
    assert (bad.status_code, bad.text) == (400, "Unknown log level: verbose")
    lines: list[str] = []
    opened = threading.Event()

    def follow() -> None:
        with httpx.stream(
            "GET", agent.url + "/v1/agent/monitor?loglevel=debug", timeout=30
        ) as stream:
            assert stream.status_code == 200
            opened.set()
            for line in stream.iter_lines():
                lines.append(line)
                if "/v1/catalog/datacenters" in line:
                    return

    reader = threading.Thread(target=follow)
    reader.start()
    assert opened.wait(10)
    # The agent logs at info; the monitor still gets the debug lines.
    assert wait_until(
        lambda: (
            fresh.get("/v1/catalog/datacenters").status_code == 200
            and any("/v1/catalog/datacenters" in line for line in lines)
        ),
        timeout=10,
    )
    reader.join(10)
    finished = "[DEBUG] waypost.http: Request finished: method=GET"
    assert any(finished in line for line in lines)
    assert "[DEBUG]" not in agent.log


def test_a_monitor_does_not_hold_up_shutdown() -> None:
    with run_agent() as agent:
        opened, ended = threading.Event(), threading.Event()
        lines: list[str] = []

        def follow() -> None:
            url = agent.url + "/v1/agent/monitor"
            with httpx.stream("GET", url, timeout=30) as stream:
                opened.set()  # the head came: the agent holds the stream
                lines.extend(stream.iter_lines())  # to the stream's last chunk
            ended.set()

        reader = threading.Thread(target=follow)
        reader.start()
        assert opened.wait(10)
        started = time.monotonic()
        assert agent.stop() == 0
        stopped = time.monotonic() - started
        assert ended.wait(5), agent.log
        reader.join(5)
        assert "shutting down" in "".join(lines)  # streamed to the end
        assert stopped < 4, agent.log  # not held for the 5 s grace


def test_log_json_writes_one_object_per_line() -> None:
    with run_agent(extra_args=["--log-json"]) as agent:
        httpx.put(agent.url + "/v1/agent/check/pass/unknown")
    lines = [line for line in agent.log.splitlines() if line.strip()]
    assert len(lines) >= 3  # started, shutting down, stopped
    for line in lines:
        record = json.loads(line)
        assert {"@timestamp", "@level", "@message", "@module"} <= set(record)
        assert record["@timestamp"].endswith("Z")
    # Start-up lines (configuration files, then the listeners) are info.
    listening = [
        json.loads(line)
        for line in lines
        if "listening on http://127.0.0.1:" in json.loads(line)["@message"]
    ]
    assert [record["@level"] for record in listening] == ["info"]
