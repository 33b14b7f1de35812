"""Every route × five callers: the status and what is visible are what the
policy says, and no refused request changes anything.

One agent with `--acl-enabled --acl-default-policy deny`. The callers:

- `anon`: no token (the anonymous token, which has no policy);
- `other`: a token for another service (service identity `db`: write on
  `db`, read on every service and node, as Consul's identities grant);
- `read`: `service "web" read`, `node_prefix "" read`, `key_prefix "web/"
  read`, `agent_prefix "" read`;
- `write`: `service "web" write`, `node_prefix "" read`, `key_prefix "web/"
  write`;
- `mgmt`: the initial management token.

What each caller may do is written out below as plain sets (`GRANTS`), not
computed by waypost's authorizer; each case says what it needs. After every
request, a snapshot of the whole state (read with the management token) is
compared with the one before: a refused request must leave it equal, and a
read must never show a name the caller may not read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from waypost.http.routes import ROUTES, build_router
from waypost.testing import AgentProcess, run_agent

ROUTER = build_router()

MGMT = uuid.uuid4().hex
CALLERS = ("anon", "other", "read", "write", "mgmt")

# (resource, name or "*", access); access: read < write (write grants read).
GRANTS: dict[str, set[tuple[str, str, str]]] = {
    "anon": set(),
    "other": {
        ("service", "db", "write"),
        ("service", "*", "read"),
        ("node", "*", "read"),
    },
    "read": {
        ("service", "web", "read"),
        ("node", "*", "read"),
        ("key", "web/*", "read"),
        ("agent", "*", "read"),
    },
    "write": {
        ("service", "web", "write"),
        ("node", "*", "read"),
        ("key", "web/*", "write"),
    },
    "mgmt": {("*", "*", "write")},
}


def can(caller: str, resource: str, name: str, access: str) -> bool:
    for res, pattern, level in GRANTS[caller]:
        if res not in ("*", resource):
            continue
        matches = (
            pattern == "*"
            or pattern == name
            or (pattern.endswith("*") and name.startswith(pattern[:-1]))
        )
        if matches and (access == "read" or level == "write"):
            return True
    return False


@dataclass
class World:
    agent: AgentProcess
    node: str
    http: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)
    web_check: str = "service:web-1"
    #: Handlers of the route table this test called (every one must be).
    handlers_hit: set[str] = field(default_factory=set)

    def call(
        self,
        caller: str,
        method: str,
        path: str,
        body: object | None = None,
        *,
        via: str = "header",
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        secret = self.tokens.get(caller, "")
        if secret:
            if via == "header":
                headers["X-Consul-Token"] = secret
            elif via == "bearer":
                headers["Authorization"] = f"Bearer {secret}"
            else:
                path += ("&" if "?" in path else "?") + f"token={secret}"
        content = json.dumps(body) if body is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        matched = ROUTER.match(method, path.partition("?")[0])
        if isinstance(matched, tuple):
            self.handlers_hit.add(_name(matched[0]))
        return self.http.request(method, path, headers=headers, content=content)

    def mgmt(
        self, method: str, path: str, body: object | None = None
    ) -> httpx.Response:
        response = self.call("mgmt", method, path, body)
        assert response.status_code == 200, (method, path, response.text)
        return response

    def snapshot(self) -> dict[str, object]:
        """Everything a write could change, read with the management token."""

        def get(path: str) -> object:
            response = self.call("mgmt", "GET", path)
            return response.json() if response.status_code == 200 else None

        checks = get("/v1/agent/checks") or {}
        services = get("/v1/agent/services") or {}
        return {
            "services": get("/v1/catalog/services"),
            "nodes": sorted(n["Node"] for n in get("/v1/catalog/nodes") or []),
            "instances": {
                name: sorted(
                    (s["Node"], s["ServiceID"])
                    for s in get(f"/v1/catalog/service/{name}") or []
                )
                for name in ("web", "db", "ext")
            },
            "agent_services": sorted(services),
            "checks": {
                k: (v["Status"], v.get("Output", "")) for k, v in checks.items()
            },
            "kv": {
                e["Key"]: (e["Value"], e["ModifyIndex"])
                for e in get("/v1/kv/?recurse") or []
            },
            "tokens": sorted(t["AccessorID"] for t in get("/v1/acl/tokens") or []),
            "policies": sorted(p["ID"] for p in get("/v1/acl/policies") or []),
            "roles": sorted(r["ID"] for r in get("/v1/acl/roles") or []),
            "methods": sorted(m["Name"] for m in get("/v1/acl/auth-methods") or []),
            "rules": sorted(r["ID"] for r in get("/v1/acl/binding-rules") or []),
        }


def _set_up(agent: AgentProcess, http: httpx.Client) -> World:
    world = World(agent=agent, node="", http=http, tokens={"mgmt": MGMT})
    world.node = world.mgmt("GET", "/v1/agent/self").json()["Config"]["NodeName"]
    for name, port in (("web", 8080), ("db", 5432)):
        world.mgmt(
            "PUT",
            "/v1/agent/service/register",
            {"Name": name, "ID": f"{name}-1", "Port": port, "Check": {"TTL": "10m"}},
        )
    world.mgmt(
        "PUT",
        "/v1/catalog/register",
        {
            "Node": "ext-node",
            "Address": "10.0.0.9",
            "Service": {"Service": "ext", "ID": "ext-1", "Port": 1},
        },
    )
    for key in ("web/config", "web/tmp", "db/config"):
        world.mgmt("PUT", f"/v1/kv/{key}", "v")
    policies = {
        "read": 'service "web" { policy = "read" }\n'
        'node_prefix "" { policy = "read" }\n'
        'key_prefix "web/" { policy = "read" }\n'
        'agent_prefix "" { policy = "read" }',
        "write": 'service "web" { policy = "write" }\n'
        'node_prefix "" { policy = "read" }\n'
        'key_prefix "web/" { policy = "write" }',
    }
    for caller, rules in policies.items():
        policy = world.mgmt(
            "PUT", "/v1/acl/policy", {"Name": f"matrix-{caller}", "Rules": rules}
        ).json()
        token = world.mgmt(
            "PUT", "/v1/acl/token", {"Policies": [{"ID": policy["ID"]}]}
        ).json()
        world.tokens[caller] = token["SecretID"]
    other = world.mgmt(
        "PUT", "/v1/acl/token", {"ServiceIdentities": [{"ServiceName": "db"}]}
    ).json()
    world.tokens["other"] = other["SecretID"]
    return world


# ---------------------------------------------------------------- cases


@dataclass
class Case:
    """One request; `expect(caller)` -> (status, visible names or None)."""

    name: str
    method: str
    path: Callable[[World], str]
    expect: Callable[[str], tuple[int, object]]
    body: Callable[[World], object] | None = None
    #: What the answer shows, as names, to compare with `expect`'s.
    visible: Callable[[httpx.Response], object] | None = None
    #: Put back what an allowed write changed (with the management token).
    restore: Callable[[World], None] | None = None
    #: Names the caller may not read, which must never appear in the body.
    hidden: Callable[[str], list[str]] = lambda caller: []


def allowed(ok: bool, status: int = 200, refused: int = 403) -> int:
    return status if ok else refused


def _names_of_services(response: httpx.Response) -> object:
    return sorted(response.json())


def _service_names(data: object) -> list[str]:
    return sorted({s["Service"] for s in data.values()})  # type: ignore[attr-defined]


def _visible_services(
    caller: str, names: tuple[str, ...] = ("web", "db", "ext", "consul")
) -> list[str]:
    return sorted(n for n in names if can(caller, "service", n, "read"))


def _hidden_services(caller: str) -> list[str]:
    return [
        f'"{n}-1"'
        for n in ("web", "db", "ext")
        if not can(caller, "service", n, "read")
    ]


def _hidden_keys(caller: str) -> list[str]:
    return [k for k in ("web/config", "db/config") if not can(caller, "key", k, "read")]


def _reregister_web(world: World) -> None:
    world.mgmt(
        "PUT",
        "/v1/agent/service/register",
        {"Name": "web", "ID": "web-1", "Port": 8080, "Check": {"TTL": "10m"}},
    )


def _pass_web(world: World) -> None:
    world.mgmt("PUT", f"/v1/agent/check/pass/{world.web_check}")


def _write(resource: str, name: str) -> Callable[[str], tuple[int, object]]:
    return lambda caller: (allowed(can(caller, resource, name, "write")), None)


def _read(resource: str, name: str) -> Callable[[str], tuple[int, object]]:
    return lambda caller: (allowed(can(caller, resource, name, "read")), None)


def _acl(access: str) -> Callable[[str], tuple[int, object]]:
    return lambda caller: (allowed(can(caller, "acl", "", access)), None)


def _everyone(status: int = 200) -> Callable[[str], tuple[int, object]]:
    return lambda caller: (status, None)


def _checks_visible(caller: str) -> list[str]:
    names = []
    for service in ("web", "db"):
        if can(caller, "service", service, "read") and can(caller, "node", "n", "read"):
            names.append(f"service:{service}-1")
    return sorted(names)


def _kv_list(caller: str) -> tuple[int, object]:
    keys = sorted(
        k
        for k in ("db/config", "web/config", "web/tmp")
        if can(caller, "key", k, "read")
    )
    return (200, keys) if keys else (404, None)


def _every_service_read(caller: str) -> tuple[int, object]:
    names = ("web", "db", "ext", "consul")
    return allowed(all(can(caller, "service", n, "read") for n in names)), None


EUREKA_INSTANCE = {
    "instance": {
        "instanceId": "web-eu",
        "hostName": "web-eu",
        "app": "WEB",
        "ipAddr": "10.1.2.4",
        "status": "UP",
        "port": {"$": 9090, "@enabled": "true"},
        "dataCenterInfo": {
            "@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
            "name": "MyOwn",
        },
        "vipAddress": "web",
    }
}


def _probe_token(world: World) -> str:
    found = [
        t
        for t in world.mgmt("GET", "/v1/acl/tokens").json()
        if t["Description"] == "matrix-probe"
    ]
    if found:
        return str(found[0]["AccessorID"])
    return str(
        world.mgmt("PUT", "/v1/acl/token", {"Description": "matrix-probe"}).json()[
            "AccessorID"
        ]
    )


def _probe_policy(world: World) -> str:
    found = world.call("mgmt", "GET", "/v1/acl/policy/name/matrix-probe")
    if found.status_code == 200:
        return str(found.json()["ID"])
    return str(
        world.mgmt("PUT", "/v1/acl/policy", {"Name": "matrix-probe"}).json()["ID"]
    )


def _probe_role(world: World) -> str:
    found = world.call("mgmt", "GET", "/v1/acl/role/name/matrix-probe")
    if found.status_code == 200:
        return str(found.json()["ID"])
    return str(
        world.mgmt(
            "PUT",
            "/v1/acl/role",
            {"Name": "matrix-probe", "ServiceIdentities": [{"ServiceName": "web"}]},
        ).json()["ID"]
    )


JWT_KEY = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA0VPUoKqJMko3Snie9UX1
AgDQcE0W13BdhFJn9ngzjq/ce2WJiIzww/sY1NVwVUkymdGYsFhoEorvGBwsOgWI
FEOlpKgTWOjn+nXVYCH7AnyVdYkCfgDPItdv666ankphcv55QJOY16om2uSWV3iy
IoScXHFVJtBhlwho33wH+AZLmaV2LSEYqQdqHhGKT6JO20QRGYQzxfXkGSbEUtNm
f2Tgbr4nZPL/fKqhuY+rsU7LGVYKGf5Ddrm5+AjotDturj4GAc+R49MfsPXN9pZG
BXOAq+NWy3W3IPz1DQ2wU1MYPm3X94FG7Og8b2qZ/5+oB/2RXwYTtW5vvOgZ6mSK
KwIDAQAB
-----END PUBLIC KEY-----"""


def _probe_method(world: World) -> str:
    if world.call("mgmt", "GET", "/v1/acl/auth-method/matrix-probe").status_code != 200:
        world.mgmt(
            "PUT",
            "/v1/acl/auth-method",
            {
                "Name": "matrix-probe",
                "Type": "jwt",
                "Config": {"JWTValidationPubKeys": [JWT_KEY]},
            },
        )
    return "matrix-probe"


def _probe_rule(world: World) -> str:
    method = _probe_method(world)
    rules = world.mgmt("GET", f"/v1/acl/binding-rules?authmethod={method}").json()
    if rules:
        return str(rules[0]["ID"])
    return str(
        world.mgmt(
            "PUT",
            "/v1/acl/binding-rule",
            {"AuthMethod": method, "BindType": "service", "BindName": "web"},
        ).json()["ID"]
    )


def _drop_created(kind: str) -> Callable[[World], None]:
    """After an allowed create: delete what is not part of the fixture."""

    def restore(world: World) -> None:
        if kind == "token":
            for t in world.mgmt("GET", "/v1/acl/tokens").json():
                if t["Description"] == "matrix-new":
                    world.mgmt("DELETE", f"/v1/acl/token/{t['AccessorID']}")
        elif kind == "policy":
            found = world.call("mgmt", "GET", "/v1/acl/policy/name/matrix-new")
            if found.status_code == 200:
                world.mgmt("DELETE", f"/v1/acl/policy/{found.json()['ID']}")
        elif kind == "role":
            found = world.call("mgmt", "GET", "/v1/acl/role/name/matrix-new")
            if found.status_code == 200:
                world.mgmt("DELETE", f"/v1/acl/role/{found.json()['ID']}")
        elif kind == "method":
            world.mgmt("DELETE", "/v1/acl/auth-method/matrix-new")
        elif kind == "rule":
            for r in world.mgmt("GET", "/v1/acl/binding-rules").json():
                if r["Description"] == "matrix-new":
                    world.mgmt("DELETE", f"/v1/acl/binding-rule/{r['ID']}")

    return restore


CASES: list[Case] = [
    Case("index", "GET", lambda w: "/", _everyone()),
    # ---- agent
    Case("agent self", "GET", lambda w: "/v1/agent/self", _read("agent", "node")),
    Case(
        "agent members",
        "GET",
        lambda w: "/v1/agent/members",
        lambda c: (200, 1 if can(c, "node", "n", "read") else 0),
        visible=lambda r: len(r.json()),
    ),
    Case(
        "agent services",
        "GET",
        lambda w: "/v1/agent/services",
        lambda c: (200, _visible_services(c, ("web", "db"))),
        visible=lambda r: _service_names(r.json()),
        hidden=_hidden_services,
    ),
    Case(
        "agent service",
        "GET",
        lambda w: "/v1/agent/service/web-1",
        _read("service", "web"),
    ),
    Case(
        "agent register",
        "PUT",
        lambda w: "/v1/agent/service/register",
        _write("service", "web"),
        body=lambda w: {"Name": "web", "ID": "web-2", "Port": 8081},
        restore=lambda w: w.mgmt("PUT", "/v1/agent/service/deregister/web-2") and None,
    ),
    Case(
        "agent deregister",
        "PUT",
        lambda w: "/v1/agent/service/deregister/web-1",
        _write("service", "web"),
        restore=_reregister_web,
    ),
    Case(
        "agent service maintenance",
        "PUT",
        lambda w: "/v1/agent/service/maintenance/web-1?enable=true&reason=matrix",
        _write("service", "web"),
        restore=lambda w: (
            w.mgmt("PUT", "/v1/agent/service/maintenance/web-1?enable=false") and None
        ),
    ),
    Case(
        "agent checks",
        "GET",
        lambda w: "/v1/agent/checks",
        lambda c: (200, _checks_visible(c)),
        visible=lambda r: sorted(r.json()),
        hidden=_hidden_services,
    ),
    Case(
        "agent check register (node)",
        "PUT",
        lambda w: "/v1/agent/check/register",
        _write("node", "n"),
        body=lambda w: {"Name": "disk", "ID": "matrix-disk", "TTL": "10m"},
        restore=lambda w: (
            w.mgmt("PUT", "/v1/agent/check/deregister/matrix-disk") and None
        ),
    ),
    Case(
        "agent check register (service)",
        "PUT",
        lambda w: "/v1/agent/check/register",
        _write("service", "web"),
        body=lambda w: {
            "Name": "extra",
            "ID": "matrix-extra",
            "TTL": "10m",
            "ServiceID": "web-1",
        },
        restore=lambda w: (
            w.mgmt("PUT", "/v1/agent/check/deregister/matrix-extra") and None
        ),
    ),
    Case(
        "agent check deregister",
        "PUT",
        lambda w: f"/v1/agent/check/deregister/{w.web_check}",
        _write("service", "web"),
        restore=_reregister_web,
    ),
    Case(
        "agent check pass",
        "PUT",
        lambda w: f"/v1/agent/check/pass/{w.web_check}",
        _write("service", "web"),
    ),
    Case(
        "agent check warn",
        "PUT",
        lambda w: f"/v1/agent/check/warn/{w.web_check}",
        _write("service", "web"),
        restore=_pass_web,
    ),
    Case(
        "agent check fail",
        "PUT",
        lambda w: f"/v1/agent/check/fail/{w.web_check}",
        _write("service", "web"),
        restore=_pass_web,
    ),
    Case(
        "agent check update",
        "PUT",
        lambda w: f"/v1/agent/check/update/{w.web_check}",
        _write("service", "web"),
        body=lambda w: {"Status": "warning", "Output": "matrix"},
        restore=_pass_web,
    ),
    Case(
        "agent node maintenance",
        "PUT",
        lambda w: "/v1/agent/maintenance?enable=true",
        _write("node", "n"),
        restore=lambda w: w.mgmt("PUT", "/v1/agent/maintenance?enable=false") and None,
    ),
    Case("agent metrics", "GET", lambda w: "/v1/agent/metrics", _read("agent", "node")),
    Case(
        "agent monitor",
        "GET",
        # An unknown level is refused before streaming (the stream never ends).
        lambda w: "/v1/agent/monitor?loglevel=nope",
        lambda c: (allowed(can(c, "agent", "node", "read"), 400), None),
    ),
    Case(
        "agent health by name",
        "GET",
        lambda w: "/v1/agent/health/service/name/web",
        _read("service", "web"),
    ),
    Case(
        "agent health by id",
        "GET",
        lambda w: "/v1/agent/health/service/id/web-1",
        _read("service", "web"),
    ),
    Case(
        "agent token",
        "PUT",
        lambda w: "/v1/agent/token/replication",
        _write("agent", "node"),
        body=lambda w: {"Token": ""},
    ),
    # ---- catalog
    Case(
        "catalog register",
        "PUT",
        lambda w: "/v1/catalog/register",
        _write("service", "web"),
        body=lambda w: {
            "Node": "ext-node",
            "Address": "10.0.0.9",
            "Service": {"Service": "web", "ID": "web-ext", "Port": 2},
        },
        restore=lambda w: (
            w.mgmt(
                "PUT",
                "/v1/catalog/deregister",
                {"Node": "ext-node", "ServiceID": "web-ext"},
            )
            and None
        ),
    ),
    Case(
        "catalog register (new node)",
        "PUT",
        lambda w: "/v1/catalog/register",
        _write("node", "new-node"),
        body=lambda w: {"Node": "new-node", "Address": "10.0.0.10"},
        restore=lambda w: (
            w.mgmt("PUT", "/v1/catalog/deregister", {"Node": "new-node"}) and None
        ),
    ),
    Case(
        "catalog deregister",
        "PUT",
        lambda w: "/v1/catalog/deregister",
        _write("service", "ext"),
        body=lambda w: {"Node": "ext-node", "ServiceID": "ext-1"},
        restore=lambda w: (
            w.mgmt(
                "PUT",
                "/v1/catalog/register",
                {
                    "Node": "ext-node",
                    "Address": "10.0.0.9",
                    "Service": {"Service": "ext", "ID": "ext-1", "Port": 1},
                },
            )
            and None
        ),
    ),
    Case(
        "catalog datacenters", "GET", lambda w: "/v1/catalog/datacenters", _everyone()
    ),
    Case(
        "catalog nodes",
        "GET",
        lambda w: "/v1/catalog/nodes",
        lambda c: (200, 2 if can(c, "node", "n", "read") else 0),
        visible=lambda r: len(r.json()),
    ),
    Case(
        "catalog services",
        "GET",
        lambda w: "/v1/catalog/services",
        lambda c: (200, _visible_services(c)),
        visible=_names_of_services,
    ),
    *(
        Case(
            f"catalog service {name}",
            "GET",
            lambda w, name=name: f"/v1/catalog/service/{name}",
            lambda c, name=name: (
                200,
                [f"{name}-1"]
                if can(c, "service", name, "read") and can(c, "node", "n", "read")
                else [],
            ),
            visible=lambda r: sorted(s["ServiceID"] for s in r.json()),
            hidden=_hidden_services,
        )
        for name in ("web", "db")
    ),
    Case(
        "catalog node",
        "GET",
        lambda w: f"/v1/catalog/node/{w.node}",
        lambda c: (
            200,
            _visible_services(c, ("web", "db", "consul"))
            if can(c, "node", "n", "read")
            else None,
        ),
        visible=lambda r: _service_names(r.json()["Services"]) if r.json() else None,
        hidden=_hidden_services,
    ),
    Case(
        "catalog node-services",
        "GET",
        lambda w: f"/v1/catalog/node-services/{w.node}",
        lambda c: (
            200,
            _visible_services(c, ("web", "db", "consul"))
            if can(c, "node", "n", "read")
            else None,
        ),
        visible=lambda r: (
            sorted(s["Service"] for s in r.json()["Services"]) if r.json() else None
        ),
        hidden=_hidden_services,
    ),
    # ---- health
    Case(
        "health node",
        "GET",
        lambda w: f"/v1/health/node/{w.node}",
        lambda c: (
            200,
            sorted(["serfHealth", *_checks_visible(c)])
            if can(c, "node", "n", "read")
            else [],
        ),
        visible=lambda r: sorted(ch["CheckID"] for ch in r.json()),
        hidden=_hidden_services,
    ),
    Case(
        "health checks",
        "GET",
        lambda w: "/v1/health/checks/web",
        lambda c: (
            200,
            ["service:web-1"] if "service:web-1" in _checks_visible(c) else [],
        ),
        visible=lambda r: sorted(ch["CheckID"] for ch in r.json()),
    ),
    *(
        Case(
            f"health service {name}",
            "GET",
            lambda w, name=name: f"/v1/health/service/{name}",
            lambda c, name=name: (
                200,
                [f"{name}-1"]
                if can(c, "service", name, "read") and can(c, "node", "n", "read")
                else [],
            ),
            visible=lambda r: sorted(e["Service"]["ID"] for e in r.json()),
            hidden=_hidden_services,
        )
        for name in ("web", "db")
    ),
    Case(
        "health state",
        "GET",
        lambda w: "/v1/health/state/any",
        lambda c: (
            200,
            sorted(["serfHealth", *_checks_visible(c)])
            if can(c, "node", "n", "read")
            else [],
        ),
        visible=lambda r: sorted(ch["CheckID"] for ch in r.json()),
        hidden=_hidden_services,
    ),
    # ---- kv
    Case(
        "kv get web", "GET", lambda w: "/v1/kv/web/config", _read("key", "web/config")
    ),
    Case(
        "kv get db",
        "GET",
        lambda w: "/v1/kv/db/config",
        _read("key", "db/config"),
        hidden=_hidden_keys,
    ),
    Case(
        "kv recurse",
        "GET",
        lambda w: "/v1/kv/?recurse",
        _kv_list,
        visible=lambda r: (
            sorted(e["Key"] for e in r.json()) if r.status_code == 200 else None
        ),
        hidden=_hidden_keys,
    ),
    Case(
        "kv keys",
        "GET",
        lambda w: "/v1/kv/?keys",
        _kv_list,
        visible=lambda r: sorted(r.json()) if r.status_code == 200 else None,
        hidden=_hidden_keys,
    ),
    Case(
        "kv put web",
        "PUT",
        lambda w: "/v1/kv/web/config",
        _write("key", "web/config"),
        body=lambda w: "v",
    ),
    Case(
        "kv put db",
        "PUT",
        lambda w: "/v1/kv/db/config",
        _write("key", "db/config"),
        body=lambda w: "v",
    ),
    Case(
        "kv delete",
        "DELETE",
        lambda w: "/v1/kv/web/tmp",
        _write("key", "web/tmp"),
        restore=lambda w: w.mgmt("PUT", "/v1/kv/web/tmp", "v") and None,
    ),
    Case(
        "kv delete recurse",
        "DELETE",
        lambda w: "/v1/kv/web/?recurse",
        _write("key", "web/"),
        restore=lambda w: (
            [w.mgmt("PUT", f"/v1/kv/{k}", "v") for k in ("web/config", "web/tmp")]
            and None
        ),
    ),
    # ---- status
    Case("status leader", "GET", lambda w: "/v1/status/leader", _everyone()),
    Case("status peers", "GET", lambda w: "/v1/status/peers", _everyone()),
    # ---- operator
    Case(
        "operator raft configuration",
        "GET",
        lambda w: "/v1/operator/raft/configuration",
        _read("operator", ""),
    ),
    # ---- operator, usage, config entries (issue 15)
    Case(
        "operator raft peer",
        "DELETE",
        lambda w: "/v1/operator/raft/peer?address=10.0.0.1:8300",
        lambda c: (allowed(can(c, "operator", "", "write"), 400), None),
    ),
    Case(
        "operator raft transfer-leader",
        "POST",
        lambda w: "/v1/operator/raft/transfer-leader",
        lambda c: (allowed(can(c, "operator", "", "write"), 400), None),
    ),
    Case(
        "operator keyring list",
        "GET",
        lambda w: "/v1/operator/keyring",
        lambda c: (allowed(can(c, "keyring", "", "read"), 400), None),
    ),
    Case(
        "operator keyring use",
        "PUT",
        lambda w: "/v1/operator/keyring",
        lambda c: (allowed(can(c, "keyring", "", "write"), 400), None),
        body=lambda w: {"Key": "8CooQRX1+VK7MsQQK6lx2LhumpSfQzUjE63HdAu2hgA="},
    ),
    Case(
        "operator autopilot configuration",
        "GET",
        lambda w: "/v1/operator/autopilot/configuration",
        _read("operator", ""),
    ),
    Case(
        "operator autopilot configuration put",
        "PUT",
        lambda w: "/v1/operator/autopilot/configuration",
        _write("operator", ""),
        body=lambda w: {"CleanupDeadServers": True, "LastContactThreshold": "200ms"},
    ),
    Case(
        "operator autopilot health",
        "GET",
        lambda w: "/v1/operator/autopilot/health",
        _read("operator", ""),
    ),
    Case(
        "operator autopilot state",
        "GET",
        lambda w: "/v1/operator/autopilot/state",
        _read("operator", ""),
    ),
    Case(
        "operator usage", "GET", lambda w: "/v1/operator/usage", _read("operator", "")
    ),
    Case(
        "config entry read",
        "GET",
        lambda w: "/v1/config/service-defaults/web",
        lambda c: (allowed(can(c, "service", "web", "read"), 404), None),
    ),
    Case(
        "config entry put",
        "PUT",
        lambda w: "/v1/config",
        _write("service", "web"),
        body=lambda w: {"Kind": "service-defaults", "Name": "web"},
        restore=lambda w: w.mgmt("DELETE", "/v1/config/service-defaults/web") and None,
    ),
    Case(
        "config proxy-defaults put",
        "PUT",
        lambda w: "/v1/config",
        _write("operator", ""),
        body=lambda w: {"Kind": "proxy-defaults", "Name": "global"},
        restore=lambda w: w.mgmt("DELETE", "/v1/config/proxy-defaults/global") and None,
    ),
    Case("config list", "GET", lambda w: "/v1/config/proxy-defaults", _everyone()),
    Case(
        "config entry delete",
        "DELETE",
        lambda w: "/v1/config/service-defaults/web",
        _write("service", "web"),
    ),
    # ---- Connect data (issue 15)
    Case(
        "catalog connect",
        "GET",
        lambda w: "/v1/catalog/connect/web",
        _read("service", "web"),
    ),
    Case(
        "health connect",
        "GET",
        lambda w: "/v1/health/connect/web",
        _read("service", "web"),
    ),
    Case(
        "health ingress",
        "GET",
        lambda w: "/v1/health/ingress/web",
        _read("service", "web"),
    ),
    Case(
        "catalog gateway services",
        "GET",
        lambda w: "/v1/catalog/gateway-services/web",
        _read("service", "web"),
    ),
    # ---- intentions, Connect CA, discovery chain, force-leave (issue 15)
    Case("intentions list", "GET", lambda w: "/v1/connect/intentions", _everyone()),
    Case(
        "intention create",
        "POST",
        lambda w: "/v1/connect/intentions",
        _write("service", "web"),
        body=lambda w: {
            "SourceName": "db",
            "DestinationName": "web",
            "Action": "allow",
        },
        restore=lambda w: (
            w.mgmt("DELETE", "/v1/connect/intentions/exact?source=db&destination=web")
            and None
        ),
    ),
    Case(
        "intention exact read",
        "GET",
        lambda w: "/v1/connect/intentions/exact?source=db&destination=web",
        lambda c: (allowed(can(c, "service", "web", "read"), 404), None),
    ),
    Case(
        "intention exact put",
        "PUT",
        lambda w: "/v1/connect/intentions/exact?source=db&destination=web",
        _write("service", "web"),
        body=lambda w: {"Action": "deny"},
        restore=lambda w: (
            w.mgmt("DELETE", "/v1/connect/intentions/exact?source=db&destination=web")
            and None
        ),
    ),
    Case(
        "intention exact delete",
        "DELETE",
        lambda w: "/v1/connect/intentions/exact?source=db&destination=web",
        _write("service", "web"),
    ),
    Case(
        "intention check",
        "GET",
        lambda w: "/v1/connect/intentions/check?source=db&destination=web",
        _read("service", "web"),
    ),
    Case(
        "intention match",
        "GET",
        lambda w: "/v1/connect/intentions/match?by=destination&name=web",
        _everyone(),
    ),
    Case(
        "intention by id",
        "GET",
        lambda w: "/v1/connect/intentions/00000000-0000-0000-0000-000000000001",
        lambda c: (allowed(can(c, "operator", "", "read"), 404), None),
    ),
    Case("ca roots", "GET", lambda w: "/v1/connect/ca/roots", _everyone()),
    Case("agent ca roots", "GET", lambda w: "/v1/agent/connect/ca/roots", _everyone()),
    Case(
        "ca configuration",
        "GET",
        lambda w: "/v1/connect/ca/configuration",
        _read("operator", ""),
    ),
    Case(
        "ca configuration put",
        "PUT",
        lambda w: "/v1/connect/ca/configuration",
        _write("operator", ""),
        body=lambda w: {"Provider": "consul", "Config": {"LeafCertTTL": "72h"}},
    ),
    Case(
        "ca leaf",
        "GET",
        lambda w: "/v1/agent/connect/ca/leaf/web",
        _write("service", "web"),
    ),
    Case(
        "discovery chain",
        "GET",
        lambda w: "/v1/discovery-chain/web",
        _read("service", "web"),
    ),
    Case(
        "agent force-leave",
        "PUT",
        lambda w: "/v1/agent/force-leave/nowhere",
        lambda c: (allowed(can(c, "operator", "", "write"), 400), None),
    ),
    Case(
        "agent connect authorize",
        "POST",
        lambda w: "/v1/agent/connect/authorize",
        _write("service", "web"),
        body=lambda w: {
            "Target": "web",
            "ClientCertURI": "spiffe://x.consul/ns/default/dc/dc1/svc/db",
        },
    ),
    Case("agent version", "GET", lambda w: "/v1/agent/version", _everyone()),
    # ---- Eureka's API on the same catalog
    *(
        Case(f"eureka {what}", "GET", lambda w, path=path: path, _every_service_read)
        for what, path in (
            ("apps", "/eureka/apps"),
            ("delta", "/eureka/apps/delta"),
            ("instance", "/eureka/instances/web-1"),
            ("vips", "/eureka/vips/web"),
            ("svips", "/eureka/v2/svips/web"),
        )
    ),
    Case("eureka app", "GET", lambda w: "/eureka/apps/WEB", _read("service", "web")),
    Case(
        "eureka register",
        "POST",
        lambda w: "/eureka/apps/WEB",
        lambda c: (allowed(can(c, "service", "web", "write"), 204), None),
        body=lambda w: EUREKA_INSTANCE,
        restore=lambda w: w.mgmt("DELETE", "/eureka/apps/WEB/web-eu") and None,
    ),
    # ---- acl
    Case("acl bootstrap", "PUT", lambda w: "/v1/acl/bootstrap", _everyone(403)),
    Case("acl tokens", "GET", lambda w: "/v1/acl/tokens", _acl("read")),
    Case(
        "acl token create",
        "PUT",
        lambda w: "/v1/acl/token",
        _acl("write"),
        body=lambda w: {"Description": "matrix-new"},
        restore=_drop_created("token"),
    ),
    Case(
        "acl token self",
        "GET",
        lambda w: "/v1/acl/token/self",
        lambda c: (403 if c == "anon" else 200, None),
    ),
    Case(
        "acl token read",
        "GET",
        lambda w: f"/v1/acl/token/{_probe_token(w)}",
        _acl("read"),
    ),
    Case(
        "acl token update",
        "PUT",
        lambda w: f"/v1/acl/token/{_probe_token(w)}",
        _acl("write"),
        body=lambda w: {"Description": "matrix-probe"},
    ),
    Case(
        "acl token clone",
        "PUT",
        lambda w: f"/v1/acl/token/{_probe_token(w)}/clone",
        _acl("write"),
        body=lambda w: {"Description": "matrix-new"},
        restore=_drop_created("token"),
    ),
    Case(
        "acl token delete",
        "DELETE",
        lambda w: f"/v1/acl/token/{_probe_token(w)}",
        _acl("write"),
    ),
    Case("acl policies", "GET", lambda w: "/v1/acl/policies", _acl("read")),
    Case(
        "acl policy create",
        "PUT",
        lambda w: "/v1/acl/policy",
        _acl("write"),
        body=lambda w: {"Name": "matrix-new"},
        restore=_drop_created("policy"),
    ),
    Case(
        "acl policy read",
        "GET",
        lambda w: f"/v1/acl/policy/{_probe_policy(w)}",
        _acl("read"),
    ),
    Case(
        "acl policy by name",
        "GET",
        lambda w: "/v1/acl/policy/name/global-management",
        _acl("read"),
    ),
    Case(
        "acl policy update",
        "PUT",
        lambda w: f"/v1/acl/policy/{_probe_policy(w)}",
        _acl("write"),
        body=lambda w: {"Name": "matrix-probe", "Description": "updated"},
    ),
    Case(
        "acl policy delete",
        "DELETE",
        lambda w: f"/v1/acl/policy/{_probe_policy(w)}",
        _acl("write"),
    ),
    Case("acl roles", "GET", lambda w: "/v1/acl/roles", _acl("read")),
    Case(
        "acl role create",
        "PUT",
        lambda w: "/v1/acl/role",
        _acl("write"),
        body=lambda w: {"Name": "matrix-new"},
        restore=_drop_created("role"),
    ),
    Case(
        "acl role read", "GET", lambda w: f"/v1/acl/role/{_probe_role(w)}", _acl("read")
    ),
    Case(
        "acl role by name",
        "GET",
        lambda w: (_probe_role(w), "/v1/acl/role/name/matrix-probe")[1],
        _acl("read"),
    ),
    Case(
        "acl role update",
        "PUT",
        lambda w: f"/v1/acl/role/{_probe_role(w)}",
        _acl("write"),
        body=lambda w: {"Name": "matrix-probe", "Description": "updated"},
    ),
    Case(
        "acl role delete",
        "DELETE",
        lambda w: f"/v1/acl/role/{_probe_role(w)}",
        _acl("write"),
    ),
    Case("acl auth methods", "GET", lambda w: "/v1/acl/auth-methods", _acl("read")),
    Case(
        "acl auth method create",
        "PUT",
        lambda w: "/v1/acl/auth-method",
        _acl("write"),
        body=lambda w: {
            "Name": "matrix-new",
            "Type": "jwt",
            "Config": {"JWTValidationPubKeys": [JWT_KEY]},
        },
        restore=_drop_created("method"),
    ),
    Case(
        "acl auth method read",
        "GET",
        lambda w: f"/v1/acl/auth-method/{_probe_method(w)}",
        _acl("read"),
    ),
    Case(
        "acl auth method update",
        "PUT",
        lambda w: f"/v1/acl/auth-method/{_probe_method(w)}",
        _acl("write"),
        body=lambda w: {
            "Type": "jwt",
            "Description": "updated",
            "Config": {"JWTValidationPubKeys": [JWT_KEY]},
        },
    ),
    Case(
        "acl auth method delete",
        "DELETE",
        lambda w: f"/v1/acl/auth-method/{_probe_method(w)}",
        _acl("write"),
    ),
    Case("acl binding rules", "GET", lambda w: "/v1/acl/binding-rules", _acl("read")),
    Case(
        "acl binding rule create",
        "PUT",
        lambda w: "/v1/acl/binding-rule",
        _acl("write"),
        body=lambda w: {
            "AuthMethod": _probe_method(w),
            "Description": "matrix-new",
            "BindType": "service",
            "BindName": "web",
        },
        restore=_drop_created("rule"),
    ),
    Case(
        "acl binding rule read",
        "GET",
        lambda w: f"/v1/acl/binding-rule/{_probe_rule(w)}",
        _acl("read"),
    ),
    Case(
        "acl binding rule update",
        "PUT",
        lambda w: f"/v1/acl/binding-rule/{_probe_rule(w)}",
        _acl("write"),
        body=lambda w: {
            "AuthMethod": "matrix-probe",
            "BindType": "service",
            "BindName": "web",
            "Description": "x",
        },
    ),
    Case(
        "acl binding rule delete",
        "DELETE",
        lambda w: f"/v1/acl/binding-rule/{_probe_rule(w)}",
        _acl("write"),
    ),
    Case(
        "acl login",
        "POST",
        lambda w: "/v1/acl/login",
        _everyone(403),
        body=lambda w: {"AuthMethod": _probe_method(w), "BearerToken": "not.a.jwt"},
    ),
    Case("acl logout", "POST", lambda w: "/v1/acl/logout", _everyone(403)),
    Case(
        "acl templated policies",
        "GET",
        lambda w: "/v1/acl/templated-policies",
        _acl("read"),
    ),
    Case(
        "acl templated policy",
        "GET",
        lambda w: "/v1/acl/templated-policy/name/builtin/service",
        _acl("read"),
    ),
    Case(
        "acl templated policy preview",
        "POST",
        lambda w: "/v1/acl/templated-policy/preview/builtin/service",
        _acl("read"),
        body=lambda w: {"Name": "web"},
    ),
    # issue 15b: snapshots (a management token), events, coordinates
    Case("snapshot save", "GET", lambda w: "/v1/snapshot", _acl("write")),
    Case(
        "snapshot restore (not an archive)",
        "PUT",
        lambda w: "/v1/snapshot",
        lambda caller: (allowed(can(caller, "acl", "", "write"), 400), None),
        body=lambda w: {"not": "an archive"},
    ),
    # ---- the web dashboard (waypost.ui)
    Case("ui page", "GET", lambda w: "/ui/", _everyone()),
    Case("ui redirect", "GET", lambda w: "/ui", _everyone(301)),
    Case(
        "ui services",
        "GET",
        lambda w: "/v1/internal/ui/services",
        lambda c: (200, _visible_services(c)),
        visible=lambda r: sorted(s["Name"] for s in r.json()),
        hidden=_hidden_services,
    ),
    Case(
        "ui nodes",
        "GET",
        lambda w: "/v1/internal/ui/nodes",
        lambda c: (200, 2 if can(c, "node", "n", "read") else 0),
        visible=lambda r: len(r.json()),
        hidden=_hidden_services,
    ),
    Case("ui ring", "GET", lambda w: "/ui/api/ring", _read("operator", "")),
    Case(
        "event fire",
        "PUT",
        lambda w: "/v1/event/fire/deploy",
        _write("event", "deploy"),
    ),
    Case("event list", "GET", lambda w: "/v1/event/list", _everyone()),
    Case("agent reload", "PUT", lambda w: "/v1/agent/reload", _write("agent", "node")),
    Case(
        "coordinate datacenters",
        "GET",
        lambda w: "/v1/coordinate/datacenters",
        _everyone(),
    ),
    Case(
        "coordinate nodes",
        "GET",
        lambda w: "/v1/coordinate/nodes",
        lambda c: (200, 1 if can(c, "node", "n", "read") else 0),
        visible=lambda r: len(r.json()),
    ),
    Case(
        "coordinate node",
        "GET",
        lambda w: f"/v1/coordinate/node/{w.node}",
        _read("node", "n"),
    ),
    Case(
        "coordinate update",
        "PUT",
        lambda w: "/v1/coordinate/update",
        _write("node", "n"),
        body=lambda w: {
            "Node": w.node,
            "Coord": {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0, "Height": 1e-5},
        },
    ),
]

# ---- sessions (issue 15): `session` rules on the session's node; only the
# management token has any here.


def _probe_session(world: World) -> str:
    for session in world.mgmt("GET", "/v1/session/list").json():
        if session["Name"] == "matrix-probe":
            return str(session["ID"])
    created = world.mgmt("PUT", "/v1/session/create", {"Name": "matrix-probe"})
    return str(created.json()["ID"])


def _drop_new_sessions(world: World) -> None:
    for session in world.mgmt("GET", "/v1/session/list").json():
        if session["Name"] == "matrix-new":
            world.mgmt("PUT", f"/v1/session/destroy/{session['ID']}")


def _sessions_seen(caller: str) -> tuple[int, object]:
    return 200, ["matrix-probe"] if can(caller, "session", "n", "read") else []


def _session_names(response: httpx.Response) -> object:
    return sorted(s["Name"] for s in response.json())


CASES += [
    Case(
        "session create",
        "PUT",
        lambda w: "/v1/session/create",
        _write("session", "n"),
        body=lambda w: {"Name": "matrix-new"},
        restore=_drop_new_sessions,
    ),
    Case(
        "session renew",
        "PUT",
        lambda w: f"/v1/session/renew/{_probe_session(w)}",
        _write("session", "n"),
    ),
    Case(
        "session destroy",
        "PUT",
        lambda w: f"/v1/session/destroy/{_probe_session(w)}",
        _write("session", "n"),
    ),
    Case(
        "session info",
        "GET",
        lambda w: f"/v1/session/info/{_probe_session(w)}",
        _sessions_seen,
        visible=_session_names,
    ),
    Case(
        "session node",
        "GET",
        lambda w: f"/v1/session/node/{w.node}",
        _sessions_seen,
        visible=_session_names,
    ),
    Case(
        "session list",
        "GET",
        lambda w: "/v1/session/list",
        _sessions_seen,
        visible=_session_names,
    ),
    # ---- transactions: every operation's own rule
    Case(
        "txn kv read",
        "PUT",
        lambda w: "/v1/txn",
        _read("key", "web/config"),
        body=lambda w: [{"KV": {"Verb": "get", "Key": "web/config"}}],
    ),
    Case(
        "txn kv write",
        "PUT",
        lambda w: "/v1/txn",
        _write("key", "web/tmp"),
        body=lambda w: [{"KV": {"Verb": "set", "Key": "web/tmp", "Value": "eA=="}}],
        restore=lambda w: w.mgmt("PUT", "/v1/kv/web/tmp", "v") and None,
    ),
]

LEAVE = Case("agent leave", "PUT", lambda w: "/v1/agent/leave", _write("agent", "node"))


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    args = [
        "--acl-enabled",
        "--acl-default-policy",
        "deny",
        "--acl-initial-management",
        MGMT,
    ]
    with (
        run_agent(extra_args=args) as agent,
        httpx.Client(base_url=agent.url, timeout=30) as http,
    ):
        yield _set_up(agent, http)


def _run(world: World, case: Case, caller: str, via: str) -> list[str]:
    """One request; the list of what went wrong (empty: as the policy says)."""
    problems: list[str] = []
    path = case.path(world)
    body = case.body(world) if case.body is not None else None
    before = world.snapshot()
    response = world.call(caller, case.method, path, body, via=via)
    status, visible = case.expect(caller)
    where = f"{case.name} as {caller} ({case.method} {path})"
    if response.status_code != status:
        problems.append(
            f"{where}: status {response.status_code}, want {status}:"
            f" {response.text[:200]}"
        )
    if response.status_code == 403:
        message = response.text
        if not (message.startswith("Permission denied") or message == "ACL not found"):
            problems.append(f"{where}: 403 not in Consul's words: {message!r}")
        if MGMT in message or any(
            secret in message for secret in world.tokens.values() if secret
        ):
            problems.append(f"{where}: a secret echoed in an error")
    if (
        case.visible is not None
        and response.status_code == status
        and visible is not None
    ):
        shown = case.visible(response)
        if shown != visible:
            problems.append(f"{where}: shows {shown}, want {visible}")
    # A refusal names what was asked for (Consul's words); an answer must
    # not show anything the caller may not read.
    for name in case.hidden(caller) if response.status_code < 400 else ():
        if name in response.text:
            problems.append(f"{where}: unauthorized read: {name} in the answer")
    after = world.snapshot()
    if response.status_code >= 400 and after != before:
        problems.append(f"{where}: refused, yet the state changed (unauthorized write)")
    if response.status_code < 400 and case.restore is not None:
        case.restore(world)
    return problems


@pytest.mark.timeout(1200)
def test_every_route_for_every_caller(world: World) -> None:
    """The matrix: routes × callers; prints the number of cases."""
    problems: list[str] = []
    cases = 0
    vias = {"read": "query", "write": "bearer"}  # the three ways to send a token
    for case in CASES:
        for caller in CALLERS:
            problems += _run(world, case, caller, vias.get(caller, "header"))
            cases += 1
    # Last, since the management token's call stops the agent.
    for caller in CALLERS:
        problems += _run_leave(world, caller)
        cases += 1
    print(
        f"\naccess matrix: {len(CASES) + 1} route cases x {len(CALLERS)} callers ="
        f" {cases} cases, {len(problems)} problems"
    )
    missing = {_name(route[2]) for route in ROUTES} - world.handlers_hit
    assert not missing, f"routes the matrix never called: {sorted(missing)}"
    assert not problems, "\n".join(problems)


def _run_leave(world: World, caller: str) -> list[str]:
    if caller != "mgmt":
        return _run(world, LEAVE, caller, "header")
    response = world.call("mgmt", "PUT", "/v1/agent/leave")
    if response.status_code != 200:
        return [f"agent leave as mgmt: {response.status_code} {response.text}"]
    assert world.agent.process is not None
    world.agent.process.wait(timeout=30)
    return []


def _name(handler: object) -> str:
    return f"{handler.__module__}.{handler.__qualname__}"  # type: ignore[attr-defined]
