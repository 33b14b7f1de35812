"""One write path: a change is planned whole, refused whole, and takes one index.

Random sequences of valid and invalid changes run against a catalog; after
each, the state is what it was (refused), or the index moved by exactly one
(accepted and written), or not at all (accepted, nothing to write). At the
end, replaying only the accepted changes on an empty catalog gives the same
state, indexes included.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from waypost.core.catalog import Catalog
from waypost.core.changes import (
    CatalogRegister,
    Change,
    DeregisterCheck,
    DeregisterNode,
    DeregisterService,
    KVDelete,
    KVPut,
    RegisterCheck,
    RegisterNode,
    RegisterService,
    SetMaintenance,
    UpdateCheck,
)
from waypost.core.model import Check, CheckDefinition, HealthStatus, Node, Service
from waypost.core.planner import plan
from waypost.exceptions import RequestRejected

from .support import Driven

NODES = ["n1", "n2"]
IDS = ["s1", "s2", "s3"]
CHECK_IDS = ["c1", "c2", "service:s1"]
KEYS = ["a", "a/b", "a/c", "b"]
STATUSES = list(HealthStatus)


def dump(catalog: Catalog) -> dict[str, Any]:
    """Everything a reader could see, indexes included."""
    services = [
        s for name in catalog.service_names() for s in catalog.service_instances(name)
    ]
    return msgspec.to_builtins(
        {
            "index": catalog.index,
            "nodes": sorted(catalog.nodes.items()),
            "services": services,
            "checks": list(catalog.all_checks()),
            "kv": catalog.kv_list(""),
            "topics": sorted(catalog._topic_index.items()),
        }
    )


def check(node: str, check_id: str, service_id: str, status: HealthStatus) -> Check:
    return Check(
        node=node,
        check_id=check_id,
        name=check_id,
        service_id=service_id,
        status=status,
        definition=CheckDefinition(ttl=10.0),
    )


# Mostly the node that exists, so that most changes find what they name.
nodes = st.sampled_from(["n1", "n1", "n1", "n2", "ghost"])
ids = st.sampled_from(IDS)
check_ids = st.sampled_from(CHECK_IDS)
statuses = st.sampled_from(STATUSES)
maybe_service = st.sampled_from(["", *IDS])


@st.composite
def services(draw: st.DrawFn) -> Service:
    return Service(
        node=draw(nodes),
        service_id=draw(ids),
        name=draw(st.sampled_from(["web", "db"])),
        tags=draw(st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True)),
        port=draw(st.integers(0, 2)),
    )


@st.composite
def checks_for(draw: st.DrawFn, node: str, service_id: str) -> list[Check]:
    # Duplicate IDs and IDs of another service's check are refusals to hit.
    return draw(
        st.lists(
            st.builds(
                check,
                st.just(node),
                check_ids,
                st.just(service_id),
                statuses,
            ),
            max_size=3,
        )
    )


@st.composite
def changes(draw: st.DrawFn) -> Change:
    kind = draw(st.integers(0, 12))
    if kind == 0:
        return RegisterNode(
            node=Node(
                name=draw(nodes),
                address=draw(st.sampled_from(["10.0.0.1", "10.0.0.2"])),
            )
        )
    if kind == 1:
        service = draw(services())
        return RegisterService(
            service=service,
            checks=draw(checks_for(service.node, service.service_id)),
            replace_existing_checks=draw(st.booleans()),
            keep_status=draw(st.booleans()),
        )
    if kind == 2:
        node = draw(nodes)
        return RegisterCheck(
            check=check(node, draw(check_ids), draw(maybe_service), draw(statuses))
        )
    if kind == 3:
        node = draw(nodes)
        service = draw(st.none() | services())
        if service is not None:
            service = msgspec.structs.replace(service, node=node)
        return CatalogRegister(
            node=Node(
                name=node, address=draw(st.sampled_from(["10.0.0.1", "10.9.9.9"]))
            ),
            skip_node_update=draw(st.booleans()),
            service=service,
            checks=draw(checks_for(node, service.service_id if service else "")),
        )
    if kind == 4:
        return DeregisterService(
            node=draw(nodes), service_id=draw(ids), missing_ok=draw(st.booleans())
        )
    if kind == 5:
        return DeregisterCheck(
            node=draw(nodes), check_id=draw(check_ids), missing_ok=draw(st.booleans())
        )
    if kind == 6:
        return DeregisterNode(node=draw(nodes), missing_ok=draw(st.booleans()))
    if kind in (7, 8):
        return UpdateCheck(
            node=draw(nodes),
            check_id=draw(check_ids),
            status=draw(statuses),
            output=draw(st.sampled_from(["", "x"])),
        )
    if kind == 9:
        return SetMaintenance(
            node=draw(nodes),
            service_id=draw(maybe_service),
            enable=draw(st.booleans()),
            reason=draw(st.sampled_from(["", "r"])),
        )
    if kind == 10:
        return KVPut(
            key=draw(st.sampled_from(KEYS)),
            value=draw(st.binary(max_size=2)),
            cas=draw(st.none() | st.integers(0, 30)),
        )
    return KVDelete(
        key=draw(st.sampled_from(KEYS)),
        recurse=draw(st.booleans()),
        cas=draw(st.none() | st.integers(0, 30)),
    )


def run(driven: Driven, change: Change) -> bool:
    """Apply; True if accepted (written or not), False if refused."""
    try:
        driven.apply(change, now=0.0)
    except RequestRejected:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(st.lists(changes(), min_size=1, max_size=40))
def test_refused_changes_change_nothing_and_accepted_ones_replay_exactly(
    sequence: list[Change],
) -> None:
    driven = Driven()
    driven.upsert_node(Node(name="n1", address="10.0.0.1"))
    accepted: list[Change] = []
    for change in sequence:
        before = dump(driven.catalog)
        written = len(driven.entries)
        if not run(driven, change):
            assert dump(driven.catalog) == before, change
            assert len(driven.entries) == written
            continue
        accepted.append(change)
        after = dump(driven.catalog)
        if len(driven.entries) == written:  # accepted, nothing durable
            assert after["index"] == before["index"]
        else:  # one entry, one index
            assert len(driven.entries) == written + 1
            assert after["index"] == before["index"] + 1
            assert driven.entries[-1].index == after["index"]

    replay = Driven()
    replay.upsert_node(Node(name="n1", address="10.0.0.1"))
    for change in accepted:
        assert run(replay, change), change
    assert dump(replay.catalog) == dump(driven.catalog)


def test_refused_catalog_registration_leaves_the_node_as_it_was() -> None:
    """The issue's reproduction: a check of another service is refused, and
    the node's address and the index stay as they were."""
    driven = Driven()
    driven.apply(
        CatalogRegister(
            node=Node(name="n1", address="10.0.0.1"),
            service=Service(node="n1", service_id="s1", name="api"),
            checks=[check("n1", "c1", "s1", HealthStatus.PASSING)],
        )
    )
    before = dump(driven.catalog)
    with pytest.raises(RequestRejected, match='already belongs to service "s1"'):
        driven.apply(
            CatalogRegister(
                node=Node(name="n1", address="10.9.9.9"),
                service=Service(node="n1", service_id="s2", name="api"),
                checks=[check("n1", "c1", "s2", HealthStatus.PASSING)],
            )
        )
    assert dump(driven.catalog) == before
    assert driven.catalog.nodes["n1"].address == "10.0.0.1"


def test_planning_never_touches_the_catalog() -> None:
    driven = Driven()
    driven.upsert_node(Node(name="n1", address="10.0.0.1"))
    before = dump(driven.catalog)
    planned = plan(
        driven.catalog,
        RegisterService(
            service=Service(node="n1", service_id="s1", name="web"),
            checks=[check("n1", "c1", "s1", HealthStatus.PASSING)],
        ),
    )
    assert planned.rows and dump(driven.catalog) == before
