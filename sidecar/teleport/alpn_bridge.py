"""A loopback bridge that lets grpcio reach Teleport Auth through a Proxy with TLS routing.

grpcio cannot offer custom ALPN values, but the Proxy routes a connection to Auth only when the ClientHello offers
`teleport-auth@<hex cluster>.teleport.cluster.local` (upstream `api/client/client.go` `ConfigureALPN`). So the gRPC
channel talks plaintext HTTP/2 to
a listener on 127.0.0.1, and for each accepted connection the bridge opens TLS to the proxy itself (python `ssl`,
SNI `teleport.cluster.local`, the identity's CAs and client certificate, the custom ALPN list) and pipes the bytes.
The Proxy forwards the TLS session unopened, so the handshake runs end to end with Auth.

The private key reaches `ssl` through a 0600 file in a private 0700 temporary directory that is deleted as soon
as the context has loaded it; the key exists on disk only for that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import tempfile
from pathlib import Path
from types import TracebackType

from sidecar.domain.errors import IdentityError
from sidecar.teleport.identity import Identity

log = logging.getLogger(__name__)

API_DOMAIN = "teleport.cluster.local"
_PIPE_CHUNK = 64 * 1024
_TLS_SHUTDOWN_TIMEOUT = 5.0  # asyncio's default of 30 s would hold a dead connection open for half a minute


def auth_alpn_protocols(cluster: str) -> list[str]:
    """The ALPN list that makes a Teleport Proxy route to the Auth service of `cluster`."""
    return [f"teleport-auth@{cluster.encode().hex()}.{API_DOMAIN}", "h2"]


def client_ssl_context(identity: Identity, alpn: list[str]) -> ssl.SSLContext:
    """A TLS client context for Auth: verify against the identity's CAs, present its certificate, offer `alpn`.

    Raises IdentityError when `ssl` refuses the identity's certificates or key.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_verify_locations(cadata=identity.ca_bundle.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError):
        raise IdentityError(f"{identity.source}: the CA certificates cannot be used for TLS") from None
    ctx.set_alpn_protocols(alpn)
    with tempfile.TemporaryDirectory(prefix="tp-identity-") as private_dir:
        os.chmod(private_dir, 0o700)
        pem_path = Path(private_dir) / "client.pem"
        fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(identity.cert_pem if identity.cert_pem.endswith(b"\n") else identity.cert_pem + b"\n")
                f.write(identity.key_pem)
            ctx.load_cert_chain(pem_path)
        except ssl.SSLError:
            raise IdentityError(f"{identity.source}: the certificate and key cannot be used for TLS") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                pem_path.unlink()
    return ctx


class AlpnBridge:
    """Loopback TCP listener; every accepted connection is piped into a fresh TLS connection to `host:port`."""

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        server_hostname: str = API_DOMAIN,
        connect_timeout: float = 30.0,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._host = host
        self._port = port
        self._context = context
        self._server_hostname = server_hostname
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.last_error: str = ""

    @property
    def address(self) -> str:
        """`127.0.0.1:<port>` of the listener, for grpc.aio.insecure_channel."""
        if self._server is None:
            raise RuntimeError("bridge is not started")
        port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def start(self) -> None:
        """Start listening on 127.0.0.1 with an OS-chosen port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def close(self) -> None:
        """Stop listening and cut every bridged connection."""
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> AlpnBridge:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _accept(self, local_reader: asyncio.StreamReader, local_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._bridge(local_reader, local_writer)
        finally:
            # Whatever happened (including cancellation mid-connect), the accepted socket must not leak.
            local_writer.transport.abort()
            self._tasks.discard(task)

    async def _bridge(self, local_reader: asyncio.StreamReader, local_writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout):
                remote_reader, remote_writer = await asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=self._context,
                    server_hostname=self._server_hostname,
                    ssl_shutdown_timeout=_TLS_SHUTDOWN_TIMEOUT,
                )
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            self.last_error = f"TLS to {self._host}:{self._port} failed: {exc}"
            log.warning("Teleport proxy connection failed: %s", self.last_error)
            local_writer.close()
            with contextlib.suppress(OSError):
                await local_writer.wait_closed()
            return
        selected = remote_writer.get_extra_info("ssl_object").selected_alpn_protocol()
        log.debug("bridged connection to %s:%d (ALPN %s)", self._host, self._port, selected)
        # HTTP/2 has no use for half-closed connections: when either direction ends, end both.
        pipes = [
            asyncio.create_task(_pipe(local_reader, remote_writer)),
            asyncio.create_task(_pipe(remote_reader, local_writer)),
        ]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The bridge is closing: drop both sides at once instead of waiting for a polite TLS shutdown.
            for writer in (local_writer, remote_writer):
                writer.transport.abort()
            raise
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            for writer in (local_writer, remote_writer):
                writer.close()
        for writer in (local_writer, remote_writer):
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF; a reset on either side ends the copy quietly."""
    with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
        while data := await reader.read(_PIPE_CHUNK):
            writer.write(data)
            await writer.drain()
