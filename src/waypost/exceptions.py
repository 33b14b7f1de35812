"""Every exception waypost raises.

WaypostError
├── RequestRejected       the request was wrong; nothing changed
│   ├── InvalidRequest    bad JSON, unknown field, bad duration   → 400
│   ├── PermissionDenied  the token lacks the right               → 403
│   ├── NotFound          no such service, check or node          → 404
│   └── PayloadTooLarge   the body is over the documented limit   → 413
├── StoreUnavailable      could not be made durable; not applied  → 503
├── StartupError          the agent cannot start (port, data dir)
└── RegistryUnreachable   (client) no registry answered in time
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping


class WaypostError(Exception):
    """Base of every error waypost raises on purpose."""


class RequestRejected(WaypostError):
    """The request was wrong; nothing was changed."""

    status_code = 400


class InvalidRequest(RequestRejected):
    """The body, a query parameter or a path segment is malformed."""

    status_code = 400


class PermissionDenied(RequestRejected):
    """The token does not grant the right to do this."""

    status_code = 403


class NotFound(RequestRejected):
    """The service, check, node or key named does not exist."""

    status_code = 404


class PayloadTooLarge(RequestRejected):
    """The request body is larger than the agent accepts."""

    status_code = 413


class StoreUnavailable(WaypostError):
    """The change could not be made durable, so it was not applied."""

    status_code = 503


class StartupError(WaypostError):
    """The agent cannot start: port taken, data dir locked or unreadable."""


class RegistryUnreachable(WaypostError):
    """(client) No registry answered in time."""


@contextlib.contextmanager
def map_exceptions(
    mapping: Mapping[type[BaseException], type[WaypostError]],
) -> Iterator[None]:
    """Re-raise library exceptions as ours, keeping the cause (httpcore's habit)."""
    try:
        yield
    except Exception as exc:
        for source, target in mapping.items():
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise
