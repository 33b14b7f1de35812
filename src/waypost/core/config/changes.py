"""Change records of the configuration tables (see `core/changes.py`)."""

from __future__ import annotations

from waypost.core.changes import Change
from waypost.core.config.model import ConfigEntry, Setting
from waypost.core.watch import Topic

CONFIG_ENTRIES = "config-entries"
SETTINGS = "settings"
CONFIG_TABLES = frozenset({CONFIG_ENTRIES, SETTINGS})

#: Keys of the settings table.
AUTOPILOT = "autopilot"
CA_CONFIG = "ca-config"
CA_ROOTS = "ca-roots"


def kind_topic(kind: str) -> Topic:
    """Every read of config entries of one kind sleeps on this."""
    return ("config", kind)


def setting_topic(key: str) -> Topic:
    return ("setting", key)


class PutConfigEntry(Change, frozen=True, kw_only=True):
    """Create or replace a config entry; with `cas`, only if its
    ModifyIndex is `cas` (0: only if absent), else `false`."""

    entry: ConfigEntry
    cas: int | None = None


class DeleteConfigEntry(Change, frozen=True, kw_only=True):
    kind: str
    name: str
    cas: int | None = None


class PutSetting(Change, frozen=True, kw_only=True):
    """Replace a setting; with `cas`, only if its ModifyIndex is `cas`."""

    setting: Setting
    cas: int | None = None
