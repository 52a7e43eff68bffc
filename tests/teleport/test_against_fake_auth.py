"""The sidecar's client against the fake Auth service (fakes/teleport_auth/server.py), both transports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fakes.teleport_harness import HarnessClient
from sidecar.domain.model import RequestState
from sidecar.teleport.client import TeleportClient, TeleportPluginData
from sidecar.teleport.transport import TransportKind
from sidecar.teleport.wire import event_pb2, types_pb2

server_module = pytest.importorskip("fakes.teleport_auth.server")


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[Any]:
    config = server_module.ServeConfig(
        state_dir=tmp_path / "state",
        listen="127.0.0.1:0",
        proxy_listen="127.0.0.1:0",
        admin_listen="127.0.0.1:0",
        cluster_name="fake.example.com",
    )
    async with server_module.FakeAuthServer(config) as running:
        yield running


@pytest.fixture
def plugin_identity(fake: Any, tmp_path: Path) -> Path:
    path = tmp_path / "identity"
    fake.ca.issue_user("access-plugin", ["access-plugin"], timedelta(hours=1)).write_identity_file(path)
    return path


@pytest.mark.parametrize("via_proxy", [False, True])
async def test_ping_and_watch(fake: Any, plugin_identity: Path, via_proxy: bool) -> None:
    addr = fake.proxy_addr if via_proxy else fake.auth_addr
    async with await TeleportClient.connect(addr, identity_file=plugin_identity, timeout=5) as client:
        assert client.provider.kind is (TransportKind.TLS_ROUTING if via_proxy else TransportKind.DIRECT)
        pong = await client.ping()
        assert pong.ClusterName == "fake.example.com"
        assert pong.HasField("ServerFeatures")
        stream = client.watch_events()
        try:
            init = await anext(stream)
            assert init.Type == event_pb2.INIT
            assert "access_request" in [k.Kind for k in init.WatchStatus.Spec.Kinds]
        finally:
            await stream.aclose()


async def test_request_flow_as_admin_and_plugin(fake: Any, plugin_identity: Path, tmp_path: Path) -> None:
    admin_path = tmp_path / "admin"
    fake.ca.issue_user("admin", ["admin"], timedelta(hours=1)).write_identity_file(admin_path)
    async with (
        await TeleportClient.connect(fake.auth_addr, identity_file=admin_path, timeout=5) as admin_client,
        await TeleportClient.connect(fake.auth_addr, identity_file=plugin_identity, timeout=5) as plugin,
    ):
        admin = HarnessClient(admin_client)
        stream = plugin.watch_events()
        try:
            assert (await anext(stream)).Type == event_pb2.INIT
            draft = types_pb2.AccessRequestV3(
                Metadata=types_pb2.Metadata(Name="0b6c5b84-3f5e-4a43-9d1e-9b9a7d1c2e11"),
                Spec=types_pb2.AccessRequestSpecV3(User="requester@example.com", Roles=["editor"]),
            )
            created = await admin.create_access_request(draft)
            request_id = created.Metadata.Name
            put = await anext(stream)
            assert put.Type == event_pb2.PUT and put.AccessRequest.Metadata.Name == request_id
        finally:
            await stream.aclose()
        store = TeleportPluginData(plugin, "mattermost")
        await store.update(request_id, {"user": "requester@example.com"}, {"user": ""})
        assert (await store.get(request_id) or {}).get("user") == "requester@example.com"
        listed = await plugin.list_access_requests()
        assert request_id in [r.Metadata.Name for r in listed]
        await admin.set_access_request_state(request_id, RequestState.APPROVED, reason="ok")
