"""HAProxy (Debian's haproxy) discovering backends through our DNS:
`server-template` on the RFC 2782 SRV name, a `resolvers` section pointing at
the agent. It routes to the registered instances and stops routing to one
whose check turns critical."""

from __future__ import annotations

import contextlib
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dns.support import register
from waypost.testing import AgentProcess, free_port, wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None,
    reason="haproxy is not installed (scripts/test installs Debian's haproxy)",
)

CONFIG = """
global
    nbthread 1
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
resolvers waypost
    nameserver agent 127.0.0.1:{dns_port}
    accepted_payload_size 8192
    resolve_retries 3
    timeout resolve 100ms
    timeout retry 200ms
    hold valid 100ms
    hold obsolete 0s
    hold nx 100ms
frontend web
    bind 127.0.0.1:{frontend_port}
    default_backend instances
backend instances
    balance roundrobin
    server-template instance 5 _hapweb._tcp.service.consul {options}
"""
OPTIONS = "resolvers waypost init-addr none"


@contextlib.contextmanager
def backend(name: str, host: str) -> Iterator[int]:
    """An HTTP server on a free port of `host` answering its own name."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_haproxy_routes_to_passing_instances_only(
    dns_agent: AgentProcess, api: httpx.Client, tmp_path: Path
) -> None:
    frontend = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        CONFIG.format(
            dns_port=dns_agent.dns_port, frontend_port=frontend, options=OPTIONS
        )
    )
    with contextlib.ExitStack() as stack:
        # Three hosts (loopback addresses), as instances usually are.
        for number, name in enumerate(("a", "b", "c"), start=2):
            host = f"127.0.0.{number}"
            port = stack.enter_context(backend(name, host))
            register(
                api, Name="hapweb", ID=f"hap-{name}", Port=port, Address=host,
                Check={"CheckID": f"hap-{name}", "TTL": "60s", "Status": "passing"},
            )  # fmt: skip
        proxy = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        stack.callback(_stop, proxy)

        def answered(count: int) -> set[str]:
            seen = set()
            with httpx.Client(base_url=f"http://127.0.0.1:{frontend}", timeout=5) as c:
                for _ in range(count):
                    with contextlib.suppress(httpx.HTTPError):
                        reply = c.get("/")
                        if reply.status_code == 200:
                            seen.add(reply.text)
            return seen

        assert wait_until(lambda: answered(12) == {"a", "b", "c"}, timeout=30)
        api.put("/v1/agent/check/fail/hap-b").raise_for_status()
        # Within a few resolutions, b leaves the rotation for good.
        assert wait_until(lambda: answered(12) == {"a", "c"}, timeout=30)
        assert answered(30) == {"a", "c"}
        api.put("/v1/agent/check/pass/hap-b").raise_for_status()
        assert wait_until(lambda: answered(12) == {"a", "b", "c"}, timeout=30)


def _stop(proxy: subprocess.Popen[bytes]) -> None:
    proxy.terminate()
    try:
        proxy.wait(10)
    except subprocess.TimeoutExpired:
        proxy.kill()
        proxy.wait()
    assert proxy.stdout is not None
    proxy.stdout.close()
