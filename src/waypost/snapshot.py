"""The snapshot archive: what `GET /v1/snapshot` answers and `PUT` restores.

Consul's archive is a gzipped tar of `meta.json` (the Raft snapshot's
metadata), `state.bin` (its FSM's msgpack stream) and `SHA256SUMS`
(`sha256sum` lines for both). waypost writes the same three members in the
same container, so tools that check the container or the sums work, and a
Consul tool reading `state.bin` fails cleanly on our format marker:

- `meta.json`: `{"Version": 1, "ID", "Index", "Term": 0, "Size",
  "Format": "waypost/1"}`, `Index` the state's index;
- `state.bin`: one msgpack map `{"Format": "waypost/1", "Index": n,
  "Tables": {table: [[key, <msgpack of the row>], ...]}}`, rows as the
  stores persist them (`core/tables.py`);
- `SHA256SUMS`: `<hex>  meta.json` and `<hex>  state.bin`.

# differs: Consul's state.bin is its Raft FSM stream; a waypost archive
restores into waypost only, and Consul's into Consul only.

Pure: bytes in, bytes out; no files, no sockets.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zlib

import msgspec

from waypost.core.changes import Row
from waypost.core.snapshot import Snapshot
from waypost.core.tables import LOAD_ORDER, TABLES

FORMAT = "waypost/1"
META, STATE, SUMS = "meta.json", "state.bin", "SHA256SUMS"

#: The largest archive member restored (a gzip bomb stops here).
MAX_MEMBER = 1 << 30


class SnapshotError(ValueError):
    """The archive is not a waypost snapshot, or it is damaged."""


class _State(msgspec.Struct, frozen=True):
    Format: str
    Index: int
    Tables: dict[str, list[tuple[str, bytes]]]


def encode(snapshot: Snapshot, *, now: float) -> bytes:
    """The gzipped tar of a snapshot; `now` (Unix seconds) dates its members."""
    encoder = msgspec.msgpack.Encoder()
    tables: dict[str, list[tuple[str, bytes]]] = {}
    for table, key, value in snapshot.rows:
        tables.setdefault(table, []).append((key, encoder.encode(value)))
    state = encoder.encode(_State(Format=FORMAT, Index=snapshot.index, Tables=tables))
    meta = json.dumps(
        {
            "Version": 1,
            "ID": f"waypost-{snapshot.index}-{int(now * 1000)}",
            "Index": snapshot.index,
            "Term": 0,
            "Size": len(state),
            "Format": FORMAT,
        },
        indent=2,
    ).encode()
    sums = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n"
        for name, data in ((META, meta), (STATE, state))
    ).encode()
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=int(now)) as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        for name, data in ((META, meta), (STATE, state), (SUMS, sums)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(now)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def decode(archive: bytes) -> Snapshot:
    """The snapshot in an archive; `SnapshotError` says what is wrong."""
    members = _members(archive)
    for name in (META, STATE, SUMS):
        if name not in members:
            raise SnapshotError(f"failed to read snapshot: {name} is missing")
    _verify(members)
    try:
        meta = json.loads(members[META])
    except ValueError as exc:
        raise SnapshotError(f"failed to read snapshot: bad {META}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("Format") != FORMAT:
        raise SnapshotError(
            "failed to read snapshot: not a waypost snapshot (a Consul"
            " snapshot restores into Consul only)"
        )
    try:
        state = msgspec.msgpack.decode(members[STATE], type=_State)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"failed to read snapshot: bad {STATE}: {exc}") from None
    if state.Format != FORMAT or state.Index != meta.get("Index"):
        raise SnapshotError(f"failed to read snapshot: {STATE} does not match {META}")
    return Snapshot(index=state.Index, rows=_rows(state))


def _members(archive: bytes) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    try:
        with (
            gzip.GzipFile(fileobj=io.BytesIO(archive), mode="rb") as unzipped,
            tarfile.open(fileobj=unzipped, mode="r|") as tar,
        ):
            for info in tar:
                if not info.isfile() or info.name not in (META, STATE, SUMS):
                    raise SnapshotError(
                        f"failed to read snapshot: unexpected member {info.name!r}"
                    )
                if info.size > MAX_MEMBER:
                    raise SnapshotError(
                        f"failed to read snapshot: {info.name} is too large"
                    )
                extracted = tar.extractfile(info)
                members[info.name] = extracted.read() if extracted else b""
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise SnapshotError(
            f"failed to read snapshot: not a gzipped tar archive ({exc})"
        ) from None
    return members


def _verify(members: dict[str, bytes]) -> None:
    """Consul's archive check: every listed sum matches, both files listed."""
    listed: dict[str, str] = {}
    for line in members[SUMS].decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        if name:
            listed[name] = digest
    for name in (META, STATE):
        if name not in listed:
            raise SnapshotError(f"failed to read snapshot: {name} has no checksum")
        if hashlib.sha256(members[name]).hexdigest() != listed[name]:
            raise SnapshotError(
                f"failed to read snapshot: checksum mismatch for {name}"
            )


def _rows(state: _State) -> tuple[Row, ...]:
    rows: list[Row] = []
    for table, entries in state.Tables.items():
        row_type = TABLES.get(table)
        if row_type is None:
            raise SnapshotError(f"failed to read snapshot: unknown table {table!r}")
        decoder = msgspec.msgpack.Decoder(row_type)
        for key, value in entries:
            try:
                rows.append((table, key, decoder.decode(value)))
            except msgspec.DecodeError as exc:
                raise SnapshotError(
                    f"failed to read snapshot: row {table}/{key!r}: {exc}"
                ) from None
    rows.sort(key=lambda row: LOAD_ORDER[row[0]])
    return tuple(rows)
