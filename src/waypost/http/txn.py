"""`PUT /v1/txn`: Consul's transactions (agent/txn_endpoint.go).

The body (Consul's api.TxnOps) is decoded and checked here: at most 64
operations, values within the KV limits; then one `core.txn.Txn` change
runs them all or none. 200 `{"Results": [...], "Errors": null}`, or 409
`{"Results": null, "Errors": [{"OpIndex": i, "What": "..."}]}`.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from waypost.core.model import Check, Node, Service
from waypost.core.txn import (
    GET,
    MAX_OPS,
    CheckOp,
    KVOp,
    NodeOp,
    ServiceOp,
    Txn,
    TxnAnswer,
    TxnOp,
    is_write,
    stamp_results,
)
from waypost.exceptions import InvalidRequest, PayloadTooLarge
from waypost.http import decode, wire
from waypost.http.catalog import require_local_datacenter
from waypost.http.kv import MAX_VALUE
from waypost.http.messages import Request, Response, json_response

if TYPE_CHECKING:
    from waypost.registry import Registry

#: Consul's txn_max_req_len default: the KV values of one transaction.
MAX_TXN_VALUES = 512 * 1024


def base64_field(value: object, path: str) -> object:
    """Go decodes a []byte field from base64 (encoding/json)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"Request decode failed: {path}: not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            f"Request decode failed: {path}: illegal base64 data"
        ) from None


_KV = decode.Obj(
    "KVTxnOp",
    {
        "Verb": decode.string,
        "Key": decode.string,
        "Value": base64_field,
        "Flags": decode.integer,
        "Index": decode.integer,
        "Session": decode.string,
        "Namespace": decode.string,
        "Partition": decode.string,
    },
)
_NODE = decode.Obj(
    "Node",
    {
        "ID": decode.string,
        "Node": decode.string,
        "Address": decode.string,
        "Datacenter": decode.string,
        "TaggedAddresses": decode.map_of(decode.string),
        "Meta": decode.map_of(decode.string),
        "Partition": decode.string,
        "PeerName": decode.string,
        "CreateIndex": decode.integer,
        "ModifyIndex": decode.integer,
    },
)
TXN_OP = decode.Obj(
    "TxnOp",
    {
        "KV": _KV,
        "Node": decode.Obj("NodeTxnOp", {"Verb": decode.string, "Node": _NODE}),
        "Service": decode.Obj(
            "ServiceTxnOp",
            {
                "Verb": decode.string,
                "Node": decode.string,
                "Service": decode.CATALOG_SERVICE,
            },
        ),
        "Check": decode.Obj(
            "CheckTxnOp", {"Verb": decode.string, "Check": decode.CATALOG_CHECK}
        ),
    },
)
TXN = decode.list_of(TXN_OP)


def _decode(body: bytes) -> list[decode.Decoded]:
    try:
        ops = TXN(decode.decode_json(body) if body.strip() else [], "")
    except InvalidRequest as exc:
        message = str(exc).removeprefix("Request decode failed: ")
        raise InvalidRequest(f"Failed to parse body: {message}") from None
    return ops  # type: ignore[return-value]


def _str(data: decode.Decoded, name: str) -> str:
    return str(data.get(name) or "")


def _int(data: decode.Decoded, name: str) -> int:
    value = data.get(name)
    return value if isinstance(value, int) else 0


def _kv_op(body: decode.Decoded) -> KVOp:
    value = body.get("Value")
    return KVOp(
        verb=_str(body, "Verb"),
        key=_str(body, "Key"),
        value=value if isinstance(value, bytes) else None,
        flags=_int(body, "Flags"),
        index=_int(body, "Index"),
        session=_str(body, "Session"),
    )


def _node_op(registry: Registry, body: decode.Decoded) -> NodeOp:
    data: decode.Decoded = body.get("Node") or {}  # type: ignore[assignment]
    node = Node(
        name=_str(data, "Node"),
        node_id=_str(data, "ID"),
        address=_str(data, "Address"),
        datacenter=_str(data, "Datacenter") or registry.config.datacenter,
        tagged_addresses=dict(data.get("TaggedAddresses") or {}),  # type: ignore[call-overload]
        meta=dict(data.get("Meta") or {}),  # type: ignore[call-overload]
    )
    return NodeOp(verb=_str(body, "Verb"), node=node, index=_int(data, "ModifyIndex"))


def _service_op(body: decode.Decoded) -> ServiceOp:
    data: decode.Decoded = body.get("Service") or {}  # type: ignore[assignment]
    verb, node = _str(body, "Verb"), _str(body, "Node")
    if verb in ("set", "cas"):
        service, _ = wire.to_service(data, node=node, name_field="Service")
    else:
        service = Service(node=node, service_id=_str(data, "ID"), name="")
    return ServiceOp(
        verb=verb, node=node, service=service, index=_int(data, "ModifyIndex")
    )


def _check_op(body: decode.Decoded) -> CheckOp:
    data: decode.Decoded = body.get("Check") or {}  # type: ignore[assignment]
    verb = _str(body, "Verb")
    node, check_id = _str(data, "Node"), _str(data, "CheckID")
    if verb in ("set", "cas"):
        definition = wire.to_definition(
            {
                **(data.get("Definition") or {}),  # type: ignore[dict-item]
                **{k: data[k] for k in ("Interval", "Timeout") if data.get(k)},
            }
        )
        check = wire.to_check(
            {**data, "Status": data.get("Status") or "critical"},
            node=node,
            check_id=check_id,
            default_name=check_id,
            service_id=_str(data, "ServiceID"),
            definition=definition,
        )
    else:
        check = Check(node=node, check_id=check_id)
    return CheckOp(verb=verb, check=check, index=_int(data, "ModifyIndex"))


def to_ops(registry: Registry, body: bytes) -> tuple[TxnOp, ...]:
    """convertOps: Consul's limits, then the ops; an empty op is skipped."""
    decoded = _decode(body)
    if len(decoded) > MAX_OPS:
        raise PayloadTooLarge(
            f"Transaction contains too many operations ({len(decoded)} > {MAX_OPS})"
        )
    ops: list[TxnOp] = []
    total = 0
    for item in decoded:
        if item.get("KV"):
            op = _kv_op(item["KV"])  # type: ignore[arg-type]
            size = len(op.value or b"")
            if size > MAX_VALUE:
                raise PayloadTooLarge(
                    f'Value for key "{op.key}" is too large ({size} > {MAX_VALUE}'
                    " bytes)"
                )
            total += size
            ops.append(op)
        elif item.get("Node"):
            ops.append(_node_op(registry, item["Node"]))  # type: ignore[arg-type]
        elif item.get("Service"):
            ops.append(_service_op(item["Service"]))  # type: ignore[arg-type]
        elif item.get("Check"):
            ops.append(_check_op(item["Check"]))  # type: ignore[arg-type]
    if total > MAX_TXN_VALUES:
        raise PayloadTooLarge(
            f"Value for transaction is too large ({total} > {MAX_TXN_VALUES} bytes)"
        )
    return tuple(ops)


def _result_json(kind: str, value: object) -> wire.JSON:
    if kind == "KV":
        return {"KV": wire.kv_json(value)}  # type: ignore[arg-type]
    if kind == "Node":
        return {"Node": wire.node_json(value)}  # type: ignore[arg-type]
    if kind == "Service":
        return {"Service": wire.node_service_json(value)}  # type: ignore[arg-type]
    return {"Check": wire.check_json(value)}  # type: ignore[arg-type]


async def txn(registry: Registry, request: Request) -> Response:
    require_local_datacenter(registry, request)
    ops = to_ops(registry, request.body)
    applied = await registry.apply(Txn(ops=ops, now=registry.now()))
    answer = applied.result
    assert isinstance(answer, TxnAnswer)
    if answer.errors:
        errors = [{"OpIndex": e.op_index, "What": e.what} for e in answer.errors]
        return json_response({"Results": None, "Errors": errors}, 409)
    answer = stamp_results(answer, applied.index)
    results = [_result_json(kind, value) for kind, value in answer.results]
    return json_response({"Results": results, "Errors": None})


__all__ = [
    "GET",
    "TXN",
    "TXN_OP",
    "CheckOp",
    "KVOp",
    "NodeOp",
    "ServiceOp",
    "is_write",
    "to_ops",
    "txn",
]
