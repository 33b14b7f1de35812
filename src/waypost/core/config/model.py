"""The rows of the configuration tables.

A config entry's body is kept as the JSON of its kind-specific fields
(everything but Kind, Name and the indexes), already in Consul's spelling:
the HTTP layer decodes and canonicalizes it, the core only stores, compares
and hands it back. Bytes keep the frozen row immutable.
"""

from __future__ import annotations

import msgspec


class ConfigEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One config entry (`/v1/config`): kind, name and its fields as JSON."""

    kind: str
    name: str
    body: bytes = b"{}"
    create_index: int = 0
    modify_index: int = 0

    @property
    def key(self) -> str:
        return entry_key(self.kind, self.name)


class Setting(msgspec.Struct, frozen=True, kw_only=True):
    """One cluster setting Consul keeps in its state store (the autopilot
    configuration, the CA configuration, the CA roots), as JSON."""

    key: str
    body: bytes = b"{}"
    create_index: int = 0
    modify_index: int = 0


def entry_key(kind: str, name: str) -> str:
    return f"{kind}/{name}"
