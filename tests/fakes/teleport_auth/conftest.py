"""Fixtures: a loopback FakeAuthServer per test and mTLS gRPC stubs for seeded users."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from fakes.teleport_auth.ca import ClusterAuthority
from fakes.teleport_auth.server import FakeAuthServer, ServeConfig
from sidecar.teleport.wire import access_monitoring_rules_service_pb2_grpc as amr_service_pb2_grpc
from sidecar.teleport.wire import authservice_pb2_grpc, users_service_pb2_grpc

CLUSTER = "fake.example.com"
API_DOMAIN = "teleport.cluster.local"


class Stubs:
    """AuthService, UsersService and AccessMonitoringRulesService stubs sharing one channel."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.auth = authservice_pb2_grpc.AuthServiceStub(channel)
        self.users = users_service_pb2_grpc.UsersServiceStub(channel)
        self.rules = amr_service_pb2_grpc.AccessMonitoringRulesServiceStub(channel)


def channel_for(
    addr: str, ca: ClusterAuthority, user: str, roles: tuple[str, ...], root: bytes | None = None, bot: str = ""
) -> Any:
    """A secure grpc.aio channel authenticated as `user` with `roles` (a Machine ID bot's identity when `bot`)."""
    ident = ca.issue_user(user, roles, timedelta(hours=1), bot_name=bot)
    creds = grpc.ssl_channel_credentials(
        root_certificates=root or ca.host_ca_pem, private_key=ident.key_pem, certificate_chain=ident.tls_cert_pem
    )
    return grpc.aio.secure_channel(addr, creds, options=(("grpc.ssl_target_name_override", API_DOMAIN),))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[FakeAuthServer]:
    config = ServeConfig(
        state_dir=tmp_path / "state",
        listen="127.0.0.1:0",
        proxy_listen="127.0.0.1:0",
        admin_listen="127.0.0.1:0",
        cluster_name=CLUSTER,
    )
    async with FakeAuthServer(config) as srv:
        yield srv


@pytest.fixture
async def connect(server: FakeAuthServer) -> AsyncIterator[Callable[..., Stubs]]:
    """`connect(user, roles=None, bot="")`: stubs for a user (roles default to the seed's; `bot` names the Machine
    ID bot the identity belongs to)."""
    channels: list[Any] = []

    def make(user: str, roles: tuple[str, ...] | None = None, bot: str = "") -> Stubs:
        if roles is None:
            roles = server.seed.users[user].roles
        channel = channel_for(server.auth_addr, server.ca, user, roles, bot=bot)
        channels.append(channel)
        return Stubs(channel)

    try:
        yield make
    finally:
        for channel in channels:
            await channel.close()
