"""A small asyncio etcd v3 client: what the etcd store needs, nothing more.

Built on grpc.aio with the generated etcd protobuf stubs that the `aetcd`
package ships (`aetcd.rpc`). aetcd's own client is not used: it connects to
one endpoint without TLS, has no watch progress or response headers, and
hands events one by one; a cluster store needs several endpoints with
failover, TLS with client certificates, and whole watch responses.

What it adds to raw gRPC:

- **Endpoints and failover.** One channel per endpoint; a call that cannot
  reach its endpoint, or reaches a member without a leader, moves on to the
  next one and tries again until its deadline. Every call carries etcd's
  `hasleader` metadata, so a member cut off from its cluster refuses at once
  instead of answering from a stale state.
- **Safe retries.** Reads and lease calls are retried freely. A transaction
  is retried only when it certainly did not reach etcd (no channel, or a
  member that refused it for want of a leader); otherwise `Ambiguous` says
  that it may or may not have been applied, and the caller decides.
- **Auth.** `user`/`password` get a token (etcd's Authenticate), sent with
  every call, renewed when etcd says it expired.

Errors: `EtcdUnavailable` (no endpoint could serve the call in time),
`Ambiguous` (a write's outcome is unknown), `Compacted` (a watch or read
asked for a revision etcd no longer keeps), `EtcdError` (anything else).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import grpc  # type: ignore[import-untyped]
import msgspec
from aetcd import rpc  # type: ignore[import-untyped]

from waypost.metrics import ETCD_REQUESTS, etcd_revision

logger = logging.getLogger("waypost.store.etcd")

#: How long one call may take, all retries included.
CALL_TIMEOUT = 5.0
#: How long to wait for a channel to connect before trying the next endpoint.
CONNECT_TIMEOUT = 1.0
#: Pause between two rounds over every endpoint.
RETRY_PAUSE = 0.05

#: etcd's rpctypes.MetadataRequireLeaderKey / MetadataHasLeader.
_REQUIRE_LEADER = ("hasleader", "true")

#: Our keepalive pings: etcd's default --grpc-keepalive-min-time is 5 s; more
#: often and it answers with GOAWAY "too_many_pings".
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 3000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]

Message = Any  # a protobuf message of etcd's API (untyped stubs)


class EtcdError(Exception):
    """etcd answered with an error we do not retry."""


class EtcdUnavailable(EtcdError):
    """No endpoint could serve the call in time (down, or no leader)."""


class Ambiguous(EtcdUnavailable):
    """A write was sent and its answer lost: it may or may not be applied."""


class Compacted(EtcdError):
    """The revision asked for was compacted away."""

    def __init__(self, revision: int) -> None:
        super().__init__(f"revision compacted (etcd keeps {revision} and later)")
        self.revision = revision


class TLSFiles(msgspec.Struct, frozen=True, kw_only=True):
    """PEM files for https:// endpoints (all optional)."""

    ca: str = ""
    cert: str = ""
    key: str = ""


class Endpoint:
    """One etcd member's client URL and its gRPC channel."""

    def __init__(self, url: str, tls: TLSFiles) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an etcd endpoint URL: {url!r}")
        self.url = url
        self.secure = parts.scheme == "https"
        self.target = f"{parts.hostname}:{parts.port or 2379}"
        self._tls = tls
        self._channel: Any = None

    @property
    def channel(self) -> Any:
        if self._channel is None:
            if self.secure:
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=_read(self._tls.ca),
                    private_key=_read(self._tls.key),
                    certificate_chain=_read(self._tls.cert),
                )
                self._channel = grpc.aio.secure_channel(
                    self.target, credentials, options=_CHANNEL_OPTIONS
                )
            else:
                self._channel = grpc.aio.insecure_channel(
                    self.target, options=_CHANNEL_OPTIONS
                )
        return self._channel

    async def ready(self, within: float) -> bool:
        channel = self.channel
        state = channel.get_state(try_to_connect=True)
        if state is grpc.ChannelConnectivity.READY:
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await channel.channel_ready()
                return True
        return False

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()


def _read(path: str) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as file:
        return file.read()


def prefix_end(prefix: bytes) -> bytes:
    """The range end that covers every key starting with `prefix`."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\x00"


def _code(error: BaseException) -> Any:
    return error.code() if isinstance(error, grpc.aio.AioRpcError) else None


def _details(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return str(error.details() or "")
    return str(error)


def _is_no_leader(error: BaseException) -> bool:
    """Refused by a member for want of a leader: certainly not applied."""
    details = _details(error)
    return _code(error) == grpc.StatusCode.UNAVAILABLE and (
        "no leader" in details or "not capable" in details
    )


def _is_retryable(error: BaseException) -> bool:
    return _code(error) in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
    ) or isinstance(error, TimeoutError)


def _is_auth_expired(error: BaseException) -> bool:
    return _code(error) == grpc.StatusCode.UNAUTHENTICATED or (
        "invalid auth token" in _details(error)
    )


class EtcdClient:
    """Calls to an etcd cluster through any of its endpoints."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        tls: TLSFiles | None = None,
        user: str = "",
        password: str = "",
        timeout: float = CALL_TIMEOUT,
    ) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoint given")
        tls = tls or TLSFiles()
        self.endpoints = [Endpoint(url, tls) for url in endpoints]
        self.timeout = timeout
        self._user = user
        self._password = password
        self._token = ""
        self._current = 0
        #: When a call last reached a member with a leader (monotonic).
        self.last_contact = 0.0

    @property
    def endpoint(self) -> Endpoint:
        return self.endpoints[self._current]

    def _rotate(self, failed: Endpoint) -> None:
        if self.endpoints[self._current] is failed:
            self._current = (self._current + 1) % len(self.endpoints)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        if self._token:
            return (_REQUIRE_LEADER, ("token", self._token))
        return (_REQUIRE_LEADER,)

    async def close(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.close()

    # ------------------------------------------------------------ calling

    async def _authenticate(self, endpoint: Endpoint, within: float) -> None:
        if not self._user:
            return
        stub = rpc.AuthStub(endpoint.channel)
        response = await stub.Authenticate(
            rpc.AuthenticateRequest(name=self._user, password=self._password),
            timeout=within,
        )
        self._token = response.token

    async def call(
        self,
        stub_type: Any,
        method: str,
        request: Message,
        *,
        mutation: bool = False,
        within: float | None = None,
    ) -> Message:
        """One unary call, moved to another endpoint while that is safe."""
        started = time.monotonic()
        deadline = started + (within or self.timeout)
        last_error: BaseException | None = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EtcdUnavailable(
                    f"no etcd endpoint answered in time ({last_error_text(last_error)})"
                )
            endpoint = self.endpoint
            if not await endpoint.ready(min(CONNECT_TIMEOUT, left)):
                last_error = ConnectionError(f"cannot connect to {endpoint.url}")
                self._rotate(endpoint)
                await asyncio.sleep(min(RETRY_PAUSE, max(left, 0)))
                continue
            try:
                if self._user and not self._token:
                    await self._authenticate(endpoint, left)
                stub = stub_type(endpoint.channel)
                response = await getattr(stub, method)(
                    request, timeout=max(left, 0.001), metadata=self.metadata()
                )
            except grpc.aio.AioRpcError as error:
                last_error = error
                if _is_auth_expired(error) and self._user:
                    self._token = ""
                    continue
                if _is_no_leader(error):
                    self._rotate(endpoint)
                    await asyncio.sleep(RETRY_PAUSE)
                    continue
                if not _is_retryable(error):
                    raise EtcdError(_details(error)) from error
                if mutation:
                    self._rotate(endpoint)
                    raise Ambiguous(
                        f"lost the answer from {endpoint.url}: {_details(error)}"
                    ) from error
                self._rotate(endpoint)
                continue
            self.last_contact = time.monotonic()
            ETCD_REQUESTS.labelled(method).observe(self.last_contact - started)
            header = getattr(response, "header", None)
            if header is not None:
                etcd_revision(seen=int(header.revision))
            return response

    # ------------------------------------------------------------ KV

    async def range(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        keys_only: bool = False,
        serializable: bool = False,
        within: float | None = None,
    ) -> Message:
        request = rpc.RangeRequest(
            key=key,
            range_end=range_end,
            revision=revision,
            limit=limit,
            keys_only=keys_only,
            serializable=serializable,
        )
        try:
            return await self.call(rpc.KVStub, "Range", request, within=within)
        except EtcdError as error:
            if "compacted" in str(error):
                raise Compacted(revision) from error
            raise

    async def txn(
        self,
        compare: list[Message],
        success: list[Message],
        failure: list[Message],
        *,
        within: float | None = None,
    ) -> Message:
        request = rpc.TxnRequest(compare=compare, success=success, failure=failure)
        return await self.call(rpc.KVStub, "Txn", request, mutation=True, within=within)

    async def compact(self, revision: int) -> None:
        await self.call(
            rpc.KVStub,
            "Compact",
            rpc.CompactionRequest(revision=revision, physical=True),
            within=30.0,
        )

    # ------------------------------------------------------------ leases

    async def lease_grant(self, ttl: int) -> tuple[int, int]:
        response = await self.call(
            rpc.LeaseStub, "LeaseGrant", rpc.LeaseGrantRequest(TTL=ttl)
        )
        if response.error:
            raise EtcdError(response.error)
        return int(response.ID), int(response.TTL)

    async def lease_keepalive(self, lease_id: int, within: float) -> int:
        """One keepalive; the lease's remaining TTL (0: it expired)."""
        deadline = time.monotonic() + within
        while True:
            endpoint = self.endpoint
            left = deadline - time.monotonic()
            if left <= 0:
                raise EtcdUnavailable("lease keepalive: no endpoint answered")
            if not await endpoint.ready(min(CONNECT_TIMEOUT, left)):
                self._rotate(endpoint)
                continue
            stub = rpc.LeaseStub(endpoint.channel)
            call = stub.LeaseKeepAlive(
                iter([rpc.LeaseKeepAliveRequest(ID=lease_id)]),
                metadata=self.metadata(),
                timeout=max(left, 0.001),
            )
            try:
                async for response in call:
                    self.last_contact = time.monotonic()
                    return int(response.TTL)
                raise EtcdUnavailable("lease keepalive: stream ended")
            except grpc.aio.AioRpcError as error:
                if _is_auth_expired(error) and self._user:
                    self._token = ""
                    await self._authenticate(endpoint, left)
                    continue
                self._rotate(endpoint)
                if not (_is_retryable(error) or _is_no_leader(error)):
                    raise EtcdError(_details(error)) from error
                await asyncio.sleep(RETRY_PAUSE)
            finally:
                call.cancel()

    async def lease_revoke(self, lease_id: int) -> None:
        await self.call(
            rpc.LeaseStub,
            "LeaseRevoke",
            rpc.LeaseRevokeRequest(ID=lease_id),
            within=2.0,
        )

    # ------------------------------------------------------------ cluster

    async def member_list(self) -> Message:
        return await self.call(
            rpc.ClusterStub,
            "MemberList",
            rpc.MemberListRequest(),
            within=2.0,
        )

    async def cluster_status(self) -> Message:
        """Status of whichever member answers: its view of the leader."""
        return await self.call(
            rpc.MaintenanceStub, "Status", rpc.StatusRequest(), within=2.0
        )

    async def status(self, endpoint: Endpoint, within: float = 1.0) -> Message:
        """One member's own status (its leader's ID, raft term), no failover."""
        stub = rpc.MaintenanceStub(endpoint.channel)
        return await stub.Status(
            rpc.StatusRequest(),
            timeout=within,
            metadata=(("token", self._token),) if self._token else (),
        )

    # ------------------------------------------------------------ watch

    async def watch(
        self, key: bytes, range_end: bytes, start_revision: int
    ) -> AsyncIterator[Message]:
        """WatchResponses with events from `start_revision` on, through the
        current endpoint; raises `Compacted`, or `EtcdUnavailable` when the
        stream breaks (the caller resumes from the revision it applied)."""
        endpoint = self.endpoint
        if not await endpoint.ready(CONNECT_TIMEOUT):
            self._rotate(endpoint)
            raise EtcdUnavailable(f"cannot connect to {endpoint.url}")
        if self._user and not self._token:
            try:
                await self._authenticate(endpoint, CONNECT_TIMEOUT)
            except grpc.aio.AioRpcError as error:
                self._rotate(endpoint)
                raise EtcdUnavailable(_details(error)) from error
        create = rpc.WatchRequest(
            create_request=rpc.WatchCreateRequest(
                key=key,
                range_end=range_end,
                start_revision=start_revision,
                progress_notify=True,
            )
        )
        requests: asyncio.Queue[Message | None] = asyncio.Queue()
        requests.put_nowait(create)

        async def outgoing() -> AsyncIterator[Message]:
            while (request := await requests.get()) is not None:
                yield request

        stub = rpc.WatchStub(endpoint.channel)
        call = stub.Watch(outgoing(), metadata=self.metadata())
        try:
            async for response in call:
                self.last_contact = time.monotonic()
                if response.compact_revision:
                    raise Compacted(int(response.compact_revision))
                if response.canceled:
                    reason = response.cancel_reason or "watch canceled by etcd"
                    raise EtcdUnavailable(reason)
                yield response
            raise EtcdUnavailable(f"watch stream from {endpoint.url} ended")
        except grpc.aio.AioRpcError as error:
            self._rotate(endpoint)
            if _is_auth_expired(error):
                self._token = ""
            raise EtcdUnavailable(
                f"watch stream from {endpoint.url} broke: {_details(error)}"
            ) from error
        finally:
            requests.put_nowait(None)
            call.cancel()


def last_error_text(error: BaseException | None) -> str:
    if error is None:
        return "no attempt"
    return _details(error) or type(error).__name__


# Convenience constructors for transaction parts (the stubs are untyped).


def compare_mod(key: bytes, revision: int, *, range_end: bytes = b"") -> Message:
    """`mod_revision(key) == revision` (0: the key does not exist); with
    `range_end`, every key of the range was modified before `revision`."""
    if range_end:
        return rpc.Compare(
            key=key,
            range_end=range_end,
            target=rpc.Compare.MOD,
            result=rpc.Compare.LESS,
            mod_revision=revision,
        )
    return rpc.Compare(
        key=key,
        target=rpc.Compare.MOD,
        result=rpc.Compare.EQUAL,
        mod_revision=revision,
    )


def op_put(key: bytes, value: bytes, lease: int = 0) -> Message:
    return rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value, lease=lease))


def op_delete(key: bytes) -> Message:
    return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))


def op_get(key: bytes) -> Message:
    return rpc.RequestOp(request_range=rpc.RangeRequest(key=key))


EVENT_DELETE = rpc.Event.DELETE
