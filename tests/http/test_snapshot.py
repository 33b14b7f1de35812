"""`/v1/snapshot` against real agents: a snapshot is the state at one index,
and restoring it gives that state back, durably, whole or not at all."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec

from waypost.core.catalog import Catalog
from waypost.core.changes import Row
from waypost.core.tables import TABLES
from waypost.snapshot import decode
from waypost.testing import EtcdCluster, run_agent

WRITERS = 4


def test_snapshots_cover_every_table() -> None:
    """A table added to core/tables.py must be dumped by Catalog.rows()."""
    assert set(TABLES) == Catalog.DUMPED_TABLES


def _rows(archive: bytes) -> dict[tuple[str, str], msgspec.Struct]:
    return {(table, key): value for table, key, value in _decoded(archive)}


def _decoded(archive: bytes) -> tuple[Row, ...]:
    return decode(archive).rows


def _index(response: httpx.Response) -> int:
    return int(response.headers["X-Consul-Index"])


@dataclass
class Writer:
    """One writer's own keys and services, and what each write left at which
    index: (index, kind, name, value or None when deleted)."""

    number: int
    log: list[tuple[int, str, str, bytes | None]] = field(default_factory=list)
    error: BaseException | None = None

    def run(self, url: str, stop: threading.Event) -> None:
        try:
            with httpx.Client(base_url=url, timeout=30) as http:
                step = 0
                while not stop.is_set():
                    self._step(http, step)
                    step += 1
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _step(self, http: httpx.Client, step: int) -> None:
        key = f"load/w{self.number}/k{step % 6}"
        if step % 5 == 4:
            assert http.delete(f"/v1/kv/{key}").json() is True
            # The key is this writer's alone: its topic's index is the delete's.
            gone = http.get(f"/v1/kv/{key}")
            assert gone.status_code == 404
            self.log.append((_index(gone), "kv", key, None))
            return
        if step % 7 == 6:
            name = f"svc-w{self.number}-{step % 3}"
            self._toggle_service(http, name)
            return
        value = f"w{self.number}-{step}".encode()
        assert http.put(f"/v1/kv/{key}", content=value).json() is True
        entry = http.get(f"/v1/kv/{key}").json()[0]
        self.log.append((entry["ModifyIndex"], "kv", key, value))

    def _toggle_service(self, http: httpx.Client, name: str) -> None:
        listed = http.get(f"/v1/catalog/service/{name}")
        if listed.json():
            http.put(f"/v1/agent/service/deregister/{name}").raise_for_status()
            after = http.get(f"/v1/catalog/service/{name}")
            assert after.json() == []
            self.log.append((_index(after), "svc", name, None))
        else:
            http.put(
                "/v1/agent/service/register", json={"Name": name, "Port": 80}
            ).raise_for_status()
            found = http.get(f"/v1/catalog/service/{name}").json()[0]
            self.log.append((found["ModifyIndex"], "svc", name, name.encode()))


def _expected_at(writers: list[Writer], index: int) -> dict[tuple[str, str], bytes]:
    """Replay every logged write up to `index`: the state the snapshot holds."""
    state: dict[tuple[str, str], bytes] = {}
    ops = sorted(op for w in writers for op in w.log if op[0] <= index)
    for _at, kind, name, value in ops:
        if value is None:
            state.pop((kind, name), None)
        else:
            state[(kind, name)] = value
    return state


def _written(
    rows: dict[tuple[str, str], msgspec.Struct],
) -> dict[tuple[str, str], bytes]:
    """The writers' keys and services among a snapshot's rows."""
    found: dict[tuple[str, str], bytes] = {}
    for (table, _key), value in rows.items():
        if table == "kv" and value.key.startswith("load/"):  # type: ignore[attr-defined]
            found[("kv", value.key)] = value.value  # type: ignore[attr-defined]
        elif table == "services" and value.name.startswith("svc-w"):  # type: ignore[attr-defined]
            found[("svc", value.name)] = value.name.encode()  # type: ignore[attr-defined]
    return found


def _snapshot_under_load(url: str) -> tuple[bytes, int, list[Writer]]:
    """Writers on their own keys; a snapshot in the middle; then more writes."""
    stop = threading.Event()
    writers = [Writer(n) for n in range(WRITERS)]
    threads = [
        threading.Thread(target=w.run, args=(url, stop), daemon=True) for w in writers
    ]
    for thread in threads:
        thread.start()
    with httpx.Client(base_url=url, timeout=30) as http:
        deadline = time.monotonic() + 30
        while sum(len(w.log) for w in writers) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        taken = http.get("/v1/snapshot")
        assert taken.status_code == 200, taken.text
        archive, index = taken.content, _index(taken)
        # Keep writing past the snapshot: these must all be undone.
        after = sum(len(w.log) for w in writers)
        while sum(len(w.log) for w in writers) < after + 40:
            assert time.monotonic() < deadline, "the writers stalled"
            time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(30)
    for writer in writers:
        assert writer.error is None, writer.error
    return archive, index, writers


def test_snapshot_under_write_load_restores_the_state_at_its_index(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with run_agent(dev=False, data_dir=data_dir) as agent:
        taken = _round_trip(agent.url)
    # Durable: a restarted agent has the restored state.
    with (
        run_agent(dev=False, data_dir=data_dir) as agent,
        httpx.Client(base_url=agent.url, timeout=30) as http,
    ):
        assert _rows(http.get("/v1/snapshot").content) == taken


def test_snapshot_under_write_load_on_etcd() -> None:
    """Cluster mode: the same cut and the same state after the restore;
    each row keeps its value and CreateIndex, and takes the restore's etcd
    revision as its ModifyIndex (etcd numbers every key it writes)."""
    with EtcdCluster(3) as etcd:
        args = ["--etcd", etcd.endpoints, "--etcd-prefix", "/load"]
        with run_agent(extra_args=args) as agent:
            _round_trip(agent.url, on_etcd=True)


def _without_modify_index(
    rows: dict[tuple[str, str], msgspec.Struct],
) -> dict[tuple[str, str], msgspec.Struct]:
    return {
        key: msgspec.structs.replace(value, modify_index=0)
        for key, value in rows.items()
    }


def _round_trip(
    url: str, *, on_etcd: bool = False
) -> dict[tuple[str, str], msgspec.Struct]:
    archive, index, writers = _snapshot_under_load(url)
    assert archive[:2] == b"\x1f\x8b"
    assert decode(archive).index == index
    taken = _rows(archive)
    # The snapshot is a consistent cut: exactly what the writers had
    # written up to its index, none of what they wrote after.
    expected = _expected_at(writers, index)
    assert _written(taken) == expected
    assert max(op[0] for w in writers for op in w.log) > index
    assert all(
        v.modify_index <= index  # type: ignore[attr-defined]
        for v in taken.values()
    )

    with httpx.Client(base_url=url, timeout=30) as http:
        before = _index(http.get("/v1/kv/load", params={"recurse": ""}))
        restored = http.put("/v1/snapshot", content=archive)
        assert restored.status_code == 200, restored.text
        # State after == state at the snapshot's index, row for row, with
        # each row's CreateIndex and ModifyIndex.
        again = http.get("/v1/snapshot")
        after = _rows(again.content)
        # The restore is a change of its own: the index moves on, never back.
        assert _index(again) > before
        listed = http.get("/v1/kv/load", params={"recurse": ""}).json()
        assert {("kv", e["Key"]) for e in listed} == {
            k for k in expected if k[0] == "kv"
        }
        if on_etcd:
            assert _without_modify_index(after) == _without_modify_index(taken)
            restored_at = {v.modify_index for v in after.values()}  # type: ignore[attr-defined]
            assert len(restored_at) == 1
            assert restored_at.pop() > before
            return taken
        assert after == taken
        for entry in listed:
            assert entry["ModifyIndex"] == taken[("kv", entry["Key"])].modify_index  # type: ignore[attr-defined]
    return taken


def _archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb") as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


def test_a_damaged_archive_is_refused_and_changes_nothing(
    fresh_http: httpx.Client,
) -> None:
    fresh_http.put("/v1/kv/keep", content=b"before").raise_for_status()
    good = fresh_http.get("/v1/snapshot").content
    fresh_http.put("/v1/kv/keep", content=b"after").raise_for_status()
    members = _members(good)
    tampered = bytearray(members["state.bin"])
    tampered[-1] ^= 0xFF
    cases = {
        "empty": b"",
        "not gzip": b"not a snapshot",
        "truncated": good[: len(good) // 2],
        "checksum mismatch": _archive({**members, "state.bin": bytes(tampered)}),
        "no sums": _archive({k: v for k, v in members.items() if k != "SHA256SUMS"}),
        "consul's": _archive(
            {
                "meta.json": b"{}",
                "state.bin": b"\x00",
                "SHA256SUMS": (
                    b"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
                    b"  meta.json\n"
                    b"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
                    b"  state.bin\n"
                ),
            }
        ),
        "extra member": _archive({**members, "../evil": b"x"}),
    }
    index = _index(fresh_http.get("/v1/kv/keep"))
    for case, body in cases.items():
        answer = fresh_http.put("/v1/snapshot", content=body)
        assert answer.status_code == 400, (case, answer.text)
        assert "snapshot" in answer.text, case
    after = fresh_http.get("/v1/kv/keep")
    assert after.json()[0]["Value"] == "YWZ0ZXI="  # "after"
    assert _index(after) == index


def test_a_restore_wakes_blocking_queries(fresh_http: httpx.Client) -> None:
    fresh_http.put("/v1/kv/watched", content=b"old").raise_for_status()
    archive = fresh_http.get("/v1/snapshot").content
    fresh_http.put("/v1/kv/watched", content=b"new").raise_for_status()
    index = _index(fresh_http.get("/v1/kv/watched"))
    answers: list[httpx.Response] = []

    def block() -> None:
        answers.append(
            fresh_http.get(
                "/v1/kv/watched", params={"index": str(index), "wait": "60s"}
            )
        )

    waiter = threading.Thread(target=block)
    waiter.start()
    time.sleep(0.3)  # let it park; the bound below is what is asserted
    started = time.monotonic()
    assert fresh_http.put("/v1/snapshot", content=archive).status_code == 200
    waiter.join(20)
    assert answers, "the blocking query was not woken"
    assert time.monotonic() - started < 10
    assert _index(answers[0]) > index
    assert answers[0].json()[0]["Value"] == "b2xk"  # "old"


def test_snapshot_answers_its_index_and_stale(fresh_http: httpx.Client) -> None:
    fresh_http.put("/v1/kv/a", content=b"1").raise_for_status()
    for params in ({}, {"stale": ""}):
        taken = fresh_http.get("/v1/snapshot", params=params)
        assert taken.status_code == 200
        assert taken.headers["Content-Type"] == "application/x-gzip"
        assert decode(taken.content).index == _index(taken)
        assert taken.headers["X-Consul-KnownLeader"] == "true"
    other = fresh_http.get("/v1/snapshot", params={"dc": "elsewhere"})
    assert other.status_code == 400
    assert fresh_http.post("/v1/snapshot").status_code == 405


def test_snapshot_needs_a_management_token() -> None:
    token = "d1f4c8a2-7c2e-4e0b-9a53-111122223333"
    args = ["--acl-enabled", "--acl-default-policy", "deny"]
    with (
        run_agent(extra_args=[*args, "--acl-initial-management", token]) as agent,
        httpx.Client(base_url=agent.url, timeout=30) as http,
    ):
        assert http.get("/v1/snapshot").status_code == 403
        assert http.put("/v1/snapshot", content=b"x").status_code == 403
        headers = {"X-Consul-Token": token}
        taken = http.get("/v1/snapshot", headers=headers)
        assert taken.status_code == 200
        # ACL rows are part of the state: the token survives a restore.
        restored = http.put("/v1/snapshot", content=taken.content, headers=headers)
        assert restored.status_code == 200
        assert http.get("/v1/acl/token/self", headers=headers).status_code == 200


def test_snapshot_save_and_restore_commands(tmp_path: Path) -> None:
    file = tmp_path / "backup.snap"
    with run_agent() as agent, httpx.Client(base_url=agent.url, timeout=30) as http:
        http.put("/v1/kv/cli", content=b"saved").raise_for_status()
        waypost = [sys.executable, "-m", "waypost", "snapshot"]
        addr = ["--http-addr", f"{agent.host}:{agent.port}"]
        saved = subprocess.run(
            [*waypost, "save", str(file), *addr],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert saved.returncode == 0, saved.stderr
        assert "Saved snapshot" in saved.stdout
        assert decode(file.read_bytes()).rows
        http.put("/v1/kv/cli", content=b"changed").raise_for_status()
        restored = subprocess.run(
            [*waypost, "restore", str(file), *addr],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert restored.returncode == 0, restored.stderr
        assert http.get("/v1/kv/cli", params={"raw": ""}).content == b"saved"
        file.write_bytes(b"garbage")
        refused = subprocess.run(
            [*waypost, "restore", str(file), *addr],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert refused.returncode == 1
        assert "failed to read snapshot" in refused.stderr


def test_snapshot_round_trip_on_etcd() -> None:
    """Cluster mode: the restore is one etcd transaction; rows keep their
    values and CreateIndex, their ModifyIndex is the restore's revision
    (etcd gives every key its own), and the other agent sees it too."""
    with EtcdCluster(3) as etcd:
        args = ["--etcd", etcd.endpoints, "--etcd-prefix", "/snap"]
        with (
            run_agent(node="a1", extra_args=args) as one,
            run_agent(node="a2", extra_args=args) as two,
            httpx.Client(base_url=one.url, timeout=30) as http,
            httpx.Client(base_url=two.url, timeout=30) as other,
        ):
            http.put("/v1/kv/e/1", content=b"one").raise_for_status()
            taken = http.get("/v1/snapshot")
            assert taken.status_code == 200
            rows = _rows(taken.content)
            http.put("/v1/kv/e/1", content=b"changed").raise_for_status()
            http.put("/v1/kv/e/2", content=b"new").raise_for_status()
            restored = http.put("/v1/snapshot", content=taken.content)
            assert restored.status_code == 200, restored.text
            deadline = time.monotonic() + 20
            for client in (http, other):
                while True:
                    again = _rows(client.get("/v1/snapshot").content)
                    if again.keys() == rows.keys():
                        break
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
                for key, value in rows.items():
                    assert again[key] == msgspec.structs.replace(
                        value,
                        modify_index=again[key].modify_index,  # type: ignore[attr-defined]
                    )
                got = client.get("/v1/kv/e/1", params={"raw": ""})
                assert got.content == b"one"
                assert client.get("/v1/kv/e/2").status_code == 404
