"""Fixtures shared by the client and harness tests: a CA, the in-test Auth server and a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from fakes.teleport_auth.ca import ClusterAuthority
from fakes.teleport_harness import HarnessClient
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.transport import TransportKind
from tests.teleport.servers import CLUSTER, AuthState, auth_server


@pytest.fixture
def authority(tmp_path: Path) -> ClusterAuthority:
    return ClusterAuthority.load_or_create(tmp_path / "ca", CLUSTER)


@pytest.fixture
async def server(authority: ClusterAuthority) -> AsyncIterator[tuple[int, AuthState]]:
    async with auth_server(authority) as running:
        yield running


@pytest.fixture
async def client(
    server: tuple[int, AuthState], authority: ClusterAuthority, tmp_path: Path
) -> AsyncIterator[TeleportClient]:
    path = tmp_path / "identity"
    authority.issue_user("access-plugin", ["access-plugin"], timedelta(hours=1)).write_identity_file(path)
    async with await TeleportClient.connect(
        f"127.0.0.1:{server[0]}", identity_file=path, transport=TransportKind.DIRECT, timeout=5
    ) as connected:
        yield connected


@pytest.fixture
def harness(client: TeleportClient) -> HarnessClient:
    """The harness's RPCs over `client` (to create the requests the client tests read)."""
    return HarnessClient(client)
