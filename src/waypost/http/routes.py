"""One table of every endpoint: path, methods, handler (Consul's
`http_register.go` habit). A path ending in `/` takes the rest as `tail`;
`/` itself is exact. Any other path is a 404 in Consul's words (its
`Index` handler), whatever the method: a 405 only names a path we serve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from waypost.eureka import handlers as eureka
from waypost.http import (
    acl,
    agent,
    catalog,
    config_entries,
    connect,
    connect_ca,
    coordinate,
    discovery_chain,
    events,
    health,
    intentions,
    kv,
    operator,
    session as session_,
    snapshot as snapshots,
    status,
    telemetry,
    txn as txn_,
)
from waypost.http.errors import method_not_allowed
from waypost.http.messages import Query, Request, Response, text_response
from waypost.ui import assets as ui_assets, handlers as ui

if TYPE_CHECKING:
    from waypost.registry import Registry

Handler = Callable[["Registry", Request], Awaitable[Response | Query]]

GET, PUT, DELETE = frozenset({"GET"}), frozenset({"PUT"}), frozenset({"DELETE"})
GET_PUT_DELETE = frozenset({"GET", "PUT", "DELETE"})
GET_PUT = frozenset({"GET", "PUT"})
GET_POST = frozenset({"GET", "POST"})
GET_DELETE = frozenset({"GET", "DELETE"})
GET_POST_PUT_DELETE = frozenset({"GET", "POST", "PUT", "DELETE"})
EUREKA_METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})
POST = frozenset({"POST"})


async def index(registry: Registry, request: Request) -> Response:
    # Consul answers its root with 200 when the UI is off; HTTP checks and
    # load balancers point at it to ask "is the agent up?".
    return text_response(
        "waypost agent: Consul API without a UI. Try /v1/agent/self.\n", 200
    )


ROUTES: list[tuple[str, frozenset[str], Handler]] = [
    ("/", GET, index),
    # agent
    ("/v1/agent/self", GET, agent.self_),
    ("/v1/agent/members", GET, agent.members),
    ("/v1/agent/services", GET, agent.services),
    ("/v1/agent/service/register", PUT, agent.register_service),
    ("/v1/agent/service/deregister/", PUT, agent.deregister_service),
    ("/v1/agent/service/maintenance/", PUT, agent.service_maintenance),
    ("/v1/agent/service/", GET, agent.service),
    ("/v1/agent/checks", GET, agent.checks),
    ("/v1/agent/check/register", PUT, agent.register_check),
    ("/v1/agent/check/deregister/", PUT, agent.deregister_check),
    ("/v1/agent/check/pass/", PUT, agent.check_pass),
    ("/v1/agent/check/warn/", PUT, agent.check_warn),
    ("/v1/agent/check/fail/", PUT, agent.check_fail),
    ("/v1/agent/check/update/", PUT, agent.check_update),
    ("/v1/agent/maintenance", PUT, agent.node_maintenance),
    ("/v1/agent/leave", PUT, agent.leave),
    ("/v1/agent/metrics", GET, telemetry.metrics),
    ("/v1/agent/monitor", GET, telemetry.monitor),
    ("/v1/agent/health/service/name/", GET, agent.health_by_name),
    ("/v1/agent/health/service/id/", GET, agent.health_by_id),
    ("/v1/agent/token/", PUT, acl.agent_token),
    # catalog
    ("/v1/catalog/register", PUT, catalog.register),
    ("/v1/catalog/deregister", PUT, catalog.deregister),
    ("/v1/catalog/datacenters", GET, catalog.datacenters),
    ("/v1/catalog/nodes", GET, catalog.nodes),
    ("/v1/catalog/services", GET, catalog.services),
    ("/v1/catalog/service/", GET, catalog.service),
    ("/v1/catalog/node/", GET, catalog.node),
    ("/v1/catalog/node-services/", GET, catalog.node_services),
    # health
    ("/v1/health/node/", GET, health.node),
    ("/v1/health/checks/", GET, health.checks),
    ("/v1/health/service/", GET, health.service),
    ("/v1/health/state/", GET, health.state),
    # kv
    ("/v1/kv/", GET_PUT_DELETE, kv.dispatch),
    # status
    ("/v1/status/leader", GET, status.leader),
    ("/v1/status/peers", GET, status.peers),
    # operator
    ("/v1/operator/raft/configuration", GET, status.raft_configuration),
    # Eureka's REST API on the same catalog: Spring Cloud's base and Netflix's
    *(
        route
        for base in ("/eureka", "/eureka/v2")
        for route in (
            (f"{base}/apps", GET, eureka.all_apps),
            (f"{base}/apps/", EUREKA_METHODS, eureka.apps),
            (f"{base}/instances/", GET, eureka.instance_by_id),
            (f"{base}/vips/", GET, eureka.vips),
            (f"{base}/svips/", GET, eureka.svips),
        )
    ),
    # acl
    ("/v1/acl/bootstrap", PUT, acl.bootstrap),
    ("/v1/acl/tokens", GET, acl.token_list),
    ("/v1/acl/token", PUT, acl.token_create),
    ("/v1/acl/token/self", GET, acl.token_self),
    ("/v1/acl/token/", GET_PUT_DELETE, acl.token_crud),
    ("/v1/acl/policies", GET, acl.policy_list),
    ("/v1/acl/policy", PUT, acl.policy_create),
    ("/v1/acl/policy/name/", GET, acl.policy_by_name),
    ("/v1/acl/policy/", GET_PUT_DELETE, acl.policy_crud),
    ("/v1/acl/roles", GET, acl.role_list),
    ("/v1/acl/role", PUT, acl.role_create),
    ("/v1/acl/role/name/", GET, acl.role_by_name),
    ("/v1/acl/role/", GET_PUT_DELETE, acl.role_crud),
    ("/v1/acl/auth-methods", GET, acl.auth_method_list),
    ("/v1/acl/auth-method", PUT, acl.auth_method_create),
    ("/v1/acl/auth-method/", GET_PUT_DELETE, acl.auth_method_crud),
    ("/v1/acl/binding-rules", GET, acl.binding_rule_list),
    ("/v1/acl/binding-rule", PUT, acl.binding_rule_create),
    ("/v1/acl/binding-rule/", GET_PUT_DELETE, acl.binding_rule_crud),
    ("/v1/acl/login", POST, acl.login),
    ("/v1/acl/logout", POST, acl.logout),
    ("/v1/acl/templated-policies", GET, acl.templated_policy_list),
    ("/v1/acl/templated-policy/name/", GET, acl.templated_policy_read),
    ("/v1/acl/templated-policy/preview/", POST, acl.templated_policy_preview),
    # operator and usage (issue 15)
    ("/v1/operator/raft/peer", DELETE, operator.raft_peer),
    ("/v1/operator/raft/transfer-leader", POST, operator.raft_transfer_leader),
    ("/v1/operator/keyring", GET_POST_PUT_DELETE, operator.keyring),
    ("/v1/operator/autopilot/configuration", GET_PUT, operator.autopilot_configuration),
    ("/v1/operator/autopilot/health", GET, operator.autopilot_health),
    ("/v1/operator/autopilot/state", GET, operator.autopilot_state),
    ("/v1/operator/usage", GET, operator.usage),
    # config entries (issue 15)
    ("/v1/config", PUT, config_entries.apply),
    ("/v1/config/", GET_DELETE, config_entries.dispatch),
    # issue 15b: snapshots, events, agent reload, coordinates
    ("/v1/snapshot", GET_PUT, snapshots.snapshot),
    # sessions (issue 15)
    ("/v1/session/create", PUT, session_.create),
    ("/v1/session/destroy/", PUT, session_.destroy),
    ("/v1/session/renew/", PUT, session_.renew),
    ("/v1/session/info/", GET, session_.info),
    ("/v1/session/node/", GET, session_.node),
    ("/v1/session/list", GET, session_.list_),
    # the web dashboard (waypost.ui): its files, Consul's internal UI
    # summaries, and waypost's own ring view outside /v1
    ("/ui", GET, ui_assets.redirect),
    ("/ui/", GET, ui_assets.static),
    ("/ui/api/ring", GET, ui.ring),
    ("/v1/internal/ui/services", GET, ui.services),
    ("/v1/internal/ui/nodes", GET, ui.nodes),
    ("/v1/agent/reload", PUT, agent.reload),
    ("/v1/event/fire/", PUT, events.fire),
    ("/v1/event/list", GET, events.list_),
    ("/v1/coordinate/datacenters", GET, coordinate.datacenters),
    ("/v1/coordinate/nodes", GET, coordinate.nodes),
    ("/v1/coordinate/node/", GET, coordinate.node),
    ("/v1/coordinate/update", PUT, coordinate.update),
    # transactions (issue 15)
    ("/v1/txn", PUT, txn_.txn),
    # Connect's control-plane data (issue 15)
    ("/v1/catalog/connect/", GET, connect.catalog_connect),
    ("/v1/health/connect/", GET, connect.health_connect),
    ("/v1/health/ingress/", GET, connect.health_ingress),
    ("/v1/catalog/gateway-services/", GET, connect.catalog_gateway_services),
    # intentions, the Connect CA, the discovery chain, force-leave (issue 15)
    ("/v1/connect/intentions", GET_POST, intentions.list_or_create),
    ("/v1/connect/intentions/exact", GET_PUT_DELETE, intentions.exact),
    ("/v1/connect/intentions/check", GET, intentions.check),
    ("/v1/connect/intentions/match", GET, intentions.match),
    ("/v1/connect/intentions/", GET_PUT_DELETE, intentions.by_id),
    ("/v1/connect/ca/roots", GET, connect_ca.roots),
    ("/v1/connect/ca/configuration", GET_PUT, connect_ca.configuration),
    ("/v1/agent/connect/ca/roots", GET, connect_ca.roots),
    ("/v1/agent/connect/ca/leaf/", GET, connect_ca.leaf),
    ("/v1/discovery-chain/", GET_POST, discovery_chain.read),
    ("/v1/agent/force-leave/", PUT, operator.force_leave),
    ("/v1/agent/connect/authorize", POST, intentions.authorize),
    ("/v1/agent/version", GET, operator.version),
]


MEMO_SIZE = 8192


class Router:
    """Exact paths by dict; prefix routes by dict too, longest prefix first.

    A path is cut at its first few slashes and each cut is looked up, so
    matching costs a handful of dict lookups whatever the number of routes.
    """

    def __init__(self, routes: list[tuple[str, frozenset[str], Handler]]) -> None:
        self._exact: dict[str, tuple[frozenset[str], Handler]] = {}
        self._prefixes: dict[str, tuple[frozenset[str], Handler]] = {}
        self._patterns: dict[Handler, str] = {}
        for path, methods, handler in routes:
            self._patterns.setdefault(handler, path)
            is_prefix = path.endswith("/") and path != "/"
            table = self._prefixes if is_prefix else self._exact
            table[path] = (methods, handler)
        self._depth = max((p.count("/") for p in self._prefixes), default=0)
        self._memo: dict[tuple[str, str], tuple[Handler, str] | Response] = {}

    def pattern_of(self, handler: Handler) -> str:
        """The route a handler serves (`/v1/health/service/`): metrics' label."""
        return self._patterns.get(handler, "")

    def match(self, method: str, path: str) -> tuple[Handler, str] | Response:
        # Hot paths repeat (a heartbeat's check URL, a watched service):
        # remember the last few thousand answers.
        key = (method, path)
        found = self._memo.get(key)
        if found is None:
            found = self._match(method, path)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = found
        return found

    def _match(self, method: str, path: str) -> tuple[Handler, str] | Response:
        exact = self._exact.get(path)
        if exact is not None:
            return _check_method(method, exact[0], exact[1], "")
        cuts = []
        position = 0
        for _ in range(self._depth):
            position = path.find("/", position) + 1
            if not position:
                break
            cuts.append(position)
        prefixes = self._prefixes
        for cut in reversed(cuts):
            route = prefixes.get(path[:cut])
            if route is not None:
                return _check_method(method, route[0], route[1], path[cut:])
        return _NOT_FOUND_V1 if "/v1/" in path else _NOT_FOUND_OTHER


# Consul's Index handler (agent/http.go), with its Fprintln newline.
_NOT_FOUND_V1 = text_response(
    "Invalid URL path: not a recognized HTTP API endpoint\n", 404
)
_NOT_FOUND_OTHER = text_response(
    "Invalid URL path: if attempting to use the HTTP API, ensure the path"
    " starts with '/v1/'\n",
    404,
)


def _check_method(
    method: str, allowed: frozenset[str], handler: Handler, tail: str
) -> tuple[Handler, str] | Response:
    if method in allowed:
        return handler, tail
    if method == "OPTIONS":
        # Consul answers OPTIONS on every endpoint with its Allow list.
        return text_response("", 200, [(b"allow", _allow(allowed))])
    return method_not_allowed(method, _allow(allowed))


def _allow(allowed: frozenset[str]) -> bytes:
    return ",".join(["OPTIONS", *sorted(allowed)]).encode()


def build_router() -> Router:
    return Router(ROUTES)
