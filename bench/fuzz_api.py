"""schemathesis against real agents: generated requests, then a replay.

    python bench/fuzz_api.py [--examples N] [--store sqlite|dev|both] [--seed S]
                             [--quick] [--json PATH]

For each store, one `waypost agent` (ACLs on, default deny, the management
token sent with every request) gets requests that schemathesis generates
from our OpenAPI description (`waypost openapi`): for every operation but
`/v1/agent/leave` and `/v1/agent/monitor`, N schema-valid and N
schema-violating examples. Each answer is checked: no 5xx, status codes,
content types, headers and bodies as described, schema-violating input
refused. The agent must still answer afterwards and have logged no bug.

Then every write the agent accepted (a 2xx to a PUT, POST or DELETE) is
replayed, in order, on a fresh agent of the same store: each must be
accepted again, and both agents' state must be equal (nodes, services,
checks, KV, ACL objects; indexes, check statuses and outputs, IDs and
secrets left out: they depend on time and chance). So the catalog holds
exactly what the accepted requests wrote, and the refused ones changed
nothing.

Requests are adjusted before they are sent, so that the run stays on this
machine and finishes: active checks' targets point at a closed loopback
port, `?wait=` is 10ms when `?index=` would block, durations that would
reap services or expire tokens during the run are a day long, and the
token is the management token.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed as hypothesis_seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks as st_checks

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from _results import environment, write_section  # noqa: E402

from waypost.durations import parse_duration  # noqa: E402
from waypost.http.openapi import build  # noqa: E402
from waypost.testing import AgentProcess, run_agent  # noqa: E402

TOKEN = "8f6c5f2e-6d2b-4b58-9d57-0b6f0b0c1f00"
NODE = "fuzz-agent"
SKIPPED = {"/v1/agent/leave", "/v1/agent/monitor"}
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
    st_checks.negative_data_rejection,
]
#: Where an active check would probe: a closed port on loopback.
PROBE_TARGETS = {
    "http": "http://127.0.0.1:9/",
    "tcp": "127.0.0.1:9",
    "udp": "127.0.0.1:9",
    "grpc": "127.0.0.1:9",
    "h2ping": "127.0.0.1:9",
}
#: Durations whose effect would land during the run (reaping, expiry).
LONG_DURATIONS = {
    "deregistercriticalserviceafter": "24h",
    "expirationttl": "23h",
    "ttl": "24h",  # a session's, or a check's (its status is left out anyway)
}
WRITE_METHODS = {"PUT", "POST", "DELETE"}


@dataclass
class Sent:
    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]
    status: int


@dataclass
class Run:
    store: str
    statuses: Counter[str] = field(default_factory=Counter)
    by_mode: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    writes: list[Sent] = field(default_factory=list)
    requests: int = 0
    server_errors: int = 0
    network_errors: int = 0
    #: Invalid only by unknown query parameters or a raw body's bytes.
    ignored_unknown_parameters: int = 0
    #: Operations of which no example of a mode can be made.
    no_examples: list[str] = field(default_factory=list)
    replay_refused: list[str] = field(default_factory=list)
    state_differences: list[str] = field(default_factory=list)
    alive: bool = False
    bugs_logged: int = 0
    seconds: float = 0.0
    state_sizes: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "requests": self.requests,
            "statuses": dict(sorted(self.statuses.items())),
            "by_mode": dict(sorted(self.by_mode.items())),
            "server_errors": self.server_errors,
            "network_errors": self.network_errors,
            "accepted_unknown_query_parameters": self.ignored_unknown_parameters,
            "no_examples": self.no_examples,
            "failures": dict(sorted(self.failures.items())),
            "failure_examples": self.examples,
            "accepted_writes": len(self.writes),
            "replay_refused": self.replay_refused[:20],
            "state_differences": self.state_differences[:20],
            "state_sizes": self.state_sizes,
            "alive": self.alive,
            "bugs_logged": self.bugs_logged,
            "seconds": round(self.seconds, 1),
        }


def _agent(store: str) -> Iterator[AgentProcess]:
    args = [
        *("--acl-enabled", "--acl-default-policy", "deny"),
        *("--acl-initial-management", TOKEN, "--dns-addr", ""),
    ]
    return run_agent(dev=store == "dev", node=NODE, extra_args=args)  # type: ignore[return-value]


def _fold(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def _adjust_body(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            folded = _fold(str(key))
            if folded in PROBE_TARGETS and isinstance(item, str) and item:
                item = PROBE_TARGETS[folded]
            elif folded in LONG_DURATIONS and _is_duration(item):
                item = LONG_DURATIONS[folded]
            out[key] = _adjust_body(item)
        return out
    if isinstance(value, list):
        return [_adjust_body(item) for item in value]
    return value


def _is_duration(value: object) -> bool:
    """A value the agent would take as a non-zero duration (others stay)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value > 0
    if not isinstance(value, str) or not value:
        return False
    try:
        return parse_duration(value) > 0
    except ValueError:
        return False


def _adjust(case: Any) -> None:
    """Keep the run on loopback, short, and under the management token."""
    query = case.query
    if isinstance(query, dict):
        query.pop("token", None)
        if "index" in query:
            query["wait"] = "10ms"
    headers = case.headers if isinstance(case.headers, dict) else {}
    for name in list(headers):
        if name.lower() in ("x-consul-token", "authorization"):
            del headers[name]
    case.headers = headers
    if isinstance(case.body, dict | list):
        case.body = _adjust_body(case.body)


def fuzz(
    agent: AgentProcess, run: Run, examples: int, seed: int, only: str = ""
) -> None:
    schema = schemathesis.openapi.from_dict(build())
    session = requests.Session()
    operations = [r.ok() for r in schema.get_all_operations()]
    for operation in operations:
        if operation.path in SKIPPED or not re.search(only, operation.label):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(agent, run, session, operation, mode, examples, seed)


def _fuzz_operation(
    agent: AgentProcess,
    run: Run,
    session: requests.Session,
    operation: Any,
    mode: GenerationMode,
    examples: int,
    seed: int,
) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Any) -> None:
        _adjust(case)
        try:
            response = case.call(
                base_url=agent.url,
                session=session,
                headers={"X-Consul-Token": TOKEN},
                timeout=30,
            )
        except requests.RequestException as exc:
            run.network_errors += 1
            run.examples.setdefault(f"network {label}", repr(exc)[:300])
            return
        run.requests += 1
        run.by_mode[mode.value] += 1
        status = response.status_code
        run.statuses[str(status)] += 1
        if status >= 500:
            run.server_errors += 1
        request = response.request
        method = str(request.method)
        if method in WRITE_METHODS and 200 <= status < 300:
            body = request.body
            run.writes.append(
                Sent(
                    method=method,
                    url=str(request.url).removeprefix(agent.url),
                    body=body.encode() if isinstance(body, str) else body,
                    headers={
                        k: v
                        for k, v in request.headers.items()
                        if k.lower() in ("content-type", "x-consul-token")
                    },
                    status=status,
                )
            )
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseException as exc:  # schemathesis' FailureGroup, one per check
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            for name, why in _failed_checks(exc):
                if _is_ignored_by_design(why):
                    run.ignored_unknown_parameters += 1
                    continue
                key = f"{name}: {label}"
                run.failures[key] += 1
                if key not in run.examples:
                    run.examples[key] = (
                        f"{method} {request.url} body={str(request.body)[:300]!r}"
                        f" -> {status} {response.content[:300]!r}: {why[:600]}"
                    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            one()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
            run.no_examples.append(f"{mode.value} {label}")


#: What makes a request schema-violating and yet acceptable, as in Consul:
#: query parameters nobody reads are ignored, and a raw body (a KV value,
#: an event's payload) is any bytes.
_BY_DESIGN = {
    "- query: violates `additionalProperties`",
    "- body: violates `format`",
}


def _is_ignored_by_design(message: str) -> bool:
    if "Invalid component:" not in message:
        return False
    parts = message.split("Invalid component:", 1)[1].strip().splitlines()
    return bool(parts) and {p.strip() for p in parts} <= _BY_DESIGN


def _failed_checks(exc: BaseException) -> list[tuple[str, str]]:
    """(title, message) of each failed check."""
    inner = getattr(exc, "exceptions", None) or [exc]
    return [
        (getattr(e, "title", type(e).__name__), str(getattr(e, "message", e)))
        for e in inner
    ]


def replay(agent: AgentProcess, run: Run) -> None:
    with httpx.Client(base_url=agent.url, timeout=30) as http:
        for sent in run.writes:
            response = http.request(
                sent.method, sent.url, content=sent.body, headers=sent.headers
            )
            if not 200 <= response.status_code < 300:
                run.replay_refused.append(
                    f"{sent.method} {sent.url} -> {response.status_code}"
                    f" {response.text[:200]!r}"
                )


# ---------------------------------------------------------------- state

_VOLATILE = {"CreateIndex", "ModifyIndex", "Status", "Output", "LockIndex"}
_ACL_VOLATILE = {
    *("CreateIndex", "ModifyIndex", "ID", "AccessorID", "SecretID"),
    *("CreateTime", "ExpirationTime", "Hash"),
}


def _drop(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _drop(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_drop(v, keys) for v in value]
    return value


def _sorted(items: list[Any]) -> list[Any]:
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


def state(agent: AgentProcess) -> dict[str, Any]:
    """Everything a write can change, read over HTTP, time-free."""
    headers = {"X-Consul-Token": TOKEN}
    with httpx.Client(base_url=agent.url, timeout=30, headers=headers) as http:

        def get(path: str) -> Any:
            response = http.get(path)
            if response.status_code == 404:
                return []
            response.raise_for_status()
            return response.json()

        nodes = get("/v1/catalog/nodes")
        services = {}
        for name in get("/v1/catalog/services"):
            rows = get(f"/v1/catalog/service/{quote(name, safe='')}")
            services[name] = _sorted(_drop(rows, _VOLATILE))
        return {
            "nodes": _sorted(_drop(nodes, _VOLATILE)),
            "services": services,
            "checks": _sorted(_drop(get("/v1/health/state/any"), _VOLATILE)),
            "kv": _drop(get("/v1/kv/?recurse"), _VOLATILE),
            "agent_services": _drop(get("/v1/agent/services"), _VOLATILE),
            **{
                kind: _sorted(_drop(get(f"/v1/acl/{kind}"), _ACL_VOLATILE))
                for kind in ("tokens", "policies", "roles", "auth-methods")
            },
            "binding-rules": _sorted(
                _drop(get("/v1/acl/binding-rules"), _ACL_VOLATILE)
            ),
        }


def compare(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    differences = []
    for part in first:
        a, b = first[part], second[part]
        if a != b:
            a_items = a if isinstance(a, list) else sorted(a.items())
            b_items = b if isinstance(b, list) else sorted(b.items())
            only_a = [x for x in a_items if x not in b_items]
            only_b = [x for x in b_items if x not in a_items]
            differences.append(
                f"{part}: fuzzed agent only {json.dumps(only_a)[:600]};"
                f" replayed agent only {json.dumps(only_b)[:600]}"
            )
    return differences


def alive(agent: AgentProcess) -> bool:
    if agent.process is None or agent.process.poll() is not None:
        return False
    try:
        response = httpx.get(
            f"{agent.url}/v1/status/leader",
            headers={"X-Consul-Token": TOKEN},
            timeout=10,
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def run_store(store: str, examples: int, seed: int, only: str = "") -> Run:
    run = Run(store=store)
    started = time.monotonic()
    with ExitStack() as stack:
        fuzzed = stack.enter_context(_agent(store))
        fuzz(fuzzed, run, examples, seed, only)
        run.alive = alive(fuzzed)
        run.bugs_logged = sum("bug:" in line for line in fuzzed.log_lines)
        if run.alive:
            first = state(fuzzed)
            replayed = stack.enter_context(_agent(store))
            replay(replayed, run)
            second = state(replayed)
            run.state_differences = compare(first, second)
            run.state_sizes = {
                k: len(v) for k, v in first.items() if isinstance(v, list | dict)
            }
    run.seconds = time.monotonic() - started
    return run


def _markdown(results: list[dict[str, Any]], examples: int, seed: int) -> str:
    lines = [
        f"### schemathesis against real agents ({environment()},"
        f" schemathesis {schemathesis.SCHEMATHESIS_VERSION})",
        "",
        f"`python bench/fuzz_api.py --examples {examples} --seed {seed}`: for"
        " every operation but leave and monitor, that many schema-valid and"
        " schema-violating examples; ACLs on; then the accepted writes"
        " replayed on a fresh agent and both states compared.",
        "",
        "| store | requests (valid / invalid) | statuses | 5xx | failed checks"
        " | accepted writes | replay refused | state differences | alive,"
        " bugs logged | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        statuses = ", ".join(f"{k}: {v:,}" for k, v in r["statuses"].items())
        modes = r["by_mode"]
        lines.append(
            f"| {r['store']} | {r['requests']:,} ({modes.get('positive', 0):,} /"
            f" {modes.get('negative', 0):,}) | {statuses} | {r['server_errors']}"
            f" | {sum(r['failures'].values())} | {r['accepted_writes']:,}"
            f" | {len(r['replay_refused'])} | {len(r['state_differences'])}"
            f" | {'yes' if r['alive'] else 'NO'}, {r['bugs_logged']}"
            f" | {r['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=25, help="per operation")
    parser.add_argument("--store", choices=("sqlite", "dev", "both"), default="both")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="5 examples")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--only", default="", help="operations matching (regex)")
    parser.add_argument(
        "--no-write", action="store_true", help="leave bench/RESULTS.md alone"
    )
    args = parser.parse_args()
    examples = 5 if args.quick else args.examples
    stores = ("sqlite", "dev") if args.store == "both" else (args.store,)
    results = [
        run_store(store, examples, args.seed, args.only).summary() for store in stores
    ]
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    if not args.quick and not args.no_write and not args.only:
        write_section("fuzz", _markdown(results, examples, args.seed))
    ok = all(
        r["server_errors"] == 0
        and r["network_errors"] == 0
        and not r["failures"]
        and r["alive"]
        and r["bugs_logged"] == 0
        and not r["replay_refused"]
        and not r["state_differences"]
        for r in results
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
