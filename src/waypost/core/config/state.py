"""ConfigState: the config entries and settings in memory, by key.

Changed only through `apply_row` (from `Catalog.apply`), as the ACL state.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from waypost.core.config.changes import CONFIG_ENTRIES, SETTINGS
from waypost.core.config.model import ConfigEntry, Setting, entry_key


class ConfigState:
    def __init__(self) -> None:
        self._entries: dict[str, dict[str, ConfigEntry]] = {}
        self._settings: dict[str, Setting] = {}

    def entry(self, kind: str, name: str) -> ConfigEntry | None:
        return self._entries.get(kind, {}).get(name)

    def entries(self, kind: str = "") -> list[ConfigEntry]:
        """Entries of one kind (every kind if empty), by kind then name."""
        kinds = [kind] if kind else sorted(self._entries)
        return [
            entry
            for k in kinds
            for _name, entry in sorted(self._entries.get(k, {}).items())
        ]

    def setting(self, key: str) -> Setting | None:
        return self._settings.get(key)

    def row(self, table: str, key: str) -> msgspec.Struct | None:
        if table == SETTINGS:
            return self._settings.get(key)
        kind, _, name = key.partition("/")
        return self.entry(kind, name)

    def apply_row(self, table: str, key: str, value: msgspec.Struct | None) -> None:
        if table == SETTINGS:
            if value is None:
                self._settings.pop(key, None)
            else:
                self._settings[key] = value  # type: ignore[assignment]
            return
        kind, _, name = key.partition("/")
        if value is None:
            by_name = self._entries.get(kind, {})
            by_name.pop(name, None)
            if not by_name:
                self._entries.pop(kind, None)
        else:
            self._entries.setdefault(kind, {})[name] = value  # type: ignore[assignment]

    def all_rows(self) -> Iterator[tuple[str, str, msgspec.Struct]]:
        for by_name in self._entries.values():
            for entry in by_name.values():
                yield CONFIG_ENTRIES, entry_key(entry.kind, entry.name), entry
        for key, setting in self._settings.items():
            yield SETTINGS, key, setting
