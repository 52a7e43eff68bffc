"""Transports to Auth: direct mTLS and TLS routing through a proxy, transport choice, identity reloads."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from aiohttp import web

from fakes.teleport_auth.ca import ClusterAuthority
from sidecar.domain.errors import IdentityError
from sidecar.teleport.alpn_bridge import auth_alpn_protocols, client_ssl_context
from sidecar.teleport.identity import load_identity_file
from sidecar.teleport.transport import (
    KEEPALIVE_OPTIONS,
    RELOAD_FAILED,
    ChannelProvider,
    IdentitySource,
    OpenChannel,
    TransportKind,
    resolve_transport,
)
from sidecar.teleport.wire import authservice_pb2, event_pb2, types_pb2
from tests.teleport.servers import AuthState, auth_server, tls_router

CLUSTER = "transport.example.com"


@pytest.fixture
def authority(tmp_path: Path) -> ClusterAuthority:
    return ClusterAuthority.load_or_create(tmp_path / "home", CLUSTER)


@pytest.fixture
def identity_path(tmp_path: Path, authority: ClusterAuthority) -> Path:
    path = tmp_path / "identity"
    authority.issue_user("sidecar", ["access-plugin"], timedelta(hours=1)).write_identity_file(path)
    return path


@pytest.fixture
async def auth(authority: ClusterAuthority) -> AsyncIterator[tuple[int, AuthState]]:
    async with auth_server(authority) as server:
        yield server


async def _ping(channel: OpenChannel) -> authservice_pb2.PingResponse:
    response: authservice_pb2.PingResponse = await channel.auth.Ping(authservice_pb2.PingRequest(), timeout=5)
    return response


@pytest.fixture
async def provider_factory() -> AsyncIterator[list[ChannelProvider]]:
    providers: list[ChannelProvider] = []
    try:
        yield providers
    finally:
        for provider in providers:
            await provider.close()


async def _open(
    providers: list[ChannelProvider], addr: str, path: Path, kind: TransportKind, **kwargs: float | bool
) -> ChannelProvider:
    provider = await ChannelProvider.open(addr, IdentitySource(identity_file=path), kind, **kwargs)  # type: ignore[arg-type]
    providers.append(provider)
    return provider


async def test_direct_mtls(
    auth: tuple[int, AuthState], identity_path: Path, provider_factory: list[ChannelProvider]
) -> None:
    port, state = auth
    provider = await _open(provider_factory, f"127.0.0.1:{port}", identity_path, TransportKind.DIRECT)
    async with provider.lease() as channel:
        response = await _ping(channel)
    assert response.ClusterName == CLUSTER
    assert response.RemoteAddr.startswith("sidecar/")
    assert provider.identity.username == "sidecar"
    assert "version" not in state.metadata_keys[-1]


async def test_tls_routing_offers_the_auth_alpn(
    auth: tuple[int, AuthState], identity_path: Path, provider_factory: list[ChannelProvider]
) -> None:
    port, state = auth
    async with tls_router(port) as (router_port, router_log):
        provider = await _open(provider_factory, f"127.0.0.1:{router_port}", identity_path, TransportKind.TLS_ROUTING)
        async with provider.lease() as channel:
            response = await _ping(channel)
            assert channel.bridge is not None
        assert response.RemoteAddr.startswith("sidecar/")
        hello = router_log.hellos[0]
        assert hello.server_name == "teleport.cluster.local"
        assert hello.alpn == (f"teleport-auth@{CLUSTER.encode().hex()}.teleport.cluster.local", "h2")
        assert list(hello.alpn) == auth_alpn_protocols(CLUSTER)
        assert "version" not in state.metadata_keys[-1]


async def test_direct_channel_cannot_pass_the_router(
    auth: tuple[int, AuthState], identity_path: Path, provider_factory: list[ChannelProvider]
) -> None:
    port, _ = auth
    async with tls_router(port) as (router_port, router_log):
        provider = await _open(provider_factory, f"127.0.0.1:{router_port}", identity_path, TransportKind.DIRECT)
        async with provider.lease() as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await _ping(channel)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert router_log.hellos and router_log.hellos[0].alpn == ("h2",)


@pytest.mark.parametrize("kind", [TransportKind.DIRECT, TransportKind.TLS_ROUTING])
async def test_foreign_client_certificate_is_refused(
    auth: tuple[int, AuthState],
    authority: ClusterAuthority,
    tmp_path: Path,
    provider_factory: list[ChannelProvider],
    kind: TransportKind,
) -> None:
    port, state = auth
    foreign = ClusterAuthority.load_or_create(tmp_path / "foreign", CLUSTER)
    issued = foreign.issue_user("mallory", ["access-plugin"], timedelta(hours=1))
    path = tmp_path / "foreign-identity"
    # The foreign user trusts the right Host CA, so only the server's client-certificate check can refuse it.
    path.write_bytes(issued.key_pem + issued.tls_cert_pem + authority.host_ca_pem)
    async with tls_router(port) as (router_port, _):
        target = port if kind is TransportKind.DIRECT else router_port
        provider = await _open(provider_factory, f"127.0.0.1:{target}", path, kind)
        async with provider.lease() as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await _ping(channel)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert state.metadata_keys == []


async def test_foreign_server_is_refused(
    tmp_path: Path, identity_path: Path, provider_factory: list[ChannelProvider]
) -> None:
    foreign = ClusterAuthority.load_or_create(tmp_path / "foreign", CLUSTER)
    async with auth_server(foreign) as (port, state):
        provider = await _open(provider_factory, f"127.0.0.1:{port}", identity_path, TransportKind.DIRECT)
        async with provider.lease() as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await _ping(channel)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert state.metadata_keys == []


def test_keepalive_is_at_least_a_minute() -> None:
    options = dict(KEEPALIVE_OPTIONS)
    assert options["grpc.keepalive_time_ms"] >= 60_000
    assert options["grpc.keepalive_permit_without_calls"] == 1


def test_bridge_key_file_does_not_outlive_the_context(
    identity_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    context = client_ssl_context(load_identity_file(identity_path), ["h2"])
    assert isinstance(context, ssl.SSLContext)
    assert os.listdir(scratch) == []


# --- transport choice


@pytest.fixture
async def webapi_find(authority: ClusterAuthority, tmp_path: Path) -> AsyncIterator[tuple[int, dict[str, object]]]:
    answer: dict[str, object] = {"proxy": {"tls_routing_enabled": True}}

    async def find(request: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/webapi/find", find)
    cert_pem, key_pem = authority.server_tls()
    (tmp_path / "web.pem").write_bytes(cert_pem + key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "web.pem")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield port, answer
    finally:
        await runner.cleanup()


async def test_auto_uses_tls_routing_when_the_proxy_says_so(webapi_find: tuple[int, dict[str, object]]) -> None:
    port, answer = webapi_find
    assert await resolve_transport(f"127.0.0.1:{port}", TransportKind.AUTO) is TransportKind.TLS_ROUTING
    answer["proxy"] = {"tls_routing_enabled": False}
    assert await resolve_transport(f"127.0.0.1:{port}", TransportKind.AUTO) is TransportKind.DIRECT
    answer.clear()
    assert await resolve_transport(f"127.0.0.1:{port}", TransportKind.AUTO) is TransportKind.DIRECT
    assert await resolve_transport(f"127.0.0.1:{port}", TransportKind.DIRECT) is TransportKind.DIRECT


async def test_auto_falls_back_to_direct(auth: tuple[int, AuthState]) -> None:
    port, _ = auth  # a gRPC-only server: the HTTPS probe fails
    assert await resolve_transport(f"127.0.0.1:{port}", TransportKind.AUTO, probe_timeout=2) is TransportKind.DIRECT
    assert await resolve_transport("127.0.0.1:3025", TransportKind.AUTO) is TransportKind.DIRECT
    forced = await resolve_transport("127.0.0.1:3025", TransportKind.TLS_ROUTING)
    assert forced is TransportKind.TLS_ROUTING


# --- identity reloads


def _renew(authority: ClusterAuthority, path: Path, user: str = "sidecar") -> int:
    issued = authority.issue_user(user, ["access-plugin"], timedelta(hours=1))
    issued.write_identity_file(path)
    return issued.tls_cert.serial_number


@pytest.mark.parametrize("kind", [TransportKind.DIRECT, TransportKind.TLS_ROUTING])
async def test_rotation_moves_new_calls_and_keeps_the_stream(
    auth: tuple[int, AuthState],
    authority: ClusterAuthority,
    identity_path: Path,
    provider_factory: list[ChannelProvider],
    kind: TransportKind,
) -> None:
    port, state = auth
    async with tls_router(port) as (router_port, _):
        target = port if kind is TransportKind.DIRECT else router_port
        provider = await _open(provider_factory, f"127.0.0.1:{target}", identity_path, kind, close_grace=0)
        async with provider.lease() as first:
            old_serial = int((await _ping(first)).RemoteAddr.split("/")[1])
        assert await provider.check_now() is False  # nothing changed yet

        async with provider.lease() as stream_channel:
            stream = stream_channel.auth.WatchEvents(
                authservice_pb2.Watch(Kinds=[types_pb2.WatchKind(Kind="access_request")])
            )
            init = await stream.read()
            assert init.Type == event_pb2.INIT

            new_serial = _renew(authority, identity_path, user="sidecar-2")
            assert await provider.check_now() is True
            assert provider.generation == 2
            assert provider.identity.username == "sidecar-2"
            async with provider.lease() as second:
                assert second is not stream_channel
                response = await _ping(second)
            assert response.RemoteAddr == f"sidecar-2/{new_serial}"
            assert new_serial != old_serial

            # The stream opened before the reload still runs on the old channel.
            header = types_pb2.ResourceHeader(Kind="access_request", Metadata=types_pb2.Metadata(Name="r1"))
            await state.watch_events.put(event_pb2.Event(Type=event_pb2.DELETE, ResourceHeader=header))
            event = await stream.read()
            assert event.ResourceHeader.Metadata.Name == "r1"
            assert not stream_channel.closed.is_set()
            stream.cancel()
        await asyncio.wait_for(stream_channel.closed.wait(), timeout=5)


async def test_failed_reload_keeps_the_old_identity(
    auth: tuple[int, AuthState],
    authority: ClusterAuthority,
    identity_path: Path,
    provider_factory: list[ChannelProvider],
    caplog: pytest.LogCaptureFixture,
) -> None:
    port, _ = auth
    provider = await _open(provider_factory, f"127.0.0.1:{port}", identity_path, TransportKind.DIRECT)
    good = provider.identity
    await asyncio.to_thread(identity_path.write_text, "garbage\n")
    with caplog.at_level(logging.ERROR, logger="sidecar.teleport.transport"):
        assert await provider.check_now() is False
        assert await provider.check_now() is False  # the same broken content is reported once
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].getMessage().startswith(RELOAD_FAILED)
    assert f"identity file {identity_path}: no private key found" in errors[0].getMessage()
    assert provider.identity is good
    async with provider.lease() as channel:
        assert (await _ping(channel)).RemoteAddr.startswith("sidecar/")
    _renew(authority, identity_path)
    assert await provider.check_now() is True


async def test_unchanged_content_with_new_mtime_does_not_reconnect(
    auth: tuple[int, AuthState], identity_path: Path, provider_factory: list[ChannelProvider]
) -> None:
    port, _ = auth
    provider = await _open(provider_factory, f"127.0.0.1:{port}", identity_path, TransportKind.DIRECT)
    os.utime(identity_path, ns=(1, 1))
    assert await provider.check_now() is False
    assert provider.generation == 1


async def test_refresh_loop_picks_up_a_renewal(
    auth: tuple[int, AuthState],
    authority: ClusterAuthority,
    identity_path: Path,
    provider_factory: list[ChannelProvider],
) -> None:
    port, _ = auth
    provider = await _open(
        provider_factory, f"127.0.0.1:{port}", identity_path, TransportKind.DIRECT, refresh=True, refresh_interval=0.05
    )
    serial = _renew(authority, identity_path)
    await asyncio.wait_for(provider.wait_generation(2), timeout=5)
    async with provider.lease() as channel:
        assert (await _ping(channel)).RemoteAddr == f"sidecar/{serial}"


def test_bridge_context_refuses_unusable_material(identity_path: Path, authority: ClusterAuthority) -> None:
    identity = load_identity_file(identity_path)
    broken_ca = dataclasses.replace(
        identity, ca_pems=(b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n",)
    )
    with pytest.raises(IdentityError, match="the CA certificates cannot be used for TLS"):
        client_ssl_context(broken_ca, ["h2"])
    other_key = authority.issue_user("x", ["r"], timedelta(hours=1)).key_pem
    mismatched = dataclasses.replace(identity, key_pem=other_key)
    with pytest.raises(IdentityError, match="the certificate and key cannot be used for TLS") as info:
        client_ssl_context(mismatched, ["h2"])
    assert other_key.decode().splitlines()[1] not in str(info.value)
