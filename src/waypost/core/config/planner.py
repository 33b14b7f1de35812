"""Plan config entry and setting changes: Consul's checks
(structs.MakeConfigEntry, each kind's Normalize and Validate) and its CAS
(state.ensureConfigEntryCASTxn), through the catalog's Draft.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.core.changes import Change
from waypost.core.config.changes import (
    CONFIG_ENTRIES,
    SETTINGS,
    DeleteConfigEntry,
    PutConfigEntry,
    PutSetting,
    kind_topic,
    setting_topic,
)
from waypost.core.config.model import ConfigEntry, entry_key
from waypost.exceptions import InvalidRequest

if TYPE_CHECKING:
    from waypost.core.planner import Draft

#: Consul's config entry kinds (structs.makeConfigEntry), CE.
KINDS = (
    "service-defaults",
    "proxy-defaults",
    "service-router",
    "service-splitter",
    "service-resolver",
    "ingress-gateway",
    "terminating-gateway",
    "service-intentions",
    "mesh",
    "exported-services",
    "sameness-group",
    "api-gateway",
    "tcp-route",
    "http-route",
    "inline-certificate",
    "file-system-certificate",
    "jwt-provider",
)
#: Kinds with one fixed name: what an empty name becomes.
FIXED_NAMES = {"proxy-defaults": "global", "mesh": "mesh"}
#: Consul CE's one exported-services entry per partition, named after it.
EXPORTED_SERVICES_NAME = "default"


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidRequest(f"invalid config entry kind: {kind}")


def normalized_name(kind: str, name: str) -> str:
    """The entry's name after Consul's Normalize and Validate, or a 400."""
    check_kind(kind)
    fixed = FIXED_NAMES.get(kind)
    if fixed is not None:
        if kind == "mesh":  # MeshConfigEntry.Normalize sets it whatever it was
            return fixed
        if name not in ("", fixed):
            raise InvalidRequest(
                f'invalid name ("{name}"), only "{fixed}" is supported'
            )
        return fixed
    if kind == "exported-services" and name != EXPORTED_SERVICES_NAME:
        raise InvalidRequest(
            f'exported-services Name must be "{EXPORTED_SERVICES_NAME}"'
        )
    if not name:
        raise InvalidRequest("Name is required")
    if name == "*" and kind in ("service-defaults", "service-resolver"):
        raise InvalidRequest(
            f"{kind} name must be the name of a service, and not a wildcard"
        )
    return name


def _cas_holds(found: Any, cas: int | None) -> bool:
    if cas is None:
        return True
    if found is None:
        return cas == 0
    return bool(found.modify_index == cas)


def plan_put_entry(draft: Draft, change: PutConfigEntry) -> bool | None:
    entry = change.entry
    name = normalized_name(entry.kind, entry.name)
    if name != entry.name:
        entry = msgspec.structs.replace(entry, name=name)
    key = entry_key(entry.kind, name)
    found: ConfigEntry | None = draft.row(CONFIG_ENTRIES, key)
    if not _cas_holds(found, change.cas):
        return False
    if found is not None:
        if found.body == entry.body:
            return None  # the same entry again: no write, no index
        entry = msgspec.structs.replace(entry, create_index=found.create_index)
    draft.put_row(CONFIG_ENTRIES, key, entry)
    draft.topics.add(kind_topic(entry.kind))
    return None


def plan_delete_entry(draft: Draft, change: DeleteConfigEntry) -> bool | None:
    check_kind(change.kind)
    name = FIXED_NAMES.get(change.kind) or change.name
    key = entry_key(change.kind, name)
    found: ConfigEntry | None = draft.row(CONFIG_ENTRIES, key)
    if change.cas is not None and (found is None or found.modify_index != change.cas):
        return False
    if found is None:
        return None  # Consul deletes what is absent without complaint
    draft.put_row(CONFIG_ENTRIES, key, None)
    draft.topics.add(kind_topic(change.kind))
    return None


def plan_put_setting(draft: Draft, change: PutSetting) -> bool | None:
    setting = change.setting
    found = draft.row(SETTINGS, setting.key)
    if not _cas_holds(found, change.cas):
        return False
    if found is not None:
        if found.body == setting.body:
            return None
        setting = msgspec.structs.replace(setting, create_index=found.create_index)
    draft.put_row(SETTINGS, setting.key, setting)
    draft.topics.add(setting_topic(setting.key))
    return None


PLANNERS: dict[type[Change], Callable[[Draft, Any], bool | None]] = {
    PutConfigEntry: plan_put_entry,
    DeleteConfigEntry: plan_delete_entry,
    PutSetting: plan_put_setting,
}
