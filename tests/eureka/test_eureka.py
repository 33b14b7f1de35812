"""Eureka's REST API on a real agent: the real py-eureka-client, raw bodies
shaped as Eureka's wiki documents them (the XSD of Eureka-REST-operations),
and one catalog seen through both APIs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from waypost.testing import AgentProcess

APP = Path(__file__).with_name("eureka_app.py")
JSON_ACCEPT = {"Accept": "application/json"}


class EurekaApp:
    """A py-eureka-client service in a child process, driven over stdin."""

    def __init__(self, agent: AgentProcess, app: str, instance_id: str, lease: int = 3):
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(APP),
                f"{agent.url}/eureka",
                app,
                instance_id,
                str(lease),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = self._read()["ready"]

    def _read(self) -> dict[str, object]:
        assert self.process.stdout is not None
        while True:
            # py-eureka-client logs to stdout too; answers start with "@@ ".
            line = self.process.stdout.readline()
            assert line, "the eureka client exited"
            if line.startswith("@@ "):
                return json.loads(line[3:])  # type: ignore[no-any-return]

    def ask(self, command: str) -> object:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()["result"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def apps(agent: AgentProcess) -> Iterator[list[EurekaApp]]:
    started: list[EurekaApp] = []
    yield started
    for app in started:
        app.close()


def eureka_xml(agent: AgentProcess, path: str = "/eureka/apps") -> ElementTree.Element:
    response = httpx.get(agent.url + path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml"
    return ElementTree.fromstring(response.content)


def statuses(agent: AgentProcess, app: str) -> dict[str, str]:
    """instanceId → status, as /eureka/apps (XML, the default) shows them."""
    root = eureka_xml(agent)
    return {
        i.findtext("instanceId", ""): i.findtext("status", "")
        for a in root.iter("application")
        if a.findtext("name") == app
        for i in a.iter("instance")
    }


def wait_for(condition: object, timeout: float = 10.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def health(
    agent: AgentProcess, service: str, passing: bool = False
) -> list[dict[str, object]]:
    query = "?passing" if passing else ""
    return httpx.get(f"{agent.url}/v1/health/service/{service}{query}").json()  # type: ignore[no-any-return]


def test_py_eureka_client_register_heartbeat_discover_status_stop(
    agent: AgentProcess, apps: list[EurekaApp]
) -> None:
    agent = agent
    orders = EurekaApp(agent, "pyorders", "orders-1", lease=3)
    apps.append(orders)
    assert statuses(agent, "PYORDERS") == {"orders-1": "UP"}
    # The same instance through Consul's API: service "pyorders", passing.
    [entry] = health(agent, "pyorders", passing=True)
    service = entry["Service"]
    assert isinstance(service, dict)
    assert service["ID"] == "orders-1"
    assert service["Port"] == orders.port
    assert service["Address"] == "127.0.0.1"
    assert service["Meta"]["team"] == "payments"  # type: ignore[index]
    assert service["Meta"]["management_x2e_port"] == str(orders.port)  # type: ignore[index]
    # Heartbeats (every 1 s) keep a 3 s lease alive well past it.
    time.sleep(4.5)
    assert statuses(agent, "PYORDERS") == {"orders-1": "UP"}
    # Discovery and do_service: another client calls this one by app name.
    web = EurekaApp(agent, "pyweb", "web-1")
    apps.append(web)
    assert web.ask("call PYORDERS /hello") == "hello from orders-1"
    # Metadata round-trips with its original key.
    xml = eureka_xml(agent, "/eureka/apps/PYORDERS/orders-1")
    assert xml.findtext("metadata/management.port") == str(orders.port)
    # Status override OUT_OF_SERVICE = the service's maintenance mode.
    assert orders.ask("status OUT_OF_SERVICE") == "ok"
    assert statuses(agent, "PYORDERS") == {"orders-1": "OUT_OF_SERVICE"}
    assert health(agent, "pyorders", passing=True) == []
    checks = [c["CheckID"] for c in health(agent, "pyorders")[0]["Checks"]]  # type: ignore[union-attr]
    assert "_service_maintenance:orders-1" in checks
    # Heartbeats do not lift an override.
    time.sleep(1.5)
    assert statuses(agent, "PYORDERS") == {"orders-1": "OUT_OF_SERVICE"}
    # Deleting it leaves UNKNOWN; the next renew answers 404, the client
    # registers again and is UP (Eureka's own sequence).
    assert orders.ask("delete-override") == "ok"
    wait_for(lambda: statuses(agent, "PYORDERS") == {"orders-1": "UP"}, timeout=5)
    assert len(health(agent, "pyorders", passing=True)) == 1
    # Clean shutdown: gone from both APIs at once.
    assert orders.ask("stop") == "stopped"
    assert statuses(agent, "PYORDERS") == {}
    assert health(agent, "pyorders") == []
    assert httpx.get(agent.url + "/eureka/apps/PYORDERS").status_code == 404


def test_a_killed_client_is_gone_within_its_lease_plus_one_second(
    agent: AgentProcess, apps: list[EurekaApp]
) -> None:
    agent = agent
    lease = 2
    victim = EurekaApp(agent, "pyvictim", "victim-1", lease=lease)
    apps.append(victim)
    assert statuses(agent, "PYVICTIM") == {"victim-1": "UP"}
    os.kill(victim.process.pid, signal.SIGKILL)
    killed = time.monotonic()
    victim.process.wait(10)
    wait_for(lambda: statuses(agent, "PYVICTIM") == {}, timeout=lease + 1)
    # It was renewed up to a second before the kill: gone no earlier than
    # lease - 1 s after the kill (not evicted while alive).
    assert time.monotonic() - killed >= lease - 1 - 0.2
    # Consul's view: the lease check is critical; reaped one lease later.
    [entry] = health(agent, "pyvictim")
    lease_check = [
        c for c in entry["Checks"] if c["CheckID"] == "eureka-lease:victim-1"
    ]  # type: ignore[union-attr]
    assert lease_check[0]["Status"] == "critical"


# Shaped as Eureka's wiki documents a registration (Eureka-REST-operations,
# the instance XSD): hostName, app, ipAddr, vipAddress, secureVipAddress,
# status, port, securePort, homePageUrl, statusPageUrl, healthCheckUrl,
# dataCenterInfo/name, leaseInfo, metadata.
WIKI_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<instance>
  <hostName>billing-1.example.com</hostName>
  <app>BILLING</app>
  <ipAddr>10.1.2.3</ipAddr>
  <vipAddress>billing</vipAddress>
  <secureVipAddress>billing-secure</secureVipAddress>
  <status>UP</status>
  <port enabled="true">8080</port>
  <securePort enabled="true">8443</securePort>
  <homePageUrl>http://billing-1.example.com:8080/</homePageUrl>
  <statusPageUrl>http://billing-1.example.com:8080/info</statusPageUrl>
  <healthCheckUrl>http://billing-1.example.com:8080/health</healthCheckUrl>
  <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo">
    <name>MyOwn</name>
  </dataCenterInfo>
  <leaseInfo><evictionDurationInSecs>90</evictionDurationInSecs></leaseInfo>
  <metadata><zone>z1</zone></metadata>
</instance>"""

WIKI_JSON = {
    "instance": {
        "instanceId": "ledger-1:ledger:9090",
        "hostName": "ledger-1",
        "app": "LEDGER",
        "ipAddr": "10.1.2.4",
        "status": "STARTING",
        "overriddenstatus": "UNKNOWN",
        "port": {"$": 9090, "@enabled": "true"},
        "securePort": {"$": 443, "@enabled": "false"},
        "countryId": 1,
        "dataCenterInfo": {
            "@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
            "name": "MyOwn",
        },
        "leaseInfo": {"renewalIntervalInSecs": 30, "durationInSecs": 90},
        "metadata": {"@class": "java.util.Collections$EmptyMap"},
        "vipAddress": "ledger",
        "secureVipAddress": "ledger",
        "isCoordinatingDiscoveryServer": "false",
        "lastUpdatedTimestamp": "1700000000000",
        "lastDirtyTimestamp": "1700000000000",
    }
}


def test_raw_xml_and_json_registrations_read_back_in_both_formats(
    agent: AgentProcess,
) -> None:
    url = agent.url
    r = httpx.post(
        url + "/eureka/v2/apps/BILLING",
        content=WIKI_XML,
        headers={"content-type": "application/xml"},
    )
    assert r.status_code == 204, r.text
    r = httpx.post(url + "/eureka/apps/LEDGER", json=WIKI_JSON)
    assert r.status_code == 204, r.text
    # No instanceId in the wiki's XML: the hostName is the ID (InstanceInfo.getId).
    billing = eureka_xml(agent, "/eureka/v2/apps/BILLING/billing-1.example.com")
    assert billing.findtext("status") == "UP"
    assert billing.find("securePort").get("enabled") == "true"  # type: ignore[union-attr]
    assert billing.findtext("securePort") == "8443"
    assert billing.findtext("secureVipAddress") == "billing-secure"
    assert billing.findtext("leaseInfo/durationInSecs") == "90"
    assert billing.find("dataCenterInfo").get("class") == (  # type: ignore[union-attr]
        "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"
    )
    assert billing.findtext("metadata/zone") == "z1"
    # JSON on Accept, with Jackson's shapes.
    body = httpx.get(url + "/eureka/apps/LEDGER", headers=JSON_ACCEPT).json()
    [ledger] = body["application"]["instance"]
    assert body["application"]["name"] == "LEDGER"
    assert ledger["status"] == "STARTING"
    assert ledger["port"] == {"$": 9090, "@enabled": "true"}
    assert ledger["metadata"] == {"@class": "java.util.Collections$EmptyMap"}
    assert ledger["dataCenterInfo"]["name"] == "MyOwn"
    assert ledger["lastDirtyTimestamp"] == "1700000000000"
    # apps__hashcode as Applications.getReconcileHashCode: names sorted.
    full = httpx.get(url + "/eureka/apps", headers=JSON_ACCEPT).json()["applications"]
    assert full["apps__hashcode"] == "STARTING_1_UP_1_"
    assert full["versions__delta"] == "1"
    assert eureka_xml(agent).findtext("apps__hashcode") == "STARTING_1_UP_1_"
    # STARTING is a warning in Consul: not ?passing.
    assert [e["Service"]["ID"] for e in health(agent, "ledger")] == [  # type: ignore[index]
        "ledger-1:ledger:9090"
    ]
    assert health(agent, "ledger", passing=True) == []
    # vips and svips, and /instances/{id}.
    vip = httpx.get(url + "/eureka/vips/billing", headers=JSON_ACCEPT).json()
    assert [a["name"] for a in vip["applications"]["application"]] == ["BILLING"]
    svip = httpx.get(
        url + "/eureka/v2/svips/billing-secure", headers=JSON_ACCEPT
    ).json()
    assert [a["name"] for a in svip["applications"]["application"]] == ["BILLING"]
    one = httpx.get(url + "/eureka/instances/ledger-1:ledger:9090", headers=JSON_ACCEPT)
    assert one.json()["instance"]["app"] == "LEDGER"
    # Metadata update, status override to DOWN and back, cancel.
    base = url + "/eureka/apps/LEDGER/ledger-1:ledger:9090"
    assert httpx.put(base + "/metadata?version=2").status_code == 200
    assert httpx.get(base, headers=JSON_ACCEPT).json()["instance"]["metadata"] == {
        "version": "2"
    }
    assert httpx.put(base + "/status?value=DOWN").status_code == 200
    down = httpx.get(base, headers=JSON_ACCEPT).json()["instance"]
    assert (down["status"], down["overriddenStatus"]) == ("DOWN", "DOWN")
    assert httpx.delete(base + "/status?value=UP").status_code == 200
    assert httpx.get(base, headers=JSON_ACCEPT).json()["instance"]["status"] == "UP"
    assert httpx.delete(base).status_code == 200
    assert httpx.delete(base).status_code == 404
    assert httpx.put(base).status_code == 404
    delta = httpx.get(url + "/eureka/apps/delta", headers=JSON_ACCEPT).json()[
        "applications"
    ]
    actions = {
        i["instanceId"]: i["actionType"]
        for a in delta["application"]
        for i in a["instance"]
    }
    assert actions == {
        "billing-1.example.com": "ADDED",
        "ledger-1:ledger:9090": "DELETED",
    }
    assert delta["apps__hashcode"] == "UP_1_"


def test_consul_registrations_are_eureka_instances(agent: AgentProcess) -> None:
    url = agent.url
    r = httpx.put(
        url + "/v1/agent/service/register",
        json={
            "Name": "web",
            "ID": "web-1",
            "Address": "10.0.0.9",
            "Port": 8000,
            "Meta": {"version": "3"},
            "Check": {"CheckID": "web-ttl", "TTL": "60s", "Status": "passing"},
        },
    )
    assert r.status_code == 200, r.text

    def web() -> dict[str, object]:
        body = httpx.get(url + "/eureka/apps/WEB/web-1", headers=JSON_ACCEPT)
        return body.json()["instance"]  # type: ignore[no-any-return]

    instance = web()
    assert instance["app"] == "WEB"
    assert instance["ipAddr"] == "10.0.0.9"
    assert instance["port"] == {"$": 8000, "@enabled": "true"}
    assert instance["vipAddress"] == "web"
    assert instance["metadata"] == {"version": "3"}
    assert instance["status"] == "UP"
    httpx.put(url + "/v1/agent/check/fail/web-ttl")
    assert web()["status"] == "DOWN"
    httpx.put(url + "/v1/agent/check/pass/web-ttl")
    assert web()["status"] == "UP"
    httpx.put(url + "/v1/agent/service/maintenance/web-1?enable=true")
    assert web()["status"] == "OUT_OF_SERVICE"
    # A Consul instance has no lease: a Eureka renew asks it to register.
    assert httpx.put(url + "/eureka/apps/WEB/web-1").status_code == 404
    assert statuses(agent, "WEB") == {"web-1": "OUT_OF_SERVICE"}


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"<instance><app>X</app>", "application/xml", "Request decode failed"),
        (b"{not json", "application/json", "Request decode failed"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><instance/>', "application/xml", "DTD"),
        (b"<applications/>", "application/xml", "expected <instance>"),
        (b'{"instance": {"app": "X"}}', "application/json", "Missing instanceId"),
        (
            b'{"instance": {"hostName": "h", "app": "X"}}',
            "application/json",
            "Missing ip address",
        ),
        (
            b'{"instance": {"hostName": "h", "app": "Y", "ipAddr": "1.2.3.4",'
            b' "dataCenterInfo": {"name": "MyOwn"}}}',
            "application/json",
            "Mismatched appName, expecting X but was Y",
        ),
        (
            b'{"instance": {"hostName": "h", "app": "X", "ipAddr": "1.2.3.4"}}',
            "application/json",
            "Missing dataCenterInfo",
        ),
        (
            b'{"instance": {"hostName": "h", "app": "X", "ipAddr": "1.2.3.4",'
            b' "port": {"$": 70000}, "dataCenterInfo": {"name": "MyOwn"}}}',
            "application/json",
            "Invalid port",
        ),
        (b"", "application/json", "Missing InstanceInfo body"),
    ],
)
def test_bad_registrations_are_400_and_change_nothing(
    agent: AgentProcess, body: bytes, content_type: str, message: str
) -> None:
    r = httpx.post(
        agent.url + "/eureka/apps/X",
        content=body,
        headers={"content-type": content_type},
    )
    assert r.status_code == 400
    assert message in r.text
    assert statuses(agent, "X") == {}
    assert httpx.get(agent.url + "/v1/catalog/services").json() == {"consul": []}


def test_bad_status_values_and_unknown_paths(agent: AgentProcess) -> None:
    url = agent.url
    assert httpx.post(url + "/eureka/apps/LEDGER", json=WIKI_JSON).status_code == 204
    base = url + "/eureka/apps/LEDGER/ledger-1:ledger:9090"
    assert httpx.put(base + "/status?value=SIDEWAYS").status_code == 400
    assert httpx.put(base + "/status").status_code == 400
    assert (
        httpx.put(url + "/eureka/apps/LEDGER/nope/status?value=UP").status_code == 404
    )
    assert httpx.get(url + "/eureka/apps/NOPE").status_code == 404
    assert httpx.get(url + "/eureka/instances/nope").status_code == 404
    assert httpx.get(url + "/eureka/apps/a/b/c/d").status_code == 404
    assert httpx.post(url + "/eureka/apps/").status_code == 405
