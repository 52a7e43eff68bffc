"""The Proxy web port: TLS routing of `teleport-auth@` to Auth without termination, and `/webapi/find`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from fakes.teleport_auth.proxy import decode_cluster_alpn, encode_cluster_alpn, parse_alpn
from fakes.teleport_auth.server import FakeAuthServer, parse_hostport
from sidecar.teleport.wire import authservice_pb2, authservice_pb2_grpc

from .conftest import CLUSTER


def client_context(
    server: FakeAuthServer, tmp_path: Path, alpn: list[str], user: str = "access-plugin"
) -> ssl.SSLContext:
    ident = server.ca.issue_user(user, server.seed.users[user].roles, timedelta(hours=1))
    crt, key, _cas = ident.write_tls_files(tmp_path / user)
    ctx = ssl.create_default_context(cadata=server.ca.host_ca_pem.decode())
    ctx.load_cert_chain(crt, key)
    ctx.set_alpn_protocols(alpn)
    return ctx


async def tls_connect(
    server: FakeAuthServer, ctx: ssl.SSLContext, sni: str = "teleport.cluster.local"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = parse_hostport(server.proxy_addr, "proxy")
    return await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx, server_hostname=sni), timeout=5)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


@contextlib.asynccontextmanager
async def bridge(server: FakeAuthServer, ctx: ssl.SSLContext) -> AsyncIterator[str]:
    """A local plaintext listener whose connections are carried over TLS with our ALPN to the proxy."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()

    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await tls_connect(server, ctx)
        writers.extend((writer, up_writer))
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            await close(up_writer)
            await close(writer)

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    finally:
        listener.close()
        for w in writers:
            await close(w)
        await listener.wait_closed()


def test_cluster_alpn_encoding() -> None:
    assert encode_cluster_alpn("myinstance.teleport.sh") == (
        "teleport-auth@6d79696e7374616e63652e74656c65706f72742e7368.teleport.cluster.local"
    )
    assert decode_cluster_alpn(encode_cluster_alpn("a.b")) == "a.b"
    assert decode_cluster_alpn("teleport-auth@teleport.cluster.local") is None
    assert decode_cluster_alpn("teleport-auth@zz.teleport.cluster.local") is None
    assert parse_alpn(b"\x03\x03" + b"\x00" * 32 + b"\x00\x00\x02\x13\x01\x01\x00") == []


async def test_auth_alpn_is_routed_to_auth_without_termination(server: FakeAuthServer, tmp_path: Path) -> None:
    ctx = client_context(server, tmp_path, [encode_cluster_alpn(CLUSTER), "h2"])
    _reader, writer = await tls_connect(server, ctx)
    try:
        tls = writer.get_extra_info("ssl_object")
        assert tls.selected_alpn_protocol() == "h2"
        peer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
        auth_cert = x509.load_pem_x509_certificate(server.ca.server_tls()[0])
        assert peer == auth_cert  # the TLS session is with Auth itself
    finally:
        await close(writer)


async def test_grpc_through_the_proxy_end_to_end(server: FakeAuthServer, tmp_path: Path) -> None:
    ctx = client_context(server, tmp_path, [encode_cluster_alpn(CLUSTER), "h2"])
    async with bridge(server, ctx) as addr:
        channel = grpc.aio.insecure_channel(addr)
        try:
            pong = await authservice_pb2_grpc.AuthServiceStub(channel).Ping(authservice_pb2.PingRequest(), timeout=5)
        finally:
            await channel.close()
    assert pong.ClusterName == CLUSTER and pong.HasField("ServerFeatures")


async def test_webapi_find_over_https(server: FakeAuthServer, tmp_path: Path) -> None:
    ctx = ssl.create_default_context(cadata=server.ca.host_ca_pem.decode())
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    reader, writer = await tls_connect(server, ctx, sni="localhost")
    try:
        writer.write(b"GET /webapi/find HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        await close(writer)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    doc = json.loads(body)
    assert doc["proxy"]["tls_routing_enabled"] is True
    assert doc["cluster_name"] == CLUSTER and doc["server_version"] == "18.0.0"
    assert doc["proxy"]["ssh"]["public_addr"] == server.proxy_addr


@pytest.mark.parametrize(
    "alpn", ["teleport-auth@teleport.cluster.local", encode_cluster_alpn("other.example.com")], ids=["bare", "foreign"]
)
async def test_auth_alpn_with_unknown_cluster_is_closed(server: FakeAuthServer, tmp_path: Path, alpn: str) -> None:
    ctx = client_context(server, tmp_path, [alpn, "h2"])
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        _, writer = await tls_connect(server, ctx)
        await close(writer)


async def test_non_tls_bytes_are_dropped(server: FakeAuthServer) -> None:
    host, port = parse_hostport(server.proxy_addr, "proxy")
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"SSH-2.0-Go\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    finally:
        await close(writer)
