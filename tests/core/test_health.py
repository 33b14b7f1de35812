"""Deadlines: re-arming replaces, disarming cancels, due keys pop in order."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

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


def test_heartbeats_moving_a_deadline_later_do_not_grow_the_heap() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.arm("a", 10.0)
    for beat in range(1, 1000):
        deadlines.arm("a", 10.0 + beat)
    assert len(deadlines._heap) == 1
    assert deadlines.next_deadline() == 1009.0
    assert deadlines.pop_due(1008.9) == []
    assert deadlines.pop_due(1009.0) == ["a"]


def test_moving_a_deadline_earlier_takes_effect() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.arm("a", 10.0)
    deadlines.arm("a", 5.0)
    assert deadlines.next_deadline() == 5.0
    assert deadlines.pop_due(5.0) == ["a"]
    assert deadlines.pop_due(10.0) == []


def test_disarm_then_rearm_later_fires_once_at_the_new_deadline() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.arm("a", 5.0)
    deadlines.disarm("a")
    deadlines.arm("a", 8.0)
    assert deadlines.pop_due(6.0) == []
    assert deadlines.next_deadline() == 8.0
    assert deadlines.pop_due(8.0) == ["a"]
    assert len(deadlines) == 0


def test_many_keys_pop_in_deadline_order() -> None:
    deadlines: Deadlines[int] = Deadlines()
    for key in range(50):
        deadlines.arm(key, float(100 - key))
    for key in range(0, 50, 2):
        deadlines.arm(key, 1000.0 + key)  # heartbeats for even keys
    due = deadlines.pop_due(100.0)
    assert sorted(due) == list(range(1, 50, 2))
    assert due == sorted(due, key=lambda k: 100 - k)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["arm", "disarm", "pop", "peek"]),
            st.integers(min_value=0, max_value=5),
            st.floats(min_value=0, max_value=100, allow_nan=False),
        ),
        max_size=60,
    )
)
def test_deadlines_behave_like_a_plain_dict(ops: list[tuple[str, int, float]]) -> None:
    """Same answers as the obvious model: a dict of key → deadline."""
    deadlines: Deadlines[int] = Deadlines()
    model: dict[int, float] = {}
    for op, key, when in ops:
        if op == "arm":
            deadlines.arm(key, when)
            model[key] = when
        elif op == "disarm":
            deadlines.disarm(key)
            model.pop(key, None)
        elif op == "pop":
            due = deadlines.pop_due(when)
            expected = {k for k, d in model.items() if d <= when}
            assert set(due) == expected and len(due) == len(expected)
            for k in expected:
                del model[k]
        else:
            assert deadlines.next_deadline() == (min(model.values()) if model else None)
        assert len(deadlines) == len(model)
