"""A Flask app that is registered in waypost for exactly as long as it runs.

    # waypost is not on PyPI: install it from a clone of this repository.
    pip install -e . flask    # at the repository root, in a venv
    waypost agent --dev &
    PORT=5000 python examples/flask_app.py

At start-up it registers `flask-example` with a TTL check, heartbeats every
TTL/3 on a thread (registering again if the registry restarts), and
deregisters on exit: Ctrl-C, SIGTERM or a normal return. `/peers` shows
discovery: the instances of `flask-example` the client's cache knows, served
from memory (and marked stale while the registry is unreachable).

Environment: WAYPOST_HTTP_ADDR (default 127.0.0.1:8500), PORT (5000).
"""

from __future__ import annotations

import os

from flask import Flask

from waypost.client import Client, register_flask

PORT = int(os.environ.get("PORT", "5000"))

app = Flask(__name__)
discovery = Client()


@app.route("/")
def hello() -> str:
    return "Hello from Flask, registered in waypost"


@app.route("/peers")
def peers() -> dict[str, object]:
    found = discovery.instances("flask-example", passing=True, cached=True)
    return {"peers": [i.endpoint for i in found], "stale": found.is_stale}


if __name__ == "__main__":
    register_flask(app, "flask-example", port=PORT, address="127.0.0.1", tags=["web"])
    app.run(host="127.0.0.1", port=PORT)
