"""The seed document's Flask example, running against waypost unchanged.

Run `waypost agent` (or `waypost agent -server -bootstrap -node localhost`,
the seed's own line with `waypost` for `consul`), then:

    pip install flask python-consul
    python examples/seed_flask_app.py

At start-up it registers itself the correct way (a real `port=` and a TTL
check), heartbeats every TTL/3, and deregisters on exit (SIGTERM, Ctrl-C).
`GET /register` makes the seed's exact call, which passes 8080 as the
*service ID* (python-consul's second positional argument), not the port:
waypost accepts it, and answers with a warning header that says so.

Environment: CONSUL_HOST / CONSUL_PORT (default 127.0.0.1:8500), PORT (8080).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading

from consul import Check, Consul
from flask import Flask

app = Flask(__name__)
consul = Consul(
    host=os.environ.get("CONSUL_HOST", "127.0.0.1"),
    port=int(os.environ.get("CONSUL_PORT", "8500")),
)

SERVICE_NAME = "example-service"
SERVICE_PORT = int(os.environ.get("PORT", "8080"))
SERVICE_ID = f"{SERVICE_NAME}-{SERVICE_PORT}"
TTL_SECONDS = 10
_stop = threading.Event()


@app.route("/")
def hello() -> str:
    return "Hello, World!"


@app.route("/register")
def register() -> str:
    # The seed's call, word for word.
    service_name = "example-service"
    service_port = 8080
    consul.agent.service.register(
        service_name, service_port, address="localhost", tags=["web"]
    )
    return "Service registered"


def register_self() -> None:
    """The correct form: `port=` by keyword, and a TTL check to heartbeat."""
    consul.agent.service.register(
        SERVICE_NAME,
        service_id=SERVICE_ID,
        address="localhost",
        port=SERVICE_PORT,
        tags=["web"],
        check=Check.ttl(f"{TTL_SECONDS}s"),
    )


def heartbeat() -> None:
    while not _stop.wait(TTL_SECONDS / 3):
        try:
            consul.agent.check.ttl_pass(f"service:{SERVICE_ID}")
        except Exception as exc:  # the registry may be restarting
            print(f"heartbeat failed: {exc}; registering again", file=sys.stderr)
            try:
                register_self()
            except Exception as again:
                print(f"re-registration failed: {again}", file=sys.stderr)


def deregister() -> None:
    _stop.set()
    try:
        consul.agent.service.deregister(SERVICE_ID)
    except Exception as exc:
        print(f"deregistration failed: {exc}", file=sys.stderr)


def _on_sigterm(signum: int, frame: object) -> None:
    sys.exit(0)  # runs atexit → deregister


if __name__ == "__main__":
    register_self()
    consul.agent.check.ttl_pass(f"service:{SERVICE_ID}")
    atexit.register(deregister)
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(target=heartbeat, daemon=True).start()
    app.run(host="127.0.0.1", port=SERVICE_PORT)
