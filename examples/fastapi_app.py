"""A FastAPI app that is registered in waypost for exactly as long as it runs.

    # waypost is not on PyPI: install it from a clone of this repository.
    pip install -e . fastapi uvicorn    # at the repository root, in a venv
    waypost agent --dev &
    PORT=8000 python examples/fastapi_app.py

`WaypostLifespan` registers `fastapi-example` on startup (TTL check,
heartbeats as an asyncio task, registering again if the registry restarts)
and deregisters on shutdown, which uvicorn runs on Ctrl-C and SIGTERM.
`/peers` picks an instance with a consistent-hash ring: the same `user`
lands on the same instance while it is there.

Environment: WAYPOST_HTTP_ADDR (default 127.0.0.1:8500), PORT (8000).
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from waypost.client import RingBalancer, WaypostLifespan

PORT = int(os.environ.get("PORT", "8000"))

lifespan = WaypostLifespan(
    "fastapi-example", port=PORT, address="127.0.0.1", tags=["web"]
)
app = FastAPI(lifespan=lifespan)
ring = RingBalancer()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"hello": "from FastAPI, registered in waypost"}


@app.get("/peers")
async def peers(user: str = "anyone") -> dict[str, object]:
    assert lifespan.client is not None  # set while the app runs
    found = await lifespan.client.instances(
        "fastapi-example", passing=True, cached=True
    )
    ring.update(found.instances)
    return {
        "peers": [i.endpoint for i in found],
        "sticky": ring.pick(key=user).endpoint,
        "stale": found.is_stale,
    }


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning")
