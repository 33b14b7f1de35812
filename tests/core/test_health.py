"""Deadlines: re-arming replaces, disarming cancels, due keys pop in order."""

from __future__ import annotations

from waypost.core.health import Deadlines


def test_rearmed_key_uses_its_latest_deadline() -> None:
    deadlines = Deadlines()
    deadlines.arm("a", 10.0)
    deadlines.arm("a", 20.0)
    assert deadlines.pop_due(15.0) == []
    assert deadlines.pop_due(20.0) == ["a"]
    assert len(deadlines) == 0


def test_disarmed_key_never_fires() -> None:
    deadlines = Deadlines()
    deadlines.arm("a", 1.0)
    deadlines.disarm("a")
    assert deadlines.pop_due(100.0) == []
    assert deadlines.next_deadline() is None


def test_next_deadline_skips_superseded_entries() -> None:
    deadlines = Deadlines()
    deadlines.arm("a", 1.0)
    deadlines.arm("a", 5.0)
    deadlines.arm("b", 3.0)
    assert deadlines.next_deadline() == 3.0


def test_heap_stays_bounded_under_many_heartbeats() -> None:
    deadlines = Deadlines()
    for beat in range(10_000):
        deadlines.arm("a", float(beat))
    assert len(deadlines._heap) < 200
