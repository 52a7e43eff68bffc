"""grpc.aio channels to Teleport Auth, and the provider that swaps them when the identity file is renewed.

Two transports (how Go connects: upstream `api/client/client.go` `connect`):

* direct: mTLS straight to Auth (`host:3025`), SNI and verified name `teleport.cluster.local`, ALPN `h2`
  (grpc offers it itself);
* TLS routing: through a Proxy's web port, with ALPN `teleport-auth@<hex cluster>.teleport.cluster.local`; grpcio
  cannot offer that, so a loopback AlpnBridge does the TLS and the channel speaks plaintext HTTP/2 to the bridge.

The SSH reverse-tunnel transport that the Go plugins can also use (`api/client/client.go` `proxyConnect`, ALPN
`teleport-reversetunnel`) is NOT
supported: TLS routing reaches the same Auth service with the same user certificate and needs no SSH stack.

Channels send no `version` metadata header (so a v18 Auth server skips its client-version check, upstream
`lib/auth/middleware.go` `ValidateClientVersion`) and send
keepalive pings no more often than every 60 s, the minimum a real Auth server tolerates.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from sidecar.domain.errors import ConfigError, IdentityError
from sidecar.teleport.alpn_bridge import API_DOMAIN, AlpnBridge, auth_alpn_protocols, client_ssl_context
from sidecar.teleport.identity import Identity, load_identity_file, load_key_pair
from sidecar.teleport.wire import authservice_pb2_grpc, users_service_pb2_grpc

log = logging.getLogger(__name__)

AUTH_PORT = 3025
RELOAD_FAILED = "Failed to reload identity file from disk."

# Teleport's client pings every minute with a 3-minute timeout, and Auth refuses pings more often than once a
# minute (upstream `api/client/client.go` and `lib/auth/grpcserver.go`). No option here adds metadata to calls.
KEEPALIVE_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 180_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


class TransportKind(enum.Enum):
    """How to reach Auth. AUTO picks DIRECT for port 3025, else asks the address whether it routes TLS."""

    AUTO = "auto"
    DIRECT = "direct"
    TLS_ROUTING = "tls-routing"


def split_addr(addr: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) → (host, port). Raises ConfigError naming the address."""
    host, sep, port_text = addr.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"teleport address {addr!r} must be host:port")
    return host.removeprefix("[").removesuffix("]"), int(port_text)


async def probe_tls_routing(addr: str, timeout: float = 5.0) -> bool:
    """Ask `https://addr/webapi/find` whether this is a Proxy with TLS routing on.

    The probe carries no credentials, so the server certificate is not verified: a wrong answer can only pick the
    wrong transport, which then fails its own (verified) handshake.
    """
    host, port = split_addr(addr)
    url_host = f"[{host}]" if ":" in host else host
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(f"https://{url_host}:{port}/webapi/find", ssl=False) as resp,
        ):
            if resp.status != 200:
                return False
            doc = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.debug("webapi/find probe of %s failed (%s): using a direct connection", addr, type(exc).__name__)
        return False
    proxy = doc.get("proxy") if isinstance(doc, dict) else None
    return isinstance(proxy, dict) and proxy.get("tls_routing_enabled") is True


async def resolve_transport(addr: str, requested: TransportKind, probe_timeout: float = 5.0) -> TransportKind:
    """Turn AUTO into DIRECT or TLS_ROUTING; explicit choices pass through."""
    if requested is not TransportKind.AUTO:
        return requested
    _, port = split_addr(addr)
    if port == AUTH_PORT:
        return TransportKind.DIRECT
    routed = await probe_tls_routing(addr, probe_timeout)
    return TransportKind.TLS_ROUTING if routed else TransportKind.DIRECT


@dataclass(eq=False)
class OpenChannel:
    """One grpc.aio channel built from one identity, with its stubs and (for TLS routing) its bridge."""

    channel: Any  # grpc.aio.Channel (grpc is untyped)
    identity: Identity
    kind: TransportKind
    bridge: AlpnBridge | None = None
    leases: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()
        self.auth = authservice_pb2_grpc.AuthServiceStub(self.channel)
        self.users = users_service_pb2_grpc.UsersServiceStub(self.channel)

    async def close(self, grace: float | None = None) -> None:
        """Close the channel (cancelling calls still running after `grace`) and its bridge."""
        try:
            await self.channel.close(grace)
            if self.bridge is not None:
                await self.bridge.close()
        finally:
            self.closed.set()


async def open_channel(addr: str, identity: Identity, kind: TransportKind) -> OpenChannel:
    """Build a channel to Auth at `addr` over `kind` (DIRECT or TLS_ROUTING) with `identity`."""
    if kind is TransportKind.DIRECT:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=identity.ca_bundle,
            private_key=identity.key_pem,
            certificate_chain=identity.cert_pem,
        )
        options = [*KEEPALIVE_OPTIONS, ("grpc.ssl_target_name_override", API_DOMAIN)]
        return OpenChannel(grpc.aio.secure_channel(addr, credentials, options=options), identity, kind)
    if kind is TransportKind.TLS_ROUTING:
        host, port = split_addr(addr)
        context = client_ssl_context(identity, auth_alpn_protocols(identity.cluster))
        bridge = AlpnBridge(host, port, context)
        await bridge.start()
        options = [
            *KEEPALIVE_OPTIONS,
            ("grpc.default_authority", API_DOMAIN),
            ("grpc.enable_http_proxy", 0),  # the bridge is on loopback; never send it through an HTTP proxy
        ]
        return OpenChannel(grpc.aio.insecure_channel(bridge.address, options=options), identity, kind, bridge)
    raise ValueError(f"transport {kind.value} must be resolved before opening a channel")


class IdentitySource:
    """Where the identity comes from (an identity file, or key + cert + CAs) and how to tell that it changed."""

    def __init__(
        self,
        identity_file: Path | str | None = None,
        key_pair: tuple[Path | str, Path | str, Path | str] | None = None,
    ) -> None:
        if (identity_file is None) == (key_pair is None):
            raise ConfigError("give either an identity file or a key pair (key, certificate, CAs), not both")
        self._identity_file = Path(identity_file) if identity_file is not None else None
        self._key_pair = tuple(Path(p) for p in key_pair) if key_pair is not None else None
        self.paths: tuple[Path, ...] = (
            (self._identity_file,) if self._identity_file is not None else self._key_pair or ()
        )

    def load(self) -> Identity:
        """Read and parse the identity now. Raises IdentityError."""
        if self._identity_file is not None:
            return load_identity_file(self._identity_file)
        assert self._key_pair is not None
        key, crt, cas = self._key_pair
        return load_key_pair(key, crt, cas)

    def stat_signature(self) -> tuple[tuple[int, int, int], ...]:
        """Cheap change detector: (inode, size, mtime) of every file; a missing file reads as zeros."""
        result = []
        for path in self.paths:
            try:
                st = os.stat(path)
                result.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                result.append((0, 0, 0))
        return tuple(result)

    def content_hash(self) -> str:
        """SHA-256 over the files' contents (empty for unreadable files)."""
        digest = hashlib.sha256()
        for path in self.paths:
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"\0unreadable\0")
        return digest.hexdigest()


class ChannelProvider:
    """Hands out the current channel, and replaces it when the identity on disk changes.

    Every call holds a lease on the channel it started with. After a reload, new calls get the new channel; the
    old one is closed once `close_grace` seconds have passed and its last lease (say, a watch stream) has ended.
    A reload that fails logs an ERROR "Failed to reload identity file from disk." and keeps the old identity.
    Identity listeners (`add_identity_listener`) hear of every identity installed, for the expiry metric.
    """

    def __init__(
        self,
        addr: str,
        source: IdentitySource,
        kind: TransportKind,
        *,
        refresh: bool = False,
        refresh_interval: float = 60.0,
        close_grace: float = 30.0,
        channel_factory: Callable[[str, Identity, TransportKind], Awaitable[OpenChannel]] = open_channel,
    ) -> None:
        if kind is TransportKind.AUTO:
            raise ValueError("resolve the transport before creating a ChannelProvider")
        if refresh_interval <= 0:
            raise ConfigError("identity refresh interval must be positive")
        self.addr = addr
        self.source = source
        self.kind = kind
        self._refresh = refresh
        self._refresh_interval = refresh_interval
        self._close_grace = close_grace
        self._factory = channel_factory
        self._current: OpenChannel | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._retired: list[OpenChannel] = []
        self._refresh_task: asyncio.Task[None] | None = None
        self._signature: tuple[tuple[int, int, int], ...] = ()
        self._hash = ""
        self._failed_hash = ""
        self._generation = 0
        self._changed = asyncio.Condition()
        self._lock = asyncio.Lock()
        self._identity_listeners: list[Callable[[Identity], None]] = []

    @classmethod
    async def open(
        cls,
        addr: str,
        source: IdentitySource,
        transport: TransportKind = TransportKind.AUTO,
        *,
        refresh: bool = False,
        refresh_interval: float = 60.0,
        close_grace: float = 30.0,
        probe_timeout: float = 5.0,
    ) -> ChannelProvider:
        """Load the identity (IdentityError if unusable), pick the transport and open the first channel."""
        split_addr(addr)
        # Fingerprint before reading, so that a renewal racing with this read is seen by the next check.
        signature, digest = source.stat_signature(), await asyncio.to_thread(source.content_hash)
        identity = await asyncio.to_thread(source.load)
        kind = await resolve_transport(addr, transport, probe_timeout)
        log.info("Connecting to Teleport at %s (%s) as %s", addr, kind.value, identity.username)
        provider = cls(
            addr, source, kind, refresh=refresh, refresh_interval=refresh_interval, close_grace=close_grace
        )
        await provider._install(identity, signature, digest)
        if refresh:
            provider._refresh_task = asyncio.create_task(provider._refresh_loop(), name="identity-refresh")
        return provider

    @property
    def identity(self) -> Identity:
        """The identity new calls use."""
        return self._channel().identity

    @property
    def generation(self) -> int:
        """How many channels have been installed (1 after open, +1 per successful reload)."""
        return self._generation

    def add_identity_listener(self, listener: Callable[[Identity], None]) -> None:
        """Call `listener` with the identity in use now, and again with every identity a reload installs."""
        self._identity_listeners.append(listener)
        if self._current is not None:
            listener(self._current.identity)

    def _channel(self) -> OpenChannel:
        if self._current is None:
            raise RuntimeError("the Teleport channel is closed")
        return self._current

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[OpenChannel]:
        """Use the current channel for one call or stream; it stays open at least until the block exits."""
        channel = self._channel()
        channel.leases += 1
        channel.idle.clear()
        try:
            yield channel
        finally:
            channel.leases -= 1
            if channel.leases == 0:
                channel.idle.set()

    async def _install(self, identity: Identity, signature: tuple[tuple[int, int, int], ...], digest: str) -> None:
        new = await self._factory(self.addr, identity, self.kind)
        old, self._current = self._current, new
        self._signature, self._hash = signature, digest
        async with self._changed:
            self._generation += 1
            self._changed.notify_all()
        if old is not None:
            self._retired.append(old)
            task = asyncio.create_task(self._retire(old), name="retire-teleport-channel")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        for listener in self._identity_listeners:
            listener(identity)

    async def _retire(self, old: OpenChannel) -> None:
        await asyncio.sleep(self._close_grace)
        await old.idle.wait()
        self._retired.remove(old)
        await old.close()

    async def check_now(self) -> bool:
        """Reload the identity if its files changed. True when a new channel was installed."""
        async with self._lock:
            if self._current is None:
                return False
            signature = self.source.stat_signature()
            if signature == self._signature:
                return False
            digest = await asyncio.to_thread(self.source.content_hash)
            if digest in (self._hash, self._failed_hash):
                self._signature = signature
                return False
            try:
                identity = await asyncio.to_thread(self.source.load)
                if identity.cert_pem == self._current.identity.cert_pem:
                    self._signature, self._hash = signature, digest
                    return False
                await self._install(identity, signature, digest)
            except IdentityError as exc:
                log.error("%s %s", RELOAD_FAILED, exc)
                self._failed_hash, self._signature = digest, signature
                return False
            log.info("Reloaded the Teleport identity (valid until %s)", identity.not_after.isoformat())
            return True

    async def wait_generation(self, generation: int) -> None:
        """Wait until at least `generation` channels have been installed."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._generation >= generation)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                await self.check_now()
            except Exception:
                # A broken reload must never kill the loop: keep serving with the identity we have.
                log.exception(RELOAD_FAILED)

    async def close(self) -> None:
        """Stop refreshing and close every channel now, cancelling calls in flight."""
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh_task
            self._refresh_task = None
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        channels = [c for c in (self._current, *self._retired) if c is not None]
        self._current, self._retired = None, []
        await asyncio.gather(*(c.close() for c in channels), return_exceptions=True)
