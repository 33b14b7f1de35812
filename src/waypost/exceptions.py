"""Every exception waypost raises.

WaypostError
├── RequestRejected       the request was wrong; nothing changed
│   ├── InvalidRequest    bad JSON, unknown field, bad duration   → 400
│   ├── AclDisabled       an ACL endpoint while ACLs are off      → 401
│   ├── PermissionDenied  the token lacks the right               → 403
│   ├── NotFound          no such service, check or node          → 404
│   ├── RequestTimeout    its head or body came too slowly        → 408
│   ├── PayloadTooLarge   the body is over the documented limit   → 413
│   ├── UriTooLong        the URL is over the documented limit    → 414
│   ├── ExpectationFailed an `Expect` other than 100-continue     → 417
│   └── HeaderFieldsTooLarge  the head is over the documented limit → 431
├── StoreUnavailable      could not be made durable; not applied  → 503
├── StartupError          the agent cannot start (port, data dir)
├── InvalidAddress        (client) the registry address is malformed;
│                         nothing was sent
├── RegistryUnreachable   (client) no registry answered in time
├── RegistryUnavailable   (client) the registry could not serve the request
│   ├── RegistryConnectError  refused, reset or timed out (also a
│   │                         RegistryUnreachable)
│   └── RegistryServerError   it answered 5xx (503: not durable, not applied)
└── NoInstanceAvailable   (client) a balancer has no instance to pick

`BadRequest` is another name for `InvalidRequest`. The client maps answers
back to this tree: 400 → InvalidRequest, 403 → PermissionDenied,
404 → NotFound, 413 → PayloadTooLarge, 414 → UriTooLong, other 4xx →
RequestRejected, 5xx → RegistryServerError; a refused, reset, timed-out or
TLS-failed connection → RegistryConnectError.
"""

from __future__ import annotations


class WaypostError(Exception):
    """Base of every error waypost raises on purpose."""


class RequestRejected(WaypostError):
    """The request was wrong; nothing was changed."""

    status_code = 400


class InvalidRequest(RequestRejected):
    """The body, a query parameter or a path segment is malformed."""

    status_code = 400


class AclDisabled(RequestRejected):
    """(agent) An ACL endpoint was called on an agent without --acl-enabled."""

    status_code = 401


class PermissionDenied(RequestRejected):
    """The token does not grant the right to do this."""

    status_code = 403


class NotFound(RequestRejected):
    """The service, check, node or key named does not exist."""

    status_code = 404


class PayloadTooLarge(RequestRejected):
    """The request body is larger than the agent accepts."""

    status_code = 413


class UriTooLong(RequestRejected):
    """The request's URL (path and query string) is longer than the agent reads."""

    status_code = 414


class RequestTimeout(RequestRejected):
    """(agent) The request's head or body did not arrive within its deadline."""

    status_code = 408


class ExpectationFailed(RequestRejected):
    """(agent) The request's `Expect` header asks for more than 100-continue."""

    status_code = 417


class HeaderFieldsTooLarge(RequestRejected):
    """(agent) The request line and headers are larger, or more, than allowed."""

    status_code = 431


class StoreUnavailable(WaypostError):
    """The change could not be made durable, so it was not applied."""

    status_code = 503


class StartupError(WaypostError):
    """The agent cannot start: port taken, data dir locked or unreadable."""


class InvalidAddress(WaypostError, ValueError):
    """(client) The registry address is malformed or not http(s); nothing was sent."""


class RegistryUnreachable(WaypostError):
    """(client) No registry answered in time."""


BadRequest = InvalidRequest
"""The client's name for a 400: the same class as `InvalidRequest`."""


class RegistryUnavailable(WaypostError):
    """(client) The registry could not serve the request; later may work."""


class RegistryConnectError(RegistryUnavailable, RegistryUnreachable):
    """(client) No registry answered: connection refused, reset or timed out."""


class RegistryServerError(RegistryUnavailable):
    """(client) The registry answered 5xx; `status_code` says which."""

    def __init__(self, message: str, status_code: int = 500) -> None:
        super().__init__(message)
        self.status_code = status_code


class NoInstanceAvailable(WaypostError, LookupError):
    """(client) A balancer was asked to pick with no instance of positive weight."""
