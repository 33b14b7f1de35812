"""One lock contender, a real process: a py-consul session lock on one key.

py-consul has no lock recipe, so this is what `consul lock` (api/lock.go)
does: a session with a TTL (10 s), renewed every 3 s; `PUT ?acquire`; when
refused, a blocking query on the key until it is free; hold a while;
release. Every step is one line appended to a shared log (one `write` on an
O_APPEND descriptor), with the registry's indexes: the LockIndex and
ModifyIndex of the acquisition (read back while holding) and the
ModifyIndex of the release (a `/v1/txn` unlock, which answers it).

    python tests/locks/contender.py HOST PORT KEY LOG NAME
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time

import consul

TTL = 10
LOCK_DELAY = 1
RENEW_EVERY = 3.0


class Log:
    def __init__(self, path: str, name: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.name = name

    def write(self, event: str, **fields: object) -> None:
        line = {"event": event, "name": self.name, "pid": os.getpid()}
        line.update(fields, t=time.monotonic())
        os.write(self.fd, (json.dumps(line) + "\n").encode())


def renew_forever(c: consul.Consul, session: str, log: Log) -> None:
    while True:
        time.sleep(RENEW_EVERY)
        try:
            c.session.renew(session)
        except consul.NotFound:
            log.write("session-gone", session=session)
            os._exit(3)


def acquire(c: consul.Consul, key: str, session: str, name: str) -> None:
    """api/lock.go's loop: try, else wait until the key changes."""
    index = None
    while not c.kv.put(key, name, acquire=session):
        index, entry = c.kv.get(key, index=index, wait="5s")
        if entry is None or not entry.get("Session"):
            # Free but refused: its lock-delay runs. lock.go retries later.
            time.sleep(0.2)
            index = None


def main() -> None:
    host, port, key, path, name = sys.argv[1:6]
    log = Log(path, name)
    c = consul.Consul(host=host, port=int(port))
    session = c.session.create(
        name=name, ttl=TTL, lock_delay=LOCK_DELAY, behavior="release"
    )
    log.write("session", session=session)
    threading.Thread(target=renew_forever, args=(c, session, log), daemon=True).start()
    while True:
        acquire(c, key, session, name)
        _, entry = c.kv.get(key)
        if entry is None or entry.get("Session") != session:
            log.write("lost", session=session, stage="after acquire")
            continue
        log.write(
            "acquired",
            session=session,
            lock_index=entry["LockIndex"],
            index=entry["ModifyIndex"],
        )
        time.sleep(random.uniform(0.3, 1.2))  # the critical section
        log.write("releasing", session=session)
        try:
            answer = c.txn.put(
                [{"KV": {"Verb": "unlock", "Key": key, "Session": session}}]
            )
        except consul.ConsulException as exc:
            log.write("lost", session=session, stage="release", error=str(exc))
            continue
        log.write(
            "released", session=session, index=answer["Results"][0]["KV"]["ModifyIndex"]
        )
        time.sleep(random.uniform(0.0, 0.3))


if __name__ == "__main__":
    main()
