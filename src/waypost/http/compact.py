"""The compact answer on the wire: `Accept` negotiation and the response.

Reads of `/v1/health/service/:name` and `/v1/catalog/service/:name` render
Consul's rows as always (same index, same blocking, same `?filter=`); only
this last step differs: when the request's `Accept` names
`application/vnd.waypost.compact+msgpack` with a q above 0, the rows are
encoded in waypost's compact format (`waypost.compact`), else as Consul's
JSON. Both carry `Vary: Accept`, and the response cache keeps them apart
(`variant`). No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from waypost.compact import MEDIA_TYPE, compact_catalog, compact_health
from waypost.http.messages import Headers, Request, Response, json_response

_MEDIA = MEDIA_TYPE.encode()
VARY = (b"vary", b"Accept")
CONTENT_TYPE = (b"content-type", _MEDIA)
_encoder = msgspec.msgpack.Encoder()


def is_wanted(request: Request) -> bool:
    """True when the request's `Accept` asks for the compact answer."""
    for name, value in request.headers:
        if name == b"accept" and _MEDIA in value:
            return _accepts(value)
    return False


def _accepts(value: bytes) -> bool:
    for media_range in value.split(b","):
        media, *params = (part.strip() for part in media_range.split(b";"))
        if media != _MEDIA:
            continue
        for param in params:
            key, _, number = param.partition(b"=")
            if key.strip() == b"q":
                try:
                    return float(number) > 0
                except ValueError:
                    return False
        return True
    return False


def variant(request: Request) -> bytes:
    """What the response cache must tell apart: JSON or compact."""
    return b"|compact" if is_wanted(request) else b""


def health_response(
    request: Request,
    rows: Sequence[Mapping[str, object]],
    headers: Headers | None = None,
) -> Response:
    """The health rows as the request wants them: compact or Consul's JSON."""
    extra = [VARY, *(headers or [])]
    if not is_wanted(request):
        return json_response(rows, headers=extra)
    return Response(200, _encoder.encode(compact_health(rows)), [CONTENT_TYPE, *extra])


def catalog_response(
    request: Request, rows: Sequence[Mapping[str, object]]
) -> Response:
    """The catalog rows as the request wants them: compact or Consul's JSON."""
    if not is_wanted(request):
        return json_response(rows, headers=[VARY])
    return Response(200, _encoder.encode(compact_catalog(rows)), [CONTENT_TYPE, VARY])
