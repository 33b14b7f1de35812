"""Hysteresis for checks the agent runs: when a probe result becomes a status.

Consul's StatusHandler (agent/checks/check.go): `SuccessBeforePassing`
consecutive successes before passing, `FailuresBeforeWarning` /
`FailuresBeforeCritical` consecutive failures before warning / critical, so a
flapping target does not churn the index. Counters start at their thresholds,
so a new check reports its first result at once. No I/O.
"""

from __future__ import annotations

import msgspec

from waypost.core.model import CheckDefinition, HealthStatus

CheckKey = tuple[str, str]  # (node, check_id)


class Thresholds(msgspec.Struct, frozen=True, kw_only=True):
    """How many results in a row move a check (0 and 1 both mean "at once")."""

    success_before_passing: int = 0
    failures_before_warning: int = 0
    failures_before_critical: int = 0

    @classmethod
    def of(cls, definition: CheckDefinition) -> Thresholds:
        # Consul (agent.go addCheck): FailuresBeforeWarning defaults to
        # FailuresBeforeCritical, so a check with only the latter set goes
        # straight from passing to critical.
        critical = definition.failures_before_critical
        return cls(
            success_before_passing=definition.success_before_passing,
            failures_before_warning=definition.failures_before_warning or critical,
            failures_before_critical=critical,
        )


class Hysteresis:
    """One check's run of consecutive successes and failures."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.successes = thresholds.success_before_passing
        self.failures = thresholds.failures_before_critical

    def observe(self, status: HealthStatus) -> HealthStatus | None:
        """The status to report for one probe result, or None to hold.

        Warning counts as a success (Consul: a 429 resets the failure run).
        A failure below the critical threshold but at the warning threshold
        reports warning.
        """
        limits = self.thresholds
        if status is not HealthStatus.CRITICAL:
            self.successes += 1
            self.failures = 0
            return status if self.successes >= limits.success_before_passing else None
        self.failures += 1
        self.successes = 0
        if self.failures >= limits.failures_before_critical:
            return HealthStatus.CRITICAL
        if self.failures >= limits.failures_before_warning:
            return HealthStatus.WARNING
        return None


class CheckStates:
    """Hysteresis of every check the runner reports on, keyed by (node, id).

    A check whose thresholds change (re-registration with new numbers) starts
    a fresh run, as Consul starts a new StatusHandler.
    """

    def __init__(self) -> None:
        self._states: dict[CheckKey, Hysteresis] = {}

    def __len__(self) -> int:
        return len(self._states)

    def observe(
        self, key: CheckKey, definition: CheckDefinition, status: HealthStatus
    ) -> HealthStatus | None:
        if not (
            definition.success_before_passing
            or definition.failures_before_warning
            or definition.failures_before_critical
        ):
            return status  # no thresholds: every result counts at once
        thresholds = Thresholds.of(definition)
        state = self._states.get(key)
        if state is None or state.thresholds != thresholds:
            state = self._states[key] = Hysteresis(thresholds)
        return state.observe(status)

    def forget(self, key: CheckKey) -> None:
        self._states.pop(key, None)
