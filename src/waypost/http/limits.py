"""Length limits on the names, IDs and tags a registration writes.

Consul bounds only meta (`wire.validate_meta`: 64 pairs, keys 128, values
512 characters). waypost bounds names, IDs and tags too (a deliberate
difference): a service with a 100,000-character ID could never be
deregistered, since its ID must fit in a URL. One function over the decoded
body, so any write path can call it before it builds its change.
"""

from __future__ import annotations

from waypost.exceptions import InvalidRequest
from waypost.http.decode import Decoded

#: Longest service, node or check name or ID, in characters. Generated IDs
#: (Nomad's `_nomad-task-<uuid>-…`, consul-k8s's `<pod>-<service>`) stay well
#: under it; percent-encoded it is at most 3 KiB of URL, far below
#: config.DEFAULT_MAX_URL_BYTES.
MAX_NAME_LENGTH = 256

#: Longest tag, in characters: as long as a meta value (tags carry config too,
#: e.g. Traefik's `traefik.http.routers.x.rule=Host(...)`).
MAX_TAG_LENGTH = 512

# Canonical field names (decode.py's) that hold a name or an ID.
_NAMES = frozenset(
    {
        "ID",
        "Name",
        "Node",
        "Service",
        "ServiceID",
        "ServiceName",
        "CheckID",
        "AliasNode",
        "AliasService",
    }
)
_TAGS = frozenset({"Tags", "ServiceTags"})
# Objects nested in a registration: a catalog Service, a Check, Checks.
_NESTED = frozenset({"Service", "Check", "Checks"})


def check_lengths(data: Decoded, path: str = "") -> None:
    """Refuse a body naming anything longer than the limits above.

    Takes the decoded body of `agent/service/register`,
    `agent/check/register` or `catalog/register` and walks its nested
    service and checks; the message names the field (`Checks[1].CheckID`).
    """
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if isinstance(value, str):
            if key in _NAMES and len(value) > MAX_NAME_LENGTH:
                raise _too_long(where, value, MAX_NAME_LENGTH)
        elif key in _TAGS and isinstance(value, list):
            for number, tag in enumerate(value):
                if isinstance(tag, str) and len(tag) > MAX_TAG_LENGTH:
                    raise _too_long(f"{where}[{number}]", tag, MAX_TAG_LENGTH)
        elif key in _NESTED and isinstance(value, dict):
            check_lengths(value, where)
        elif key in _NESTED and isinstance(value, list):
            for number, item in enumerate(value):
                if isinstance(item, dict):
                    check_lengths(item, f"{where}[{number}]")


def _too_long(where: str, value: str, limit: int) -> InvalidRequest:
    return InvalidRequest(
        f"{where} is too long: {len(value)} characters (limit: {limit} characters)"
    )
