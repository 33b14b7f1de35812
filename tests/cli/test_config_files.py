"""`--config-file` / `--config-dir` with Consul's JSON and HCL, and
`PUT /v1/agent/reload` / SIGHUP, against real agents."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from waypost.testing import run_agent

HCL = """
datacenter = "dc-files"
node_name = "the-cli-wins"
not_a_consul_key = true
ports { dns = -1 }
service {
  name = "web"
  port = 80
  tags = ["v1"]
  check {
    id = "web-ttl"
    ttl = "30s"
    deregister_critical_service_after = "90m"
  }
}
service {
  name = "db"
  id = "db-1"
  checks = [
    { ttl = "10s" },
    { tcp = "127.0.0.1:1", interval = "5s", timeout = "1s" },
  ]
}
check {
  id = "disk"
  name = "Disk"
  ttl = "1m"
}
"""

JSON = {
    "services": [
        {
            "name": "cache",
            "port": 6379,
            "meta": {"role": "primary"},
            "check": {"http": "http://127.0.0.1:1/health", "interval": "10s"},
        }
    ]
}


def _services(http: httpx.Client) -> dict[str, dict[str, object]]:
    return http.get("/v1/agent/services").json()  # type: ignore[no-any-return]


def _checks(http: httpx.Client) -> dict[str, dict[str, object]]:
    return http.get("/v1/agent/checks").json()  # type: ignore[no-any-return]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    hcl = tmp_path / "web.hcl"
    hcl.write_text(HCL)
    folder = tmp_path / "conf.d"
    folder.mkdir()
    (folder / "cache.json").write_text(json.dumps(JSON))
    (folder / "README.txt").write_text("not a config file: skipped")
    return hcl, folder


def test_services_and_checks_from_json_and_hcl(files: tuple[Path, Path]) -> None:
    hcl, folder = files
    args = ["--config-file", str(hcl), "-config-dir", str(folder)]
    with (
        run_agent(node="cli-node", extra_args=args) as agent,
        httpx.Client(base_url=agent.url, timeout=30) as http,
    ):
        services = _services(http)
        assert set(services) == {"web", "db-1", "cache"}
        assert services["web"]["Tags"] == ["v1"]
        assert services["web"]["Port"] == 80
        assert services["cache"]["Meta"] == {"role": "primary"}
        checks = _checks(http)
        assert set(checks) == {
            "web-ttl",
            "service:db-1:1",
            "service:db-1:2",
            "service:cache",
            "disk",
        }
        assert checks["web-ttl"]["ServiceID"] == "web"
        assert checks["service:db-1:2"]["Type"] == "tcp"
        assert checks["service:cache"]["Type"] == "http"
        assert checks["disk"]["Name"] == "Disk"
        assert checks["disk"]["ServiceID"] == ""
        self_ = http.get("/v1/agent/self").json()
        # A file's setting applies where no flag was given; a flag wins.
        assert self_["Config"]["Datacenter"] == "dc-files"
        assert self_["Config"]["NodeName"] == "cli-node"
        assert any("not_a_consul_key" in line for line in agent.log_lines)


def test_reload_adds_changes_and_removes_file_services(
    files: tuple[Path, Path],
) -> None:
    hcl, folder = files
    args = ["--config-file", str(hcl), "--config-dir", str(folder)]
    with (
        run_agent(extra_args=args) as agent,
        httpx.Client(base_url=agent.url, timeout=30) as http,
    ):
        # Registered through the API: not the files' to remove.
        http.put(
            "/v1/agent/service/register", json={"Name": "api-made", "Port": 1}
        ).raise_for_status()
        http.put("/v1/agent/check/pass/web-ttl").raise_for_status()
        hcl.write_text(
            HCL.replace('tags = ["v1"]', 'tags = ["v2"]').replace('"db-1"', '"db-2"')
        )
        (folder / "cache.json").unlink()
        (folder / "queue.json").write_text(
            json.dumps({"service": {"name": "queue", "port": 5672}})
        )
        answer = http.put("/v1/agent/reload")
        assert answer.status_code == 200, answer.text
        services = _services(http)
        assert set(services) == {"web", "db-2", "queue", "api-made"}
        assert services["web"]["Tags"] == ["v2"]
        checks = _checks(http)
        assert "service:cache" not in checks
        assert "service:db-1:1" not in checks
        # A re-registered check keeps its status.
        assert checks["web-ttl"]["Status"] == "passing"


def test_a_bad_file_is_refused_and_the_old_configuration_stays(
    files: tuple[Path, Path],
) -> None:
    hcl, folder = files
    args = ["--config-file", str(hcl), "--config-dir", str(folder)]
    with (
        run_agent(extra_args=args) as agent,
        httpx.Client(base_url=agent.url, timeout=30) as http,
    ):
        before = _services(http)
        index = http.get("/v1/catalog/services").headers["X-Consul-Index"]
        bad_cases = {
            "not HCL": "service { name = ",
            "no name": 'service { port = 80 }\nservice { name = "x" }',
            "bad check": 'service {\n name = "x"\n check { ttl = "ten" }\n}',
            "unknown field": 'service {\n name = "x"\n colour = "red"\n}',
        }
        for case, text in bad_cases.items():
            hcl.write_text(text)
            answer = http.put("/v1/agent/reload")
            assert answer.status_code == 400, (case, answer.text)
            assert str(hcl) in answer.text, case
            assert _services(http) == before, case
        # Nothing was written either.
        assert http.get("/v1/catalog/services").headers["X-Consul-Index"] == index
        (folder / "broken.json").write_text("{")
        hcl.write_text(HCL)
        answer = http.put("/v1/agent/reload")
        assert answer.status_code == 400
        assert "broken.json" in answer.text
        (folder / "broken.json").unlink()
        assert http.put("/v1/agent/reload").status_code == 200


def test_sighup_reloads(files: tuple[Path, Path]) -> None:
    hcl, _folder = files
    with (
        run_agent(extra_args=["--config-file", str(hcl)]) as agent,
        httpx.Client(base_url=agent.url, timeout=30) as http,
    ):
        assert "web" in _services(http)
        hcl.write_text('service {\n name = "after-hup"\n port = 1\n}\n')
        assert agent.process is not None
        agent.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while set(_services(http)) != {"after-hup"}:
            assert time.monotonic() < deadline, _services(http)
            time.sleep(0.05)
        # A bad file on SIGHUP: logged, the agent carries on unchanged.
        hcl.write_text("service {")
        agent.process.send_signal(signal.SIGHUP)
        while not any("reload refused" in line for line in agent.log_lines):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert set(_services(http)) == {"after-hup"}
        assert agent.process.poll() is None


def test_a_bad_file_at_start_up_stops_the_agent(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"service": {"port": 80}}')
    ran = subprocess.run(
        [sys.executable, "-m", "waypost", "agent", "--dev", "--http-addr",
         "127.0.0.1:0", "--dns-port", "-1", "-config-file", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert ran.returncode == 1
    assert f"{bad}: Missing service name" in ran.stderr
    unreadable = subprocess.run(
        [sys.executable, "-m", "waypost", "agent", "--dev", "--config-file",
         str(tmp_path / "missing.hcl")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert unreadable.returncode == 1
    assert "missing.hcl" in unreadable.stderr


def test_reload_without_files_and_its_acl() -> None:
    token = "0b5f5d55-6a1e-4c39-8a6e-3d3b2b2b2b2b"
    args = ["--acl-enabled", "--acl-default-policy", "deny"]
    with (
        run_agent(extra_args=[*args, "--acl-initial-management", token]) as agent,
        httpx.Client(base_url=agent.url, timeout=30) as http,
    ):
        assert http.put("/v1/agent/reload").status_code == 403
        mgmt = {"X-Consul-Token": token}
        assert http.put("/v1/agent/reload", headers=mgmt).status_code == 200
