"""Hysteresis: Consul's StatusHandler semantics, with no clock at all."""

from __future__ import annotations

from hypothesis import given, strategies as st

from waypost.core.checkstate import CheckStates, Hysteresis, Thresholds
from waypost.core.model import CheckDefinition, HealthStatus

P, W, C = HealthStatus.PASSING, HealthStatus.WARNING, HealthStatus.CRITICAL
KEY = ("n1", "web")


def run(thresholds: Thresholds, results: list[HealthStatus]) -> list[object]:
    state = Hysteresis(thresholds)
    return [state.observe(result) for result in results]


def test_without_thresholds_every_result_is_reported_at_once() -> None:
    assert run(Thresholds(), [P, C, W, C, P]) == [P, C, W, C, P]


def test_first_result_is_reported_at_once_even_with_thresholds() -> None:
    """Counters start at their thresholds, as Consul's NewStatusHandler does."""
    limits = Thresholds(success_before_passing=3, failures_before_critical=3)
    assert run(limits, [P]) == [P]
    assert run(limits, [C]) == [C]


def test_success_before_passing_needs_that_many_successes_in_a_row() -> None:
    limits = Thresholds(success_before_passing=3)
    assert run(limits, [C, P, P, C, P, P, P]) == [C, None, None, C, None, None, P]


def test_failures_before_critical_needs_that_many_failures_in_a_row() -> None:
    limits = Thresholds.of(CheckDefinition(failures_before_critical=3))
    assert run(limits, [P, C, C, P, C, C, C]) == [P, None, None, P, None, None, C]


def test_failures_before_warning_reports_warning_until_critical() -> None:
    limits = Thresholds.of(
        CheckDefinition(failures_before_warning=1, failures_before_critical=3)
    )
    assert run(limits, [P, C, C, C, C]) == [P, W, W, C, C]


def test_failures_before_warning_defaults_to_failures_before_critical() -> None:
    limits = Thresholds.of(CheckDefinition(failures_before_critical=2))
    assert limits.failures_before_warning == 2


def test_warning_counts_as_success_and_resets_the_failure_run() -> None:
    limits = Thresholds.of(CheckDefinition(failures_before_critical=2))
    assert run(limits, [P, C, W, C, C]) == [P, None, W, None, C]


@given(st.lists(st.sampled_from([P, C]), max_size=60))
def test_flapping_target_reports_at_most_once_per_threshold_run(
    results: list[HealthStatus],
) -> None:
    """With N-in-a-row thresholds, alternating results never change status."""
    limits = Thresholds.of(
        CheckDefinition(success_before_passing=2, failures_before_critical=2)
    )
    state = Hysteresis(limits)
    state.observe(P)
    seen = [P, *results]
    for i, result in enumerate(results, start=1):
        if state.observe(result) is not None:
            assert seen[i] == seen[i - 1]


def test_changed_thresholds_start_a_fresh_run() -> None:
    states = CheckStates()
    slow = CheckDefinition(failures_before_critical=3)
    assert states.observe(KEY, slow, P) is P
    assert states.observe(KEY, slow, C) is None
    fast = CheckDefinition()
    assert states.observe(KEY, fast, C) is C
    states.forget(KEY)
    assert len(states) == 0
