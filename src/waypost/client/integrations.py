"""Register a web application for as long as it runs: Flask and
FastAPI/Starlette (ASGI lifespan).

Neither framework is imported here: the Flask helper only touches
`app.extensions`, and the lifespan is a plain async context manager that
any ASGI framework with a `lifespan=` argument accepts.

    app = FastAPI(lifespan=WaypostLifespan("api", port=8000))

    app = Flask(__name__)
    register_flask(app, "api", port=5000)
"""

from __future__ import annotations

import atexit
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence

from waypost.client._async import AsyncClient, AsyncServiceRegistration
from waypost.client._signals import exit_on_sigterm
from waypost.client._sync import Client, ServiceRegistration


class WaypostLifespan:
    """An ASGI lifespan: register on startup, deregister on shutdown.

    Pass it as `FastAPI(lifespan=...)` or `Starlette(lifespan=...)`. While
    the app runs, `client` (an `AsyncClient`) and `registration` are set:
    use the client for discovery (`client.watch(...)`). The server
    (uvicorn) owns SIGTERM and runs the shutdown, so no signal handler is
    installed.

    Args:
        name: the service name.
        port: the port the app serves on.
        address, service_id, tags, meta, weight, ttl, deregister_after: as
            in `AsyncClient.register`.
        registry: the registry's address (default: from the environment).
        token: ACL token (default: from the environment).
    """

    def __init__(
        self,
        name: str,
        *,
        port: int,
        address: str = "",
        service_id: str | None = None,
        tags: Sequence[str] = (),
        meta: Mapping[str, str] | None = None,
        weight: int | None = None,
        ttl: float | str = "10s",
        deregister_after: float | str | None = None,
        registry: str | None = None,
        token: str | None = None,
    ) -> None:
        self.name = name
        self._register_args: dict[str, object] = {
            "port": port,
            "address": address,
            "service_id": service_id,
            "tags": tags,
            "meta": meta,
            "weight": weight,
            "ttl": ttl,
            "deregister_after": deregister_after,
        }
        self._registry = registry
        self._token = token
        self.client: AsyncClient | None = None
        self.registration: AsyncServiceRegistration | None = None

    @contextlib.asynccontextmanager
    async def __call__(self, app: object) -> AsyncIterator[None]:
        async with AsyncClient(self._registry, token=self._token) as client:
            registration = client.register(
                self.name,
                handle_sigterm=False,
                **self._register_args,  # type: ignore[arg-type]
            )
            self.client, self.registration = client, registration
            await registration.start()
            try:
                yield
            finally:
                await registration.stop()
                self.client = self.registration = None


def register_flask(
    app: object,
    name: str,
    *,
    port: int,
    address: str = "",
    service_id: str | None = None,
    tags: Sequence[str] = (),
    meta: Mapping[str, str] | None = None,
    weight: int | None = None,
    ttl: float | str = "10s",
    deregister_after: float | str | None = None,
    registry: str | None = None,
    token: str | None = None,
) -> ServiceRegistration:
    """Register a Flask app now, heartbeat on a thread, deregister at exit.

    Flask has no start/stop hooks, so this registers at once and deregisters
    when the interpreter exits (atexit); SIGTERM is turned into a clean exit
    when nothing else handles it. The registration and its client are kept
    in `app.extensions["waypost"]`.

    Args:
        app: the Flask application.
        name: the service name.
        port: the port the app serves on.
        address, service_id, tags, meta, weight, ttl, deregister_after: as
            in `Client.register`.
        registry: the registry's address (default: from the environment).
        token: ACL token (default: from the environment).
    """
    client = Client(registry, token=token)
    registration = client.register(
        name,
        port=port,
        address=address,
        service_id=service_id,
        tags=tags,
        meta=meta,
        weight=weight,
        ttl=ttl,
        deregister_after=deregister_after,
        handle_sigterm=False,
    )
    registration.start()
    exit_on_sigterm()

    def shutdown() -> None:
        registration.stop()
        client.close()

    atexit.register(shutdown)
    extensions = getattr(app, "extensions", None)
    if isinstance(extensions, dict):
        extensions["waypost"] = registration
    return registration
