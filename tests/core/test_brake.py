"""Self-preservation brake and panic threshold: pure, with an injected now."""

from __future__ import annotations

from tests.core.support import Driven
from waypost.core.brake import (
    Brake,
    BrakeSettings,
    Census,
    Transition,
    is_panicking,
    panic_threshold,
    parse_fraction,
)
from waypost.core.catalog import TTL_EXPIRED, Catalog
from waypost.core.model import Check, CheckDefinition, HealthStatus, Node, Service
from waypost.testing import ManualClock

NODE = "n1"
TTL = 10.0


def fleet(size: int, clock: ManualClock, *, reap_after: float | None = None) -> Catalog:
    """`size` passing TTL instances whose last heartbeats are spread over 3 s."""
    catalog = Driven()
    catalog.upsert_node(Node(name=NODE, address="127.0.0.1"))
    for i in range(size):
        check = Check(
            node=NODE,
            check_id=f"c{i}",
            service_id=f"s{i}",
            status=HealthStatus.PASSING,
            definition=CheckDefinition(
                ttl=TTL, deregister_critical_service_after=reap_after
            ),
        )
        service = Service(node=NODE, service_id=f"s{i}", name="web")
        catalog.register_service(service, [check], now=clock() - 3.0 * i / size)
    return catalog


def heartbeat(catalog: Catalog, clock: ManualClock, ids: range) -> None:
    for i in ids:
        catalog.update_check(NODE, f"c{i}", HealthStatus.PASSING, "", now=clock())


def run_for(
    catalog: Catalog,
    brake: Brake,
    clock: ManualClock,
    seconds: float,
    *,
    beating: range = range(0),
) -> None:
    """Advance in 100 ms ticks; `beating` instances heartbeat every 3 s."""
    for tick in range(round(seconds * 10)):
        clock.advance(0.1)
        if tick % 30 == 0:
            heartbeat(catalog, clock, beating)
        catalog.expire(clock(), brake)


def passing(catalog: Catalog) -> int:
    return sum(
        1
        for c in catalog.checks_of_service_name("web")
        if c.status is HealthStatus.PASSING
    )


def test_partition_turns_no_check_critical_and_reaps_nothing() -> None:
    clock = ManualClock()
    catalog = fleet(100, clock, reap_after=5.0)
    brake = Brake()
    run_for(catalog, brake, clock, 60.0)  # every heartbeat stopped at once
    assert brake.engaged
    assert passing(catalog) == 100
    assert len(catalog.service_instances("web")) == 100
    assert brake.drain_notices() == [brake.last_event]
    assert "of 100 TTL checks went quiet within 60s" in brake.last_event


def test_brake_engages_before_the_first_deadline_passes() -> None:
    clock = ManualClock()
    catalog = fleet(100, clock)
    brake = Brake()
    run_for(catalog, brake, clock, TTL - 3.0 + 0.2)  # the oldest is just overdue
    assert brake.engaged and brake.recent_expiries(clock()) == 0


def test_single_crashed_instance_expires_on_time_while_others_beat() -> None:
    clock = ManualClock()
    catalog = fleet(100, clock)
    brake = Brake()
    heartbeat(catalog, clock, range(100))
    run_for(catalog, brake, clock, TTL + 0.2, beating=range(1, 100))
    check = catalog.get_check(NODE, "c0")
    assert check is not None and check.status is HealthStatus.CRITICAL
    assert check.output == TTL_EXPIRED
    assert not brake.engaged and brake.engagements == 0
    assert passing(catalog) == 99


def test_brake_releases_when_heartbeats_recover_and_grants_one_more_ttl() -> None:
    clock = ManualClock()
    catalog = fleet(100, clock)
    brake = Brake()
    run_for(catalog, brake, clock, 30.0)
    assert brake.engaged
    # 95 come back; 5 stay silent (died during the cut).
    run_for(catalog, brake, clock, 1.0, beating=range(5, 100))
    assert not brake.engaged
    assert "released" in brake.drain_notices()[-1]
    assert passing(catalog) == 100  # the silent five got a grace...
    run_for(catalog, brake, clock, TTL + 0.5, beating=range(5, 100))
    assert passing(catalog) == 95  # ...and expire one TTL later
    assert not brake.engaged


def test_switched_off_brake_lets_everything_expire() -> None:
    clock = ManualClock()
    catalog = fleet(50, clock)
    brake = Brake(BrakeSettings(enabled=False))
    run_for(catalog, brake, clock, TTL + 1.0)
    assert passing(catalog) == 0
    assert brake.engagements == 0 and not brake.state(clock()).engaged


def test_few_quiet_checks_never_engage_the_brake() -> None:
    """Nine of twenty lost is 45 %, but a small registry must still report it
    (one application process with a few services dying)."""
    brake = Brake()
    assert brake.assess(0.0, Census(live=20, quiet=9)) is None
    assert brake.assess(0.0, Census(live=20, quiet=10)) is Transition.ENGAGED


def test_recent_expiries_count_within_the_window_only() -> None:
    brake = Brake(BrakeSettings(window=60.0))
    brake.record_expiries(0.0, 10)
    assert brake.assess(1.0, Census(live=50, quiet=0)) is Transition.ENGAGED
    assert brake.assess(61.0, Census(live=50, quiet=0)) is Transition.RELEASED


def test_state_reports_numbers_a_user_can_read() -> None:
    brake = Brake()
    brake.assess(5.0, Census(live=100, quiet=80))
    state = brake.state(7.5)
    assert state.engaged and state.engaged_seconds == 2.5
    assert (state.live_checks, state.quiet_checks, state.engagements) == (100, 80, 1)
    assert state.threshold == 0.15 and state.window_seconds == 60.0


def test_paused_registry_expires_nobody_when_it_wakes() -> None:
    """A SIGSTOP longer than every TTL: all deadlines are overdue at once."""
    clock = ManualClock()
    catalog = fleet(40, clock)
    brake = Brake()
    clock.advance(5 * TTL)
    assert catalog.expire(clock(), brake) == []
    assert brake.engaged and passing(catalog) == 40


def test_panic_threshold_reads_meta_or_falls_back_to_the_default() -> None:
    assert parse_fraction("0.5") == 0.5 and parse_fraction("25%") == 0.25
    assert parse_fraction("lots") is None and parse_fraction("2") is None
    metas = [{}, {"waypost-panic-threshold": "0.3"}, {"waypost-panic-threshold": "x"}]
    assert panic_threshold(metas, 0.0) == 0.3
    assert panic_threshold([{}], 0.1) == 0.1


def test_panic_only_below_the_threshold_and_never_when_off() -> None:
    assert is_panicking(passing=1, total=10, threshold=0.5)
    assert not is_panicking(passing=5, total=10, threshold=0.5)
    assert not is_panicking(passing=0, total=10, threshold=0.0)
    assert not is_panicking(passing=0, total=0, threshold=0.5)
