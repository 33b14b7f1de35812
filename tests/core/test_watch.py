"""Watchers wake only the waiters whose topics changed."""

from __future__ import annotations

from waypost.core.catalog import kv_prefix_topic, kv_topic, service_topic
from waypost.core.watch import Watchers


def test_change_to_another_service_wakes_nobody() -> None:
    watchers = Watchers()
    woken: list[str] = []
    watchers.add([service_topic("a")], lambda: woken.append("a"))
    watchers.add([service_topic("b")], lambda: woken.append("b"))
    assert watchers.notify([service_topic("b")]) == 1
    assert woken == ["b"]


def test_waiter_on_two_topics_wakes_once() -> None:
    watchers = Watchers()
    woken: list[int] = []
    topics = [service_topic("a"), service_topic("b")]
    watchers.add(topics, lambda: woken.append(1))
    watchers.notify(topics)
    assert woken == [1]


def test_kv_prefix_waiter_wakes_on_keys_under_it_only() -> None:
    watchers = Watchers()
    woken: list[str] = []
    watchers.add([kv_prefix_topic("app/")], lambda: woken.append("app"))
    watchers.notify([kv_topic("other/x")])
    assert woken == []
    watchers.notify([kv_topic("app/x")])
    assert woken == ["app"]


def test_discarded_waiter_is_not_called() -> None:
    watchers = Watchers()
    woken: list[int] = []

    def waiter() -> None:
        woken.append(1)

    watchers.add([service_topic("a")], waiter)
    watchers.discard([service_topic("a")], waiter)
    watchers.notify([service_topic("a")])
    assert woken == [] and len(watchers) == 0
