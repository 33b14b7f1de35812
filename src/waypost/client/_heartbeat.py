"""A registration's heartbeat policy: what each outcome means, and who hears.

No I/O: the twins send the calls and report back here.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

from waypost.client._base import Call
from waypost.client._calls import Registration, check_call, register_call
from waypost.core.model import HealthStatus

logger = logging.getLogger("waypost.client")

HeartbeatFailure = Callable[[Registration, Exception], None]


class HeartbeatState:
    """A registration's life between heartbeats: counts, logging, callbacks.

    The twins send; this decides what the outcome means. A 404 to the TTL
    pass means the registry lost the check (restart, reaped, deregistered
    by hand): register again. Any other failure is reported, and the next
    heartbeat tries again.

    Args:
        registration: what to register and heartbeat.
        on_failure: called with (registration, error) after each failed
            heartbeat, on the heartbeat thread or task; must not block.
    """

    def __init__(
        self, registration: Registration, on_failure: HeartbeatFailure | None = None
    ) -> None:
        self.registration = registration
        self.on_failure = on_failure
        # The same two requests every time: built once.
        self._pass = check_call(registration.check_id, HealthStatus.PASSING)
        self._pass.limit = registration.heartbeat_interval
        self._register = register_call(registration)
        self._register.limit = registration.heartbeat_interval
        self.beats = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.reregistrations = 0
        self.last_error: Exception | None = None
        #: "not started" until start(), then "running", then "stopped".
        self.state = "not started"

    def describe(self, kind: str) -> str:
        """The registration's repr: which instance, and where in its life."""
        r = self.registration
        return (
            f"<{kind} service_id={r.service_id!r} name={r.name!r} port={r.port}"
            f" {self.state}>"
        )

    def warn_if_never_used(self, owner: object, how: str) -> None:
        """From `__del__`: a registration nobody started registered nothing.

        `client.register(...)` only describes a registration; it takes
        `with` (or `start()`) to register. Forgetting it is silent
        otherwise, so say so, as asyncio does for a coroutine never awaited.
        """
        if self.state != "not started" or self.beats or self.failures:
            return
        warnings.warn(
            f"the registration of {self.registration.service_id!r} was never"
            f" started, so nothing was registered: use `{how}`",
            RuntimeWarning,
            stacklevel=2,
            source=owner,
        )

    def pass_call(self) -> Call[None]:
        return self._pass

    def register_call(self) -> Call[None]:
        return self._register

    def lost(self) -> None:
        self.reregistrations += 1
        logger.warning(
            "registry lost service %r (check %r unknown); registering again",
            self.registration.service_id,
            self.registration.check_id,
        )

    def succeeded(self) -> None:
        if self.consecutive_failures:
            logger.info(
                "heartbeat of %r works again after %d failure(s)",
                self.registration.service_id,
                self.consecutive_failures,
            )
        self.beats += 1
        self.consecutive_failures = 0

    def failed(self, error: Exception) -> None:
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error = error
        logger.warning(
            "heartbeat of %r failed (%d in a row): %s",
            self.registration.service_id,
            self.consecutive_failures,
            error,
        )
        if self.on_failure is None:
            return
        try:
            self.on_failure(self.registration, error)
        except Exception:  # a broken callback must not stop the heartbeats
            logger.exception("on_heartbeat_failure callback raised")
