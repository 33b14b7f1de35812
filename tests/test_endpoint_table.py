"""The README's table of Consul's endpoints says what waypost serves.

Three lists must agree: Consul's endpoints (`CONSUL`, copied from
hashicorp/consul agent/http_register.go), the README's table, and the
route table (`http/routes.py`). A route added or removed without its row
changing fails here, naming the row.
"""

from __future__ import annotations

import re
from pathlib import Path

from waypost.http.routes import ROUTES

README = Path(__file__).resolve().parents[1] / "README.md"

#: hashicorp/consul agent/http_register.go: path -> methods. `/v1/query/`
#: is registered with no methods (its handler decides): GET, PUT, DELETE.
CONSUL: dict[str, frozenset[str]] = {
    path: frozenset(methods.split())
    for path, methods in (
        ("/v1/acl/bootstrap", "PUT"),
        ("/v1/acl/login", "POST"),
        ("/v1/acl/logout", "POST"),
        ("/v1/acl/replication", "GET"),
        ("/v1/acl/policies", "GET"),
        ("/v1/acl/policy", "PUT"),
        ("/v1/acl/policy/", "GET PUT DELETE"),
        ("/v1/acl/policy/name/", "GET"),
        ("/v1/acl/roles", "GET"),
        ("/v1/acl/role", "PUT"),
        ("/v1/acl/role/name/", "GET"),
        ("/v1/acl/role/", "GET PUT DELETE"),
        ("/v1/acl/binding-rules", "GET"),
        ("/v1/acl/binding-rule", "PUT"),
        ("/v1/acl/binding-rule/", "GET PUT DELETE"),
        ("/v1/acl/auth-methods", "GET"),
        ("/v1/acl/auth-method", "PUT"),
        ("/v1/acl/auth-method/", "GET PUT DELETE"),
        ("/v1/acl/tokens", "GET"),
        ("/v1/acl/token", "PUT"),
        ("/v1/acl/token/self", "GET"),
        ("/v1/acl/token/", "GET PUT DELETE"),
        ("/v1/acl/templated-policies", "GET"),
        ("/v1/acl/templated-policy/name/", "GET"),
        ("/v1/acl/templated-policy/preview/", "POST"),
        ("/v1/agent/token/", "PUT"),
        ("/v1/agent/self", "GET"),
        ("/v1/agent/host", "GET"),
        ("/v1/agent/version", "GET"),
        ("/v1/agent/maintenance", "PUT"),
        ("/v1/agent/reload", "PUT"),
        ("/v1/agent/monitor", "GET"),
        ("/v1/agent/metrics", "GET"),
        ("/v1/agent/metrics/stream", "GET"),
        ("/v1/agent/services", "GET"),
        ("/v1/agent/service/", "GET"),
        ("/v1/agent/checks", "GET"),
        ("/v1/agent/members", "GET"),
        ("/v1/agent/join/", "PUT"),
        ("/v1/agent/leave", "PUT"),
        ("/v1/agent/force-leave/", "PUT"),
        ("/v1/agent/health/service/id/", "GET"),
        ("/v1/agent/health/service/name/", "GET"),
        ("/v1/agent/check/register", "PUT"),
        ("/v1/agent/check/deregister/", "PUT"),
        ("/v1/agent/check/pass/", "PUT"),
        ("/v1/agent/check/warn/", "PUT"),
        ("/v1/agent/check/fail/", "PUT"),
        ("/v1/agent/check/update/", "PUT"),
        ("/v1/agent/connect/authorize", "POST"),
        ("/v1/agent/connect/ca/roots", "GET"),
        ("/v1/agent/connect/ca/leaf/", "GET"),
        ("/v1/agent/service/register", "PUT"),
        ("/v1/agent/service/deregister/", "PUT"),
        ("/v1/agent/service/maintenance/", "PUT"),
        ("/v1/catalog/register", "PUT"),
        ("/v1/catalog/connect/", "GET"),
        ("/v1/catalog/deregister", "PUT"),
        ("/v1/catalog/datacenters", "GET"),
        ("/v1/catalog/nodes", "GET"),
        ("/v1/catalog/services", "GET"),
        ("/v1/catalog/service/", "GET"),
        ("/v1/catalog/node/", "GET"),
        ("/v1/catalog/node-services/", "GET"),
        ("/v1/catalog/gateway-services/", "GET"),
        ("/v1/config/", "GET DELETE"),
        ("/v1/config", "PUT"),
        ("/v1/connect/ca/configuration", "GET PUT"),
        ("/v1/connect/ca/roots", "GET"),
        ("/v1/connect/intentions", "GET POST"),
        ("/v1/connect/intentions/match", "GET"),
        ("/v1/connect/intentions/check", "GET"),
        ("/v1/connect/intentions/exact", "GET PUT DELETE"),
        ("/v1/connect/intentions/", "GET PUT DELETE"),
        ("/v1/coordinate/datacenters", "GET"),
        ("/v1/coordinate/nodes", "GET"),
        ("/v1/coordinate/node/", "GET"),
        ("/v1/coordinate/update", "PUT"),
        ("/v1/internal/federation-states", "GET"),
        ("/v1/internal/federation-states/mesh-gateways", "GET"),
        ("/v1/internal/federation-state/", "GET"),
        ("/v1/discovery-chain/", "GET POST"),
        ("/v1/exported-services", "GET"),
        ("/v1/event/fire/", "PUT"),
        ("/v1/event/list", "GET"),
        ("/v1/health/node/", "GET"),
        ("/v1/health/checks/", "GET"),
        ("/v1/health/state/", "GET"),
        ("/v1/health/service/", "GET"),
        ("/v1/health/connect/", "GET"),
        ("/v1/health/ingress/", "GET"),
        ("/v1/internal/ui/metrics-proxy/", "GET"),
        ("/v1/internal/ui/nodes", "GET"),
        ("/v1/internal/ui/node/", "GET"),
        ("/v1/internal/ui/services", "GET"),
        ("/v1/internal/ui/exported-services", "GET"),
        ("/v1/internal/ui/catalog-overview", "GET"),
        ("/v1/internal/ui/gateway-services-nodes/", "GET"),
        ("/v1/internal/ui/gateway-intentions/", "GET"),
        ("/v1/internal/ui/service-topology/", "GET"),
        ("/v1/internal/acl/authorize", "POST"),
        ("/v1/internal/service-virtual-ip", "PUT"),
        ("/v1/kv/", "GET PUT DELETE"),
        ("/v1/operator/raft/configuration", "GET"),
        ("/v1/operator/raft/transfer-leader", "POST"),
        ("/v1/operator/raft/peer", "DELETE"),
        ("/v1/operator/keyring", "GET POST PUT DELETE"),
        ("/v1/operator/usage", "GET"),
        ("/v1/operator/utilization", "GET"),
        ("/v1/operator/autopilot/configuration", "GET PUT"),
        ("/v1/operator/autopilot/health", "GET"),
        ("/v1/operator/autopilot/state", "GET"),
        ("/v1/peering/token", "POST"),
        ("/v1/peering/establish", "POST"),
        ("/v1/peering/", "GET DELETE"),
        ("/v1/peerings", "GET"),
        ("/v1/query", "GET POST"),
        ("/v1/query/", "GET PUT DELETE"),
        ("/v1/session/create", "PUT"),
        ("/v1/session/destroy/", "PUT"),
        ("/v1/session/renew/", "PUT"),
        ("/v1/session/info/", "GET"),
        ("/v1/session/node/", "GET"),
        ("/v1/session/list", "GET"),
        ("/v1/status/leader", "GET"),
        ("/v1/status/peers", "GET"),
        ("/v1/snapshot", "GET PUT"),
        ("/v1/txn", "PUT"),
    )
}

STATUSES = ("served", "differs", "not served")
_ROW = re.compile(
    r"^\| `(?P<path>[^`]+)` \| (?P<methods>[A-Z, ]+)"
    r" \| (?P<status>[a-z ]+) \|(?P<notes>.*)\|$"
)


def table() -> dict[str, tuple[frozenset[str], str, str]]:
    """README rows: path -> (methods, status, notes)."""
    text = README.read_text()
    block = text.split("<!-- endpoints:begin -->", 1)[1]
    block = block.split("<!-- endpoints:end -->", 1)[0]
    rows: dict[str, tuple[frozenset[str], str, str]] = {}
    for line in block.strip().splitlines()[2:]:
        match = _ROW.match(line)
        assert match, f"README endpoint row not in the table's form: {line!r}"
        path = match["path"]
        assert path not in rows, f"README lists {path} twice"
        methods = frozenset(m.strip() for m in match["methods"].split(","))
        rows[path] = (methods, match["status"], match["notes"].strip())
    return rows


def served() -> dict[str, frozenset[str]]:
    routes: dict[str, frozenset[str]] = {}
    for path, methods, _handler in ROUTES:
        if path.startswith("/v1/"):
            routes[path] = routes.get(path, frozenset()) | methods
    return routes


def test_the_table_lists_every_consul_endpoint_once_with_consuls_methods() -> None:
    rows = table()
    missing = sorted(set(CONSUL) - set(rows))
    assert not missing, f"Consul endpoints missing from the README table: {missing}"
    for path, (methods, _status, _notes) in rows.items():
        if path in CONSUL:
            assert methods == CONSUL[path], f"{path}: Consul's methods differ"


def test_every_route_served_is_in_the_table_as_served() -> None:
    rows = table()
    for path, methods in served().items():
        assert path in rows, f"{path} is served: add a README table row for it"
        listed, status, _ = rows[path]
        assert status in ("served", "differs"), (
            f"{path} is served: its README row says {status!r}"
            " (make it 'served' or 'differs')"
        )
        assert methods <= listed, f"{path}: served methods {sorted(methods)}"


def test_every_row_said_served_is_routed_and_every_other_is_not() -> None:
    routes = served()
    for path, (methods, status, notes) in table().items():
        assert status in STATUSES, f"{path}: unknown status {status!r}"
        if status == "not served":
            assert path not in routes, f"{path} is routed: its row says not served"
            assert notes, f"{path}: a row not served says why"
        else:
            assert path in routes, f"{path}: its row says {status}, no route serves it"
            assert routes[path] == methods, (
                f"{path}: the row lists {sorted(methods)}, routes.py serves"
                f" {sorted(routes[path])}"
            )
        if status == "differs":
            assert notes, f"{path}: a row that differs names the difference"
