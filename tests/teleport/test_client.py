"""TeleportClient against the in-test Auth server: every wrapper, the error mapping and the port adapters.

The requests it reads are created with the harness client (tests/teleport/test_harness.py tests that one).
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from fakes.teleport_auth.ca import ClusterAuthority
from fakes.teleport_harness import HarnessClient
from sidecar.domain.errors import (
    AccessDenied,
    AlreadyExists,
    CompareFailed,
    ConfigError,
    IdentityError,
    NotFound,
    PermanentError,
    Rejected,
    SidecarError,
    TransientError,
    Unauthorized,
    Unimplemented,
)
from sidecar.domain.ports import PluginDataStore, RoleLookup
from sidecar.teleport.client import TeleportClient, TeleportPluginData, TeleportRoles, map_rpc_error
from sidecar.teleport.convert import request_event_from_proto
from sidecar.teleport.transport import TransportKind
from sidecar.teleport.wire import event_pb2, types_pb2
from tests.teleport.servers import CLUSTER, AuthState, draft_request


async def test_ping_and_identity(client: TeleportClient, server: tuple[int, AuthState]) -> None:
    pong = await client.ping()
    assert pong.ClusterName == CLUSTER
    assert pong.ServerVersion == "18.0.0"
    assert client.identity.username == "access-plugin"
    assert client.provider.kind is TransportKind.DIRECT
    assert "version" not in server[1].metadata_keys[-1]


async def test_connect_with_a_key_pair(
    server: tuple[int, AuthState], authority: ClusterAuthority, tmp_path: Path
) -> None:
    crt, key, cas = authority.issue_user("kp", ["r"], timedelta(hours=1)).write_tls_files(tmp_path / "kp")
    async with await TeleportClient.connect(f"127.0.0.1:{server[0]}", key_pair=(key, crt, cas)) as client:
        assert (await client.ping()).RemoteAddr.startswith("kp/")


async def test_connect_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="either an identity file or a key pair"):
        await TeleportClient.connect("127.0.0.1:3025")
    with pytest.raises(IdentityError, match="file not found"):
        await TeleportClient.connect("127.0.0.1:3025", identity_file=tmp_path / "missing")
    with pytest.raises(ConfigError, match="must be host:port"):
        await TeleportClient.connect("localhost", identity_file=tmp_path / "missing")


async def test_unreachable_server_is_transient(authority: ClusterAuthority, tmp_path: Path) -> None:
    path = tmp_path / "identity"
    authority.issue_user("u", ["r"], timedelta(hours=1)).write_identity_file(path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        async with await TeleportClient.connect(
            f"127.0.0.1:{port}", identity_file=path, transport=TransportKind.DIRECT
        ) as client:
            with pytest.raises(TransientError, match=r"^Ping: UNAVAILABLE"):
                await client.ping()


async def test_watch_events(client: TeleportClient, server: tuple[int, AuthState]) -> None:
    _, state = server
    stream = client.watch_events(filters={"access_request": {"state": "PENDING"}})
    init = await anext(stream)
    assert init.Type == event_pb2.INIT
    assert [k.Kind for k in init.WatchStatus.Spec.Kinds] == ["access_request"]
    sent = state.watch_requests[-1]
    assert sent.AllowPartialSuccess is True
    assert dict(sent.Kinds[0].Filter) == {"state": "PENDING"}
    await state.watch_events.put(event_pb2.Event(Type=event_pb2.PUT, AccessRequest=draft_request("r1")))
    converted = request_event_from_proto(await anext(stream))
    assert converted.request_id == "r1"
    await state.watch_events.put(None)  # the server ends the stream
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    await stream.aclose()


async def test_watch_events_closed_by_the_consumer(client: TeleportClient) -> None:
    stream = client.watch_events()
    assert (await anext(stream)).Type == event_pb2.INIT
    await stream.aclose()
    assert (await client.ping()).ClusterName == CLUSTER  # the client is still usable


async def test_plugin_data_store(client: TeleportClient, harness: HarnessClient) -> None:
    store: PluginDataStore = TeleportPluginData(client, "mattermost")
    assert await store.get("r1") is None
    with pytest.raises(NotFound, match=r"^UpdatePluginData: NOT_FOUND: access request 'r1' not found"):
        await store.update("r1", {"user": "u"}, {"user": ""})
    await harness.create_access_request(draft_request("r1"))
    await store.update("r1", {"user": "u", "roles": "editor"}, {"user": "", "roles": ""})
    assert await store.get("r1") == {"user": "u", "roles": "editor"}
    with pytest.raises(CompareFailed, match="FAILED_PRECONDITION"):
        await store.update("r1", {"user": "x"}, {"user": "someone-else"})
    assert await TeleportPluginData(client, "slack").get("r1") is None
    with pytest.raises(Rejected, match="unsupported resource kind 'role'"):
        await client.get_plugin_data("r1", "mattermost", kind="role")
    assert [p.Metadata.Name for p in await client.get_plugin_data("r1", "mattermost")] == ["r1"]


async def test_clearing_every_key_removes_the_entry(
    client: TeleportClient, harness: HarnessClient, server: tuple[int, AuthState]
) -> None:
    """The in-test servicer follows Teleport's rules (`apply_update`): an entry left empty is removed."""
    await harness.create_access_request(draft_request("r1"))
    store = TeleportPluginData(client, "mattermost")
    await store.update("r1", {"user": "u", "roles": "editor"}, {})
    await store.update("r1", {"user": "", "roles": ""}, {"user": "u"})
    assert ("r1", "mattermost") not in server[1].plugin_data
    assert await client.get_plugin_data("r1", "mattermost") == []
    assert await store.get("r1") is None
    with pytest.raises(CompareFailed, match='expectations not met for field "user"'):
        await store.update("r1", {"user": "x"}, {"user": "u"})


async def test_list_access_requests_pages(
    client: TeleportClient, harness: HarnessClient, server: tuple[int, AuthState]
) -> None:
    for i in range(5):
        await harness.create_access_request(draft_request(f"r{i}", user="a" if i % 2 else "b"))
    everything = await client.list_access_requests(page_size=2)
    assert [r.Metadata.Name for r in everything] == ["r0", "r1", "r2", "r3", "r4"]
    assert server[1].page_limits == [2, 2, 2]
    only_a = await client.list_access_requests(types_pb2.AccessRequestFilter(User="a"))
    assert [r.Metadata.Name for r in only_a] == ["r1", "r3"]


async def test_list_falls_back_to_get_access_requests_v2(
    client: TeleportClient, harness: HarnessClient, server: tuple[int, AuthState]
) -> None:
    for i in range(3):
        await harness.create_access_request(draft_request(f"r{i}"))
    server[1].list_unimplemented = True
    assert [r.Metadata.Name for r in await client.list_access_requests()] == ["r0", "r1", "r2"]
    assert server[1].page_limits == []
    assert len(await client.get_access_requests_v2(types_pb2.AccessRequestFilter(ID="nope", User="x"))) == 0


async def test_roles(client: TeleportClient, server: tuple[int, AuthState]) -> None:
    _, state = server
    state.roles["editor"] = ["root", "ubuntu"]
    state.forbidden_roles.add("secret")
    roles: RoleLookup = TeleportRoles(client)
    assert await roles.role_logins("editor") == ["root", "ubuntu"]
    with pytest.raises(AccessDenied):
        await roles.role_logins("secret")
    with pytest.raises(NotFound, match='GetRole: NOT_FOUND: role "ghost" is not found'):
        await client.get_role("ghost")


def _rpc_error(code: grpc.StatusCode, details: str = "boom") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.ALREADY_EXISTS, AlreadyExists),
        (grpc.StatusCode.PERMISSION_DENIED, AccessDenied),
        (grpc.StatusCode.FAILED_PRECONDITION, CompareFailed),
        (grpc.StatusCode.INVALID_ARGUMENT, Rejected),
        (grpc.StatusCode.UNAVAILABLE, TransientError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, TransientError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, TransientError),
        (grpc.StatusCode.INTERNAL, TransientError),
        (grpc.StatusCode.UNAUTHENTICATED, Unauthorized),
        (grpc.StatusCode.UNIMPLEMENTED, Unimplemented),
        (grpc.StatusCode.UNKNOWN, PermanentError),
        (grpc.StatusCode.DATA_LOSS, PermanentError),
    ],
)
def test_status_mapping(code: grpc.StatusCode, expected: type[SidecarError]) -> None:
    error = map_rpc_error(_rpc_error(code), "GetRole")
    assert type(error) is expected
    assert str(error) == f"GetRole: {code.name}: boom"


def test_unimplemented_is_permanent() -> None:
    assert issubclass(Unimplemented, PermanentError)
    assert str(map_rpc_error(_rpc_error(grpc.StatusCode.UNAVAILABLE, ""), "Ping")) == "Ping: UNAVAILABLE"


async def test_calls_after_close_fail_clearly(client: TeleportClient) -> None:
    await client.close()
    with pytest.raises(RuntimeError, match="closed"):
        await client.ping()
