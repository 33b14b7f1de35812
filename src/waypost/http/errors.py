"""Exception → status and message: the only place status codes are chosen.

Handlers raise; this answers. A RequestRejected carries its own 4xx; a
StoreUnavailable is a 503; anything else is a bug: logged with its
traceback and answered 500 so the client is not left hanging.
"""

from __future__ import annotations

import logging

from waypost.exceptions import RequestRejected, StoreUnavailable
from waypost.http.messages import Response, text_response

logger = logging.getLogger("waypost.http")


def error_response(exc: Exception, method: str, path: str) -> Response:
    if isinstance(exc, RequestRejected):
        return text_response(str(exc), exc.status_code)
    if isinstance(exc, StoreUnavailable):
        return text_response(str(exc), exc.status_code)
    logger.error("bug: %s %s raised", method, path, exc_info=exc)
    return text_response(f"Internal error handling {method} {path}", 500)


def method_not_allowed(method: str, allow: bytes) -> Response:
    return text_response(f"method {method} not allowed", 405, [(b"allow", allow)])
