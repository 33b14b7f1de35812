"""ACLs end to end on real agents: JWT login that really checks signatures,
answers cached per token, blocking queries per token, durability across a
restart, expiry, the client and CLI sending their token, no secret in logs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from waypost.client import Client
from waypost.exceptions import PermissionDenied
from waypost.testing import AgentProcess, run_agent, wait_until

MGMT = uuid.uuid4().hex
ACL_ARGS = ["--acl-enabled", "--acl-default-policy", "deny", "--acl-initial-management"]


@pytest.fixture
def acl_agent() -> Iterator[AgentProcess]:
    with run_agent(extra_args=[*ACL_ARGS, MGMT]) as agent:
        yield agent


def _http(agent: AgentProcess, token: str = "") -> httpx.Client:
    headers = {"X-Consul-Token": token} if token else {}
    return httpx.Client(base_url=agent.url, headers=headers, timeout=30)


def _token(agent: AgentProcess, rules: str) -> dict[str, object]:
    with _http(agent, MGMT) as http:
        name = f"p-{uuid.uuid4().hex[:8]}"
        policy = http.put("/v1/acl/policy", json={"Name": name, "Rules": rules})
        assert policy.status_code == 200, policy.text
        token = http.put("/v1/acl/token", json={"Policies": [{"Name": name}]})
        assert token.status_code == 200, token.text
        return dict(token.json())


def _key_pair() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        .decode()
    )
    return key, pem


def _jwt(key: rsa.RSAPrivateKey, **claims: object) -> str:
    now = int(time.time())
    body = {"iss": "https://issuer.test", "sub": "web", "iat": now, "exp": now + 300}
    body.update(claims)
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


def _set_up_jwt(http: httpx.Client, config: dict[str, object]) -> None:
    method = http.put(
        "/v1/acl/auth-method",
        json={
            "Name": "jwt",
            "Type": "jwt",
            "Config": {
                "BoundIssuer": "https://issuer.test",
                "ClaimMappings": {"sub": "service"},
                **config,
            },
        },
    )
    assert method.status_code == 200, method.text
    rule = http.put(
        "/v1/acl/binding-rule",
        json={
            "AuthMethod": "jwt",
            "Selector": 'value.service == "web"',
            "BindType": "service",
            "BindName": "${value.service}",
        },
    )
    assert rule.status_code == 200, rule.text


def _login(agent: AgentProcess, bearer: str) -> httpx.Response:
    with _http(agent) as http:
        return http.post(
            "/v1/acl/login", json={"AuthMethod": "jwt", "BearerToken": bearer}
        )


@pytest.mark.parametrize("keys", ["static", "jwks-file"])
def test_jwt_login_checks_the_signature_and_binds_a_service_identity(
    acl_agent: AgentProcess, keys: str, tmp_path: Path
) -> None:
    key, pem = _key_pair()
    if keys == "static":
        config: dict[str, object] = {"JWTValidationPubKeys": [pem]}
    else:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwks = tmp_path / "jwks.json"
        jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig"}]}))
        config = {"JWKSURL": f"file://{jwks}"}
    with _http(acl_agent, MGMT) as http:
        _set_up_jwt(http, config)

    logged_in = _login(acl_agent, _jwt(key))
    assert logged_in.status_code == 200, logged_in.text
    token = logged_in.json()
    assert token["AuthMethod"] == "jwt"
    assert token["ServiceIdentities"] == [{"ServiceName": "web"}]
    with _http(acl_agent, str(token["SecretID"])) as http:
        web = http.put("/v1/agent/service/register", json={"Name": "web"})
        db = http.put("/v1/agent/service/register", json={"Name": "db"})
        assert (web.status_code, db.status_code) == (200, 403)
        assert http.post("/v1/acl/logout").status_code == 200
        assert http.get("/v1/acl/token/self").status_code == 403

    forged_key, _ = _key_pair()
    refused = {
        "another key": _jwt(forged_key),
        "expired": _jwt(key, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "wrong issuer": _jwt(key, iss="https://evil.test"),
        "no binding rule matches": _jwt(key, sub="db"),
        "not a JWT": "not.a.jwt",
    }
    for why, bearer in refused.items():
        answer = _login(acl_agent, bearer)
        assert answer.status_code == 403, (why, answer.text)
    with _http(acl_agent, MGMT) as http:
        tokens = http.get("/v1/acl/tokens?authmethod=jwt").json()
    assert tokens == []  # the refused logins created nothing; logout deleted one


def test_an_auth_method_that_could_never_verify_is_refused(
    acl_agent: AgentProcess,
) -> None:
    with _http(acl_agent, MGMT) as http:
        for config in (
            {},
            {"JWTValidationPubKeys": ["not a key"]},
            {"JWKSURL": "https://keys.example/jwks"},
            {"JWTValidationPubKeys": ["x"], "Unknown": 1},
        ):
            answer = http.put(
                "/v1/acl/auth-method",
                json={"Name": "m", "Type": "jwt", "Config": config},
            )
            assert answer.status_code == 400, (config, answer.text)
        assert http.get("/v1/acl/auth-methods").json() == []


def test_answers_are_cached_per_token_wherever_it_is_sent(
    acl_agent: AgentProcess,
) -> None:
    reader = _token(acl_agent, 'service "web" { policy = "read" }')
    secret = str(reader["SecretID"])
    with _http(acl_agent, MGMT) as http:
        for name in ("web", "db"):
            http.put("/v1/agent/service/register", json={"Name": name})
    with _http(acl_agent) as http:
        for _ in range(2):  # the second round is served from the cache
            everything = http.get(
                "/v1/catalog/services", headers={"X-Consul-Token": MGMT}
            )
            by_query = http.get(f"/v1/catalog/services?token={secret}")
            by_header = http.get(
                "/v1/catalog/services", headers={"X-Consul-Token": secret}
            )
            by_bearer = http.get(
                "/v1/catalog/services", headers={"Authorization": f"Bearer {secret}"}
            )
            anonymous = http.get("/v1/catalog/services")
            assert sorted(everything.json()) == ["consul", "db", "web"]
            assert "x-consul-results-filtered-by-acls" not in everything.headers
            for answer in (by_query, by_header, by_bearer):
                assert sorted(answer.json()) == ["web"]
                assert answer.headers["x-consul-results-filtered-by-acls"] == "true"
            assert anonymous.json() == {}


def test_a_policy_change_retires_cached_answers(acl_agent: AgentProcess) -> None:
    token = _token(acl_agent, 'service "web" { policy = "read" }')
    secret = str(token["SecretID"])
    with _http(acl_agent, MGMT) as http:
        http.put("/v1/agent/service/register", json={"Name": "db"})
        assert http.get(f"/v1/catalog/services?token={secret}").json() == {}
        policy_id = token["Policies"][0]["ID"]  # type: ignore[index]
        policy = http.get(f"/v1/acl/policy/{policy_id}").json()
        updated = http.put(
            f"/v1/acl/policy/{policy_id}",
            json={
                "Name": policy["Name"],
                "Rules": 'service_prefix "" { policy = "read" }',
            },
        )
        assert updated.status_code == 200, updated.text
        assert sorted(http.get(f"/v1/catalog/services?token={secret}").json()) == [
            "consul",
            "db",
        ]


def test_a_blocking_query_wakes_with_what_its_token_may_read(
    acl_agent: AgentProcess,
) -> None:
    token = _token(acl_agent, 'service "web" { policy = "read" }')
    secret = str(token["SecretID"])
    with _http(acl_agent, MGMT) as admin, _http(acl_agent, secret) as reader:
        first = reader.get("/v1/catalog/services")
        index = first.headers["x-consul-index"]
        started = time.monotonic()
        import threading

        def register_later() -> None:
            time.sleep(0.3)
            admin.put("/v1/agent/service/register", json={"Name": "web"})

        thread = threading.Thread(target=register_later)
        thread.start()
        woken = reader.get(f"/v1/catalog/services?index={index}&wait=30s")
        thread.join()
        assert time.monotonic() - started < 10
        assert sorted(woken.json()) == ["web"]


def test_acl_state_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    args = [*ACL_ARGS, MGMT]
    with run_agent(dev=False, data_dir=data_dir, extra_args=args) as agent:
        token = _token(agent, 'key_prefix "app/" { policy = "write" }')
        with _http(agent, MGMT) as http:
            before = sorted(t["AccessorID"] for t in http.get("/v1/acl/tokens").json())
    with run_agent(dev=False, data_dir=data_dir, extra_args=args) as agent:
        with _http(agent, str(token["SecretID"])) as http:
            assert http.put("/v1/kv/app/x", content=b"1").status_code == 200
            assert http.put("/v1/kv/other", content=b"1").status_code == 403
        with _http(agent, MGMT) as http:
            after = sorted(t["AccessorID"] for t in http.get("/v1/acl/tokens").json())
            assert http.put("/v1/acl/bootstrap").status_code == 403
    assert after == before  # the initial management token was not made twice


def test_bootstrap_once_when_no_initial_token() -> None:
    with run_agent(
        extra_args=["--acl-enabled", "--acl-default-policy", "deny"]
    ) as agent:
        with _http(agent) as http:
            first = http.put("/v1/acl/bootstrap")
            assert first.status_code == 200, first.text
            second = http.put("/v1/acl/bootstrap")
            assert second.status_code == 403
            assert second.text.startswith(
                "Permission denied: ACL bootstrap no longer allowed"
            )
        secret = first.json()["SecretID"]
        assert first.json()["ID"] == secret
        with _http(agent, secret) as http:
            assert http.get("/v1/acl/tokens").status_code == 200


def test_an_expired_token_is_not_found(acl_agent: AgentProcess) -> None:
    soon = time.time() + 1.5
    expires = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(soon))
        + f".{int(soon % 1 * 1e6):06d}Z"
    )
    with _http(acl_agent, MGMT) as http:
        created = http.put("/v1/acl/token", json={"ExpirationTime": expires})
        assert created.status_code == 200, created.text
        ttl = http.put("/v1/acl/token", json={"ExpirationTTL": "10m"}).json()
        assert "ExpirationTime" in ttl
        too_short = http.put("/v1/acl/token", json={"ExpirationTTL": "1s"})
        assert too_short.status_code == 400
    secret = created.json()["SecretID"]
    with _http(acl_agent, secret) as http:
        assert http.get("/v1/acl/token/self").status_code == 200
        wait_until(
            lambda: http.get("/v1/acl/token/self").status_code == 403, timeout=10
        )
        assert http.get("/v1/acl/token/self").text == "ACL not found"


def test_the_client_and_the_cli_send_their_token(acl_agent: AgentProcess) -> None:
    writer = _token(
        acl_agent,
        'service "api" { policy = "write" }\nnode_prefix "" { policy = "read" }',
    )
    secret = str(writer["SecretID"])
    with Client(acl_agent.url, token=secret) as client:
        client.register_service("api", port=8080)
        assert sorted(client.services()) == ["api"]
    with Client(acl_agent.url) as anonymous, pytest.raises(PermissionDenied):
        anonymous.register_service("api", port=8081)
    for args, env in (
        (["--token", secret], {}),
        ([], {"CONSUL_HTTP_TOKEN": secret}),
        ([], {"WAYPOST_HTTP_TOKEN": secret}),
    ):
        listed = subprocess.run(
            [
                sys.executable,
                "-m",
                "waypost",
                "services",
                "--http-addr",
                acl_agent.url,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", **env},
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        assert "api" in listed.stdout


def test_no_secret_reaches_the_log(acl_agent: AgentProcess) -> None:
    token = _token(acl_agent, 'service "web" { policy = "read" }')
    with _http(acl_agent) as http:
        http.get("/v1/catalog/services", headers={"X-Consul-Token": "wrong-secret-xyz"})
        http.put("/v1/acl/token", headers={"X-Consul-Token": str(token["SecretID"])})
        http.get(f"/v1/kv/x?token={token['SecretID']}")
    log = "\n".join(acl_agent.log_lines)
    assert MGMT not in log
    assert str(token["SecretID"]) not in log
    assert "wrong-secret-xyz" not in log


def test_acl_endpoints_answer_401_when_acls_are_off() -> None:
    with run_agent() as agent, _http(agent) as http:
        for method, path in (("GET", "/v1/acl/tokens"), ("PUT", "/v1/acl/bootstrap")):
            answer = http.request(method, path)
            assert (answer.status_code, answer.text) == (401, "ACL support disabled")
        # and every other route ignores tokens, as before
        assert (
            http.get(
                "/v1/catalog/services", headers={"X-Consul-Token": "x"}
            ).status_code
            == 200
        )


def test_the_compact_answer_is_filtered_like_the_json_one(
    acl_agent: AgentProcess,
) -> None:
    from waypost.compact import MEDIA_TYPE, expand_catalog, expand_health

    reader = _token(
        acl_agent,
        'service "web" { policy = "read" }\nnode_prefix "" { policy = "read" }',
    )
    secret = str(reader["SecretID"])
    with _http(acl_agent, MGMT) as http:
        for name, port in (("web", 1), ("db", 2)):
            http.put(
                "/v1/catalog/register",
                json={
                    "Node": "n1",
                    "Address": "10.0.0.1",
                    "Service": {"Service": name, "ID": f"{name}-x", "Port": port},
                },
            )
    with _http(acl_agent, secret) as http:
        for path, expand in (
            ("/v1/health/service/db", expand_health),
            ("/v1/catalog/service/db", expand_catalog),
            ("/v1/health/service/web", expand_health),
        ):
            answer = http.get(path, headers={"Accept": MEDIA_TYPE})
            assert answer.status_code == 200
            rows = expand(answer.content)
            services = {
                (row.get("Service") or {}).get("Service") or row.get("ServiceName")  # type: ignore[union-attr]
                for row in rows
            }
            assert "db" not in services, path
            if path.endswith("web"):
                assert services == {"web"}
            else:
                assert answer.headers["x-consul-results-filtered-by-acls"] == "true"


def test_dns_answers_with_the_agents_dns_token(acl_agent: AgentProcess) -> None:
    """Consul's rule: DNS reads with the agent's `dns` token, else its
    `default` one, else the anonymous token; what it may not read is NXDOMAIN."""
    import dns.rcode

    from tests.dns.support import addresses, ask

    with _http(acl_agent, MGMT) as http:
        http.put(
            "/v1/agent/service/register", json={"Name": "web", "Address": "10.1.1.1"}
        )
        http.put(
            "/v1/agent/service/register", json={"Name": "db", "Address": "10.1.1.2"}
        )
    assert ask(acl_agent, "web.service.consul").rcode() == dns.rcode.NXDOMAIN
    reader = _token(
        acl_agent,
        'service "web" { policy = "read" }\nnode_prefix "" { policy = "read" }',
    )
    with _http(acl_agent, MGMT) as http:
        set_dns = http.put("/v1/agent/token/dns", json={"Token": reader["SecretID"]})
        assert set_dns.status_code == 200
    assert addresses(ask(acl_agent, "web.service.consul")) == {"10.1.1.1"}
    assert ask(acl_agent, "db.service.consul").rcode() == dns.rcode.NXDOMAIN
