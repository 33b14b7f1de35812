"""A linearizability checker for histories of register reads, writes and CAS.

This is Porcupine's algorithm (github.com/anishathalye/porcupine), ported:
Lowe's "just-in-time linearizability" search (Testing for Linearizability,
2016, itself refining Wing & Gong) with Porcupine's memoization of
(linearized set, model state) and P-compositionality (each key is checked
on its own).

A history is a list of `Operation`s, each with the time it was invoked and
the time its answer came back, as the client saw them. The search lines the
operations up in one order that respects real time (an operation that
returned before another was invoked comes first) and in which every answer
is what a single register would have given. An operation whose outcome is
unknown (a timeout, a 503 for a write: it may or may not have been applied)
gets `returned = inf`, as Porcupine and Knossos do: it may take effect at
any point after its invocation, or, placed last, never.

The model is Consul's KV with unique values: `read` returns the value (None
when the key is absent), `write` sets it, `cas(expected, new)` sets it only
if the value is `expected` (a client's `?cas=<ModifyIndex>` names the value
it read at that index, and values are never written twice) and answers
whether it did.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

READ, WRITE, CAS = "read", "write", "cas"

#: Output of an operation whose outcome the client never learned.
UNKNOWN = object()


@dataclass(frozen=True)
class Operation:
    client: int
    key: str
    kind: str
    #: write: the value; cas: (expected, new); read: None.
    argument: object
    #: read: the value seen; write: None; cas: True/False; or UNKNOWN.
    output: object
    invoked: float
    returned: float


def step(state: object, op: Operation) -> tuple[bool, object]:
    """Is `op`'s output possible from `state`, and the state after it."""
    if op.kind == READ:
        return (op.output is UNKNOWN or op.output == state), state
    if op.kind == WRITE:
        return True, op.argument
    expected, new = op.argument  # type: ignore[misc]
    if state == expected:
        return op.output in (True, UNKNOWN), new
    return op.output in (False, UNKNOWN), state


@dataclass
class _Entry:
    op_id: int
    is_call: bool
    time: float
    op: Operation
    match: _Entry | None = None
    prev: _Entry | None = None
    next: _Entry | None = None


def _linked(ops: list[Operation]) -> _Entry:
    """Calls and returns in time order (a call before a return at the same
    time: they count as concurrent), as a doubly linked list with a head."""
    entries = []
    for op_id, op in enumerate(ops):
        call = _Entry(op_id, True, op.invoked, op)
        ret = _Entry(op_id, False, op.returned, op)
        call.match = ret
        entries += [call, ret]
    entries.sort(key=lambda e: (e.time, not e.is_call))
    head = _Entry(-1, False, -math.inf, ops[0] if ops else None)  # type: ignore[arg-type]
    previous = head
    for entry in entries:
        previous.next = entry
        entry.prev = previous
        previous = entry
    return head


def _lift(entry: _Entry) -> None:
    assert entry.prev is not None and entry.match is not None
    entry.prev.next = entry.next
    if entry.next is not None:
        entry.next.prev = entry.prev
    match = entry.match
    assert match.prev is not None
    match.prev.next = match.next
    if match.next is not None:
        match.next.prev = match.prev


def _unlift(entry: _Entry) -> None:
    match = entry.match
    assert match is not None and match.prev is not None
    match.prev.next = match
    if match.next is not None:
        match.next.prev = match
    assert entry.prev is not None
    entry.prev.next = entry
    if entry.next is not None:
        entry.next.prev = entry


def check_key(ops: list[Operation], initial: object = None) -> bool:
    """Is this one key's history linearizable (from `initial`)?"""
    if not ops:
        return True
    head = _linked(ops)
    state: object = initial
    linearized = 0
    cache: set[tuple[int, object]] = set()
    stack: list[tuple[_Entry, object]] = []
    entry = head.next
    while head.next is not None:
        assert entry is not None
        if entry.is_call:
            ok, new_state = step(state, entry.op)
            if ok:
                bits = linearized | (1 << entry.op_id)
                if (bits, new_state) not in cache:
                    cache.add((bits, new_state))
                    stack.append((entry, state))
                    state = new_state
                    linearized = bits
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
            continue
        # A return whose call is not linearized yet: undo the last choice.
        if not stack:
            return False
        top, state = stack.pop()
        linearized &= ~(1 << top.op_id)
        _unlift(top)
        entry = top.next
    return True


def check(ops: Iterable[Operation], initial: object = None) -> dict[str, bool]:
    """Each key's verdict (P-compositionality: keys are independent)."""
    by_key: dict[str, list[Operation]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    return {key: check_key(key_ops, initial) for key, key_ops in by_key.items()}
