"""What a query reads, by name: the topics waiters sleep on and changes wake."""

from __future__ import annotations

from waypost.core.watch import KV_KEY, KV_PREFIX, Topic

T_SERVICES: Topic = ("services", "")
T_NODES: Topic = ("nodes", "")
T_CHECKS: Topic = ("checks", "")


def service_topic(name: str) -> Topic:
    return ("service", name)


def node_topic(name: str) -> Topic:
    return ("node", name)


def kv_topic(key: str) -> Topic:
    return (KV_KEY, key)


def kv_prefix_topic(prefix: str) -> Topic:
    return (KV_PREFIX, prefix)


#: Every ACL object: the /v1/acl lists wake on any ACL change.
T_ACL: Topic = ("acl", "")
