"""Loopback servers for the transport and client tests: a small mTLS Auth gRPC server and a TLS router.

The Auth servicer keeps requests and plugin data in memory with just enough of Teleport's behaviour to exercise
every client wrapper (plugin data with the fake Auth's `apply_update`, fakes/teleport_auth/plugin_data.py); the
fake Auth service proper lives in fakes/teleport_auth/. The router reads the
ClientHello's SNI and ALPN, like Teleport's proxy, and then forwards the bytes unopened to the Auth port.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc
from cryptography import x509
from google.protobuf import empty_pb2

from fakes.teleport_auth.ca import ClusterAuthority
from fakes.teleport_auth.plugin_data import ExpectMismatch, apply_update
from sidecar.teleport.wire import (
    authservice_pb2,
    authservice_pb2_grpc,
    event_pb2,
    types_pb2,
    users_service_pb2,
    users_service_pb2_grpc,
)

CLUSTER = "client.example.com"  # the cluster of the client and harness tests' CA (tests/teleport/conftest.py)


def draft_request(request_id: str, user: str = "requester@example.com") -> types_pb2.AccessRequestV3:
    """An access request to create: id, user and the `editor` role."""
    return types_pb2.AccessRequestV3(
        Metadata=types_pb2.Metadata(Name=request_id),
        Spec=types_pb2.AccessRequestSpecV3(User=user, Roles=["editor"]),
    )


async def abort(context: Any, code: grpc.StatusCode, message: str) -> NoReturn:
    """End the call with a status; typed so that code after it is known to be unreachable."""
    await context.abort(code, message)
    raise AssertionError("context.abort returned")


def peer_of(context: Any) -> tuple[str, int]:
    """(CN, serial) of the calling client's certificate."""
    auth = context.auth_context()
    cert = x509.load_pem_x509_certificate(auth["x509_pem_cert"][0])
    return auth["x509_common_name"][0].decode(), cert.serial_number


@dataclass
class AuthState:
    """What the in-test Auth server stores and observes."""

    cluster: str
    requests: dict[str, types_pb2.AccessRequestV3] = field(default_factory=dict)
    plugin_data: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    roles: dict[str, list[str]] = field(default_factory=dict)
    forbidden_roles: set[str] = field(default_factory=set)
    users: dict[str, list[str]] = field(default_factory=dict)
    list_unimplemented: bool = False
    page_limits: list[int] = field(default_factory=list)
    metadata_keys: list[set[str]] = field(default_factory=list)
    watch_requests: list[authservice_pb2.Watch] = field(default_factory=list)
    watch_events: asyncio.Queue[event_pb2.Event | None] = field(default_factory=asyncio.Queue)


class AuthServicer(authservice_pb2_grpc.AuthServiceServicer):
    """The RPCs of the minimal AuthService, in memory."""

    def __init__(self, state: AuthState) -> None:
        self.state = state

    def _seen(self, context: Any) -> None:
        self.state.metadata_keys.append({k for k, _ in context.invocation_metadata()})

    async def Ping(self, request: Any, context: Any) -> authservice_pb2.PingResponse:
        self._seen(context)
        cn, serial = peer_of(context)
        resp = authservice_pb2.PingResponse(
            ClusterName=self.state.cluster, ServerVersion="18.0.0", RemoteAddr=f"{cn}/{serial}"
        )
        resp.ServerFeatures.SetInParent()
        return resp

    async def WatchEvents(self, request: Any, context: Any) -> AsyncIterator[event_pb2.Event]:
        self._seen(context)
        self.state.watch_requests.append(request)
        status = types_pb2.WatchStatusV1(Kind="watch_status", Version="v1")
        status.Spec.Kinds.extend(k for k in request.Kinds if k.Kind == "access_request")
        yield event_pb2.Event(Type=event_pb2.INIT, WatchStatus=status)
        while (event := await self.state.watch_events.get()) is not None:
            yield event

    async def GetPluginData(self, request: Any, context: Any) -> authservice_pb2.PluginDataSeq:
        self._seen(context)
        if request.Kind != "access_request":
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"unsupported resource kind {request.Kind!r}")
        data = self.state.plugin_data.get((request.Resource, request.Plugin))
        if data is None:
            return authservice_pb2.PluginDataSeq()
        item = types_pb2.PluginDataV3(Kind="plugin_data", SubKind="access_request", Version="v3")
        item.Metadata.Name = request.Resource
        item.Spec.Entries[request.Plugin].Data.update(data)
        return authservice_pb2.PluginDataSeq(PluginData=[item])

    async def UpdatePluginData(self, request: Any, context: Any) -> empty_pb2.Empty:
        self._seen(context)
        if request.Resource not in self.state.requests:
            await abort(context, grpc.StatusCode.NOT_FOUND, f"access request {request.Resource!r} not found")
        key = (request.Resource, request.Plugin)
        try:
            entry = apply_update(self.state.plugin_data.get(key), request.Set, request.Expect)
        except ExpectMismatch as exc:
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        if entry is None:
            self.state.plugin_data.pop(key, None)
        else:
            self.state.plugin_data[key] = entry
        return empty_pb2.Empty()

    async def CreateAccessRequestV2(self, request: Any, context: Any) -> types_pb2.AccessRequestV3:
        self._seen(context)
        if request.Metadata.Name in self.state.requests:
            await abort(context, grpc.StatusCode.ALREADY_EXISTS, "access request already exists")
        created = types_pb2.AccessRequestV3()
        created.CopyFrom(request)
        created.Kind, created.Version = "access_request", "v3"
        created.Spec.State = types_pb2.PENDING
        self.state.requests[request.Metadata.Name] = created
        return created

    async def DeleteAccessRequest(self, request: Any, context: Any) -> empty_pb2.Empty:
        self._seen(context)
        if self.state.requests.pop(request.ID, None) is None:
            await abort(context, grpc.StatusCode.NOT_FOUND, f"access request {request.ID!r} not found")
        return empty_pb2.Empty()

    async def SetAccessRequestState(self, request: Any, context: Any) -> empty_pb2.Empty:
        self._seen(context)
        stored = self.state.requests.get(request.ID)
        if stored is None:
            await abort(context, grpc.StatusCode.NOT_FOUND, f"access request {request.ID!r} not found")
        stored.Spec.State = request.State
        stored.Spec.ResolveReason = request.Reason
        return empty_pb2.Empty()

    async def SubmitAccessReview(self, request: Any, context: Any) -> types_pb2.AccessRequestV3:
        self._seen(context)
        stored = self.state.requests.get(request.RequestID)
        if stored is None:
            await abort(context, grpc.StatusCode.NOT_FOUND, "access request not found")
        if request.Review.ProposedState == types_pb2.PROMOTED:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "promotion is not a review state")
        review = types_pb2.AccessReview()
        review.CopyFrom(request.Review)
        review.Author = review.Author or peer_of(context)[0]
        review.Created.GetCurrentTime()
        stored.Spec.Reviews.append(review)
        stored.Spec.State = review.ProposedState
        return stored

    def _matching(self, flt: types_pb2.AccessRequestFilter) -> list[types_pb2.AccessRequestV3]:
        return [
            r for _, r in sorted(self.state.requests.items())
            if (not flt.ID or r.Metadata.Name == flt.ID)
            and (not flt.User or r.Spec.User == flt.User)
            and (not flt.State or r.Spec.State == flt.State)
        ]

    async def ListAccessRequests(self, request: Any, context: Any) -> authservice_pb2.ListAccessRequestsResponse:
        self._seen(context)
        if self.state.list_unimplemented:
            await abort(context, grpc.StatusCode.UNIMPLEMENTED, "unknown method ListAccessRequests")
        self.state.page_limits.append(request.Limit)
        items = self._matching(request.Filter)
        start = int(request.StartKey or 0)
        page = items[start : start + request.Limit]
        next_key = str(start + request.Limit) if start + request.Limit < len(items) else ""
        return authservice_pb2.ListAccessRequestsResponse(AccessRequests=page, NextKey=next_key)

    async def GetAccessRequestsV2(self, request: Any, context: Any) -> AsyncIterator[types_pb2.AccessRequestV3]:
        self._seen(context)
        for item in self._matching(request):
            yield item

    async def GetRole(self, request: Any, context: Any) -> types_pb2.RoleV6:
        self._seen(context)
        if request.Name in self.state.forbidden_roles:
            await abort(context, grpc.StatusCode.PERMISSION_DENIED, 'access denied to perform action "read" on role')
        if request.Name not in self.state.roles:
            await abort(context, grpc.StatusCode.NOT_FOUND, f'role "{request.Name}" is not found')
        role = types_pb2.RoleV6(Kind="role", Version="v7")
        role.Metadata.Name = request.Name
        role.Spec.Allow.Logins.extend(self.state.roles[request.Name])
        return role

    async def ListResources(self, request: Any, context: Any) -> authservice_pb2.ListResourcesResponse:
        await abort(context, grpc.StatusCode.UNIMPLEMENTED, "ListResources is served by the fake Auth only")


class UsersServicer(users_service_pb2_grpc.UsersServiceServicer):
    """teleport.users.v1.UsersService/GetUser, in memory."""

    def __init__(self, state: AuthState) -> None:
        self.state = state

    async def GetUser(self, request: Any, context: Any) -> users_service_pb2.GetUserResponse:
        if request.name not in self.state.users:
            await abort(context, grpc.StatusCode.NOT_FOUND, f'user "{request.name}" is not found')
        user = types_pb2.UserV2(Kind="user", Version="v2")
        user.Metadata.Name = request.name
        user.Spec.Roles.extend(self.state.users[request.name])
        return users_service_pb2.GetUserResponse(user=user)

    async def ListUsers(self, request: Any, context: Any) -> users_service_pb2.ListUsersResponse:
        await abort(context, grpc.StatusCode.UNIMPLEMENTED, "ListUsers is served by the fake Auth only")


@contextlib.asynccontextmanager
async def auth_server(authority: ClusterAuthority) -> AsyncIterator[tuple[int, AuthState]]:
    """An mTLS gRPC server on 127.0.0.1 presenting `server_tls()` and requiring certs from the User CA."""
    state = AuthState(cluster=authority.cluster_name)
    server = grpc.aio.server(
        options=[
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 60_000),
        ]
    )
    authservice_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(state), server)
    users_service_pb2_grpc.add_UsersServiceServicer_to_server(UsersServicer(state), server)
    cert_pem, key_pem = authority.server_tls()
    credentials = grpc.ssl_server_credentials(
        [(key_pem, cert_pem)], root_certificates=authority.user_ca_pem, require_client_auth=True
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield port, state
    finally:
        await state.watch_events.put(None)
        await server.stop(grace=None)


# --- a TLS router standing in for Teleport's proxy


@dataclass(frozen=True)
class ClientHello:
    """The parts of a TLS ClientHello a router routes on."""

    server_name: str
    alpn: tuple[str, ...]


def parse_client_hello(data: bytes) -> ClientHello:
    """Parse SNI and ALPN from a complete TLS ClientHello record. Raises ValueError when malformed."""
    if len(data) < 5 or data[0] != 0x16:
        raise ValueError("not a TLS handshake record")
    body = data[5:]
    if body[0] != 0x01:
        raise ValueError("not a ClientHello")
    pos = 4 + 2 + 32  # handshake header, legacy version, random
    pos += 1 + body[pos]  # session id
    pos += 2 + struct.unpack_from("!H", body, pos)[0]  # cipher suites
    pos += 1 + body[pos]  # compression methods
    end = pos + 2 + struct.unpack_from("!H", body, pos)[0]
    pos += 2
    server_name, alpn = "", []
    while pos + 4 <= end:
        ext_type, ext_len = struct.unpack_from("!HH", body, pos)
        ext = body[pos + 4 : pos + 4 + ext_len]
        if ext_type == 0:  # server_name: list length, name type, name length, name
            name_len = struct.unpack_from("!H", ext, 3)[0]
            server_name = ext[5 : 5 + name_len].decode()
        elif ext_type == 16:  # application_layer_protocol_negotiation
            i = 2
            while i < len(ext):
                n = ext[i]
                alpn.append(ext[i + 1 : i + 1 + n].decode())
                i += 1 + n
        pos += 4 + ext_len
    return ClientHello(server_name, tuple(alpn))


@dataclass
class RouterLog:
    """Every ClientHello the router saw."""

    hellos: list[ClientHello] = field(default_factory=list)


@contextlib.asynccontextmanager
async def tls_router(target_port: int, require_prefix: str = "teleport-auth@") -> AsyncIterator[tuple[int, RouterLog]]:
    """Forward connections whose first ALPN value starts with `require_prefix` to 127.0.0.1:target_port."""
    log = RouterLog()
    tasks: set[asyncio.Task[Any]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        up_writer: asyncio.StreamWriter | None = None
        try:
            header = await reader.readexactly(5)
            record = header + await reader.readexactly(struct.unpack("!H", header[3:5])[0])
            hello = parse_client_hello(record)
            log.hellos.append(hello)
            if not hello.alpn or not hello.alpn[0].startswith(require_prefix):
                writer.close()
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
            up_writer.write(record)
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ValueError, ConnectionError):
            pass
        finally:
            writer.transport.abort()
            if up_writer is not None:
                up_writer.transport.abort()
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], log
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
