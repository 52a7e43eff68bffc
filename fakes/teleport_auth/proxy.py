"""The fake Proxy web port with TLS routing (upstream `lib/srv/alpnproxy`, the ALPN values of `api/client/client.go`
`ConfigureALPN`).

Every connection's TLS ClientHello is read (not answered) and its ALPN extension parsed. When the first offered
protocol is `teleport-auth@<hex cluster name>.teleport.cluster.local`, the raw bytes are piped to the Auth
listener, so the TLS session runs end to end between the client and Auth (Teleport's `ForwardTLS`). Any other
connection is piped to an internal HTTPS server (aiohttp, the web certificate) that answers `GET /webapi/find`
and `GET /webapi/ping`. Connections that are not TLS, or name an unknown cluster, are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

AUTH_ALPN_PREFIX = "teleport-auth@"
API_DOMAIN = "teleport.cluster.local"
_TLS_HANDSHAKE = 22
_CLIENT_HELLO = 1
_ALPN_EXTENSION = 16
_MAX_HELLO = 64 * 1024


class HelloError(ValueError):
    """The bytes are not a parseable TLS ClientHello."""


async def read_client_hello(reader: asyncio.StreamReader) -> tuple[bytes, list[str]]:
    """Read the TLS records holding the ClientHello; returns (raw bytes read, ALPN protocols offered)."""
    raw = bytearray()
    handshake = bytearray()
    needed: int | None = None
    while needed is None or len(handshake) < needed:
        header = await reader.readexactly(5)
        content_type, _version, length = struct.unpack("!BHH", header)
        if content_type != _TLS_HANDSHAKE:
            raise HelloError("not a TLS handshake record")
        body = await reader.readexactly(length)
        raw += header + body
        handshake += body
        if needed is None and len(handshake) >= 4:
            if handshake[0] != _CLIENT_HELLO:
                raise HelloError("first handshake message is not a ClientHello")
            needed = 4 + int.from_bytes(handshake[1:4], "big")
            if needed > _MAX_HELLO:
                raise HelloError("ClientHello too large")
    return bytes(raw), parse_alpn(bytes(handshake[4:needed]))


def parse_alpn(hello: bytes) -> list[str]:
    """The ALPN protocol names in a ClientHello body (empty when it has no ALPN extension)."""
    try:
        pos = 2 + 32  # legacy_version, random
        pos += 1 + hello[pos]  # session id
        pos += 2 + int.from_bytes(hello[pos : pos + 2], "big")  # cipher suites
        pos += 1 + hello[pos]  # compression methods
        if pos >= len(hello):
            return []
        end = pos + 2 + int.from_bytes(hello[pos : pos + 2], "big")
        pos += 2
        while pos + 4 <= end:
            ext_type, ext_len = struct.unpack("!HH", hello[pos : pos + 4])
            pos += 4
            if ext_type == _ALPN_EXTENSION:
                data = hello[pos : pos + ext_len]
                names, i = [], 2
                while i < len(data):
                    n = data[i]
                    names.append(data[i + 1 : i + 1 + n].decode("ascii", "replace"))
                    i += 1 + n
                return names
            pos += ext_len
    except IndexError as exc:
        raise HelloError("truncated ClientHello") from exc
    return []


def encode_cluster_alpn(cluster_name: str) -> str:
    """`teleport-auth@<hex(cluster)>.teleport.cluster.local` (Go `EncodeClusterName` + prefix)."""
    return f"{AUTH_ALPN_PREFIX}{cluster_name.encode().hex()}.{API_DOMAIN}"


def decode_cluster_alpn(protocol: str) -> str | None:
    """The cluster name in a `teleport-auth@` protocol, or None when it carries none."""
    rest = protocol[len(AUTH_ALPN_PREFIX) :]
    suffix = "." + API_DOMAIN
    if not rest.endswith(suffix):
        return None
    try:
        return bytes.fromhex(rest[: -len(suffix)]).decode()
    except ValueError:
        return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


class TLSRoutingProxy:
    """The proxy listener and its internal web server; an async context manager."""

    def __init__(
        self,
        listen: tuple[str, int],
        auth_addr: tuple[str, int],
        cluster_name: str,
        web_ssl: ssl.SSLContext,
        find_document: Callable[[], dict[str, Any]],
    ) -> None:
        self._listen = listen
        self._auth_addr = auth_addr
        self._cluster_name = cluster_name
        self._web_ssl = web_ssl
        self._find_document = find_document
        self._server: asyncio.Server | None = None
        self._web_runner: web.AppRunner | None = None
        self._web_addr: tuple[str, int] = ("127.0.0.1", 0)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.address: tuple[str, int] = listen

    async def __aenter__(self) -> TLSRoutingProxy:
        app = web.Application()
        app.router.add_get("/webapi/find", self._find)
        app.router.add_get("/webapi/ping", self._find)
        self._web_runner = web.AppRunner(app, access_log=None)
        await self._web_runner.setup()
        site = web.TCPSite(self._web_runner, "127.0.0.1", 0, ssl_context=self._web_ssl)
        await site.start()
        self._web_addr = _bound(site._server)
        try:
            self._server = await asyncio.start_server(self._handle, self._listen[0], self._listen[1])
        except BaseException:
            await self._web_runner.cleanup()
            raise
        self.address = _bound(self._server)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        # Closing both ends lets every pipe finish on its own (cancelling stream handler tasks makes asyncio
        # log spurious errors on Python 3.11); cancel only what is still stuck afterwards.
        for w in list(self._writers):
            w.close()
        if self._tasks:
            _, stuck = await asyncio.wait(set(self._tasks), timeout=2)
            for task in stuck:
                task.cancel()
        if self._server is not None:
            await self._server.wait_closed()
        if self._web_runner is not None:
            await self._web_runner.cleanup()

    async def _find(self, request: web.Request) -> web.Response:
        return web.json_response(self._find_document())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            try:
                raw, protocols = await asyncio.wait_for(read_client_hello(reader), timeout=15)
            except (HelloError, asyncio.IncompleteReadError, TimeoutError, ConnectionError) as exc:
                log.debug("proxy: dropping connection: %s", exc)
                return
            target = self._web_addr
            if protocols and protocols[0].startswith(AUTH_ALPN_PREFIX):
                cluster = decode_cluster_alpn(protocols[0])
                if cluster != self._cluster_name:
                    log.debug("proxy: unknown cluster in ALPN %r", protocols[0])
                    return
                target = self._auth_addr
            up_reader, upstream_writer = await asyncio.open_connection(*target)
            self._writers.add(upstream_writer)
            upstream_writer.write(raw)
            await upstream_writer.drain()
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(up_reader, writer))
        except (ConnectionError, OSError) as exc:
            log.debug("proxy: connection error: %s", exc)
        finally:
            for w in (upstream_writer, writer):
                if w is not None:
                    self._writers.discard(w)
                    w.close()
                    with contextlib.suppress(Exception):
                        await w.wait_closed()
            self._tasks.discard(task)


def _bound(server: Any) -> tuple[str, int]:
    sock = server.sockets[0]
    host, port = sock.getsockname()[:2]
    return str(host), int(port)
