"""The services and checks the configuration files define, owned by the agent.

At start-up and on every reload (`PUT /v1/agent/reload`, SIGHUP) the files
are read again and each definition validated, before anything is applied:
a file that does not parse, or a definition the register endpoint would
refuse, refuses the whole reload (400, naming the file) and the running
configuration stays. Then each service and check is registered (a changed
one is replaced, its checks' statuses kept), and what an earlier read
registered and the files no longer define is deregistered, as Consul's
agent removes services that are gone from its files.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from waypost.config_files import ConfigError, ConfigFiles, read
from waypost.core.changes import (
    Change,
    DeregisterCheck,
    DeregisterService,
    RegisterCheck,
)
from waypost.exceptions import InvalidRequest, RequestRejected
from waypost.http import decode
from waypost.http.agent import check_registration, service_registration

if TYPE_CHECKING:
    from waypost.registry import Registry

logger = logging.getLogger("waypost.config")


def _refused(file: str, exc: Exception) -> InvalidRequest:
    return InvalidRequest(f"Failed to reload configs: {file}: {exc}")


class FileServices:
    """What the files registered; `load()` makes the catalog match them."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        config = registry.config
        self.files = config.config_files
        self.dirs = config.config_dirs
        #: Service and check IDs the files registered (this agent's node).
        self.services: set[str] = set()
        self.checks: set[str] = set()
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the files and apply them; `InvalidRequest` if they are bad
        (then nothing was applied)."""
        async with self._lock:
            try:
                found = await asyncio.to_thread(read, self.files, self.dirs)
            except ConfigError as exc:
                raise InvalidRequest(f"Failed to reload configs: {exc}") from None
            for warning in found.warnings:
                logger.warning("%s", warning)
            services, checks = self._changes(found)
            await self._apply(services, checks)

    def _changes(
        self, found: ConfigFiles
    ) -> tuple[list[tuple[Change, str]], list[RegisterCheck]]:
        services: list[tuple[Change, str]] = []
        for file, definition in found.services:
            try:
                data = decode.SERVICE_REGISTRATION(definition, "service")
                change, service, _numeric = service_registration(
                    self.registry, data, replace_existing_checks=True
                )
            except RequestRejected as exc:
                raise InvalidRequest(
                    f"Failed to reload configs: {file}: {exc}"
                ) from None
            services.append((change, service.service_id))
        checks: list[RegisterCheck] = []
        for file, definition in found.checks:
            try:
                data = decode.CHECK(definition, "check")
                checks.append(check_registration(self.registry, data))
            except RequestRejected as exc:
                raise InvalidRequest(
                    f"Failed to reload configs: {file}: {exc}"
                ) from None
        return services, checks

    async def _apply(
        self, services: list[tuple[Change, str]], checks: list[RegisterCheck]
    ) -> None:
        registry = self.registry
        node = registry.config.node
        for service_change, _service_id in services:
            await registry.apply(service_change)
        for check_change in checks:
            await registry.apply(check_change)
        service_ids = {service_id for _change, service_id in services}
        check_ids = {c.check.check_id for c in checks}
        for check_id in sorted(self.checks - check_ids):
            await registry.apply(
                DeregisterCheck(node=node, check_id=check_id, missing_ok=True)
            )
        for service_id in sorted(self.services - service_ids):
            await registry.apply(
                DeregisterService(node=node, service_id=service_id, missing_ok=True)
            )
        self.services, self.checks = service_ids, check_ids
        if not (self.files or self.dirs):
            return  # no files given: nothing to report before "listening on"
        logger.info(
            "configuration files: %d service(s), %d check(s)",
            len(service_ids),
            len(check_ids),
        )
