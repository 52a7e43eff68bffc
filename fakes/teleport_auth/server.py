"""`FakeAuthServer`: the whole fake cluster (Auth gRPC, Proxy TLS routing, admin API, expiry) as one context manager.

    async with FakeAuthServer(ServeConfig(state_dir=tmp, listen="127.0.0.1:0")) as srv:
        srv.auth_addr, srv.proxy_addr, srv.admin_addr, srv.state, srv.faults, srv.ca

Tests and the `serve` command share this class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from .admin import AdminAPI
from .ca import ClusterAuthority, atomic_write
from .faults import Faults
from .proxy import TLSRoutingProxy
from .seed import Seed, UserDef, load_seed
from .service import CallGuard, ServerInfo, add_services
from .state import AuthState

log = logging.getLogger(__name__)

USERS_FILE = "users.toml"
EDITIONS = ("oss", "enterprise")

#: Server keepalive policy (upstream `lib/auth/grpcserver.go`: MinTime = 1 min, PermitWithoutStream): client pings are
#: accepted every 60 s even without active calls (a little slack for timer jitter); a client pinging much more
#: often gets GOAWAY "too_many_pings" after gRPC's default ping strikes, as with the real Auth server.
GRPC_SERVER_OPTIONS = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 55_000),
)


def parse_hostport(text: str, what: str) -> tuple[str, int]:
    """Split `HOST:PORT` (IPv6 hosts in brackets); a clear ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{what}: expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def format_hostport(addr: tuple[str, int]) -> str:
    """`host:port`, with brackets for IPv6 hosts."""
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class ServeConfig:
    """Options of `serve` (see the CLI help)."""

    state_dir: Path
    listen: str = "127.0.0.1:3025"
    proxy_listen: str = "127.0.0.1:3080"
    admin_listen: str = "127.0.0.1:3090"
    cluster_name: str | None = None
    edition: str = "oss"
    server_version: str = "18.0.0"
    proxy_public_addr: str | None = None
    seed: Path | None = None
    seed_obj: Seed | None = None


def users_toml(seed: Seed) -> str:
    """The seed's users in the `[users."<name>"]` format that `sign` reads for default roles."""
    lines = ["# Written by `python -m fakes.teleport_auth serve`: users -> roles (read by `sign`).", ""]
    for user in seed.users.values():
        lines.extend(_user_table(user))
    return "\n".join(lines)


def _user_table(user: UserDef) -> list[str]:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"[users.{q(user.name)}]", f"roles = [{', '.join(q(r) for r in user.roles)}]"]
    if user.traits:
        traits = ", ".join(f"{q(k)} = [{', '.join(q(v) for v in vs)}]" for k, vs in user.traits.items())
        lines.append(f"traits = {{ {traits} }}")
    lines.append("")
    return lines


class FakeAuthServer:
    """The fake cluster; enter to start every listener, exit to stop them all."""

    def __init__(self, config: ServeConfig) -> None:
        if config.edition not in EDITIONS:
            raise ValueError(f"edition must be one of {', '.join(EDITIONS)}, got {config.edition!r}")
        self.config = config
        self.ca = ClusterAuthority.load_or_create(config.state_dir, config.cluster_name)
        self.seed = config.seed_obj if config.seed_obj is not None else load_seed(config.seed)
        self.state = AuthState(self.seed, cluster_name=self.ca.cluster_name)
        self.faults = Faults()
        self.info = ServerInfo(
            cluster_name=self.ca.cluster_name, server_version=config.server_version, edition=config.edition
        )
        self._stack = contextlib.AsyncExitStack()
        self._grpc: Any = None
        self.auth_addr = ""
        self.proxy_addr = ""
        self.admin_addr = ""

    @property
    def cluster_name(self) -> str:
        """The cluster name (stored with the CAs)."""
        return self.ca.cluster_name

    async def __aenter__(self) -> FakeAuthServer:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        cfg = self.config
        atomic_write(cfg.state_dir / USERS_FILE, users_toml(self.seed).encode(), mode=0o644)
        cert_pem, key_pem = self.ca.server_tls()

        server = grpc.aio.server(options=GRPC_SERVER_OPTIONS)
        add_services(server, self.state, CallGuard(self.info, self.faults))
        creds = grpc.ssl_server_credentials(
            [(key_pem, cert_pem)], root_certificates=self.ca.user_ca_pem, require_client_auth=True
        )
        host, _ = parse_hostport(cfg.listen, "--listen")
        port = server.add_secure_port(cfg.listen, creds)
        if port == 0:
            raise OSError(f"cannot listen on {cfg.listen} for Auth gRPC")
        await server.start()
        self._grpc = server
        self._stack.push_async_callback(self._stop_grpc)
        auth = (host, port)
        self.auth_addr = format_hostport(auth)

        web_ssl = self._web_ssl_context(cert_pem, key_pem)
        proxy = TLSRoutingProxy(
            parse_hostport(cfg.proxy_listen, "--proxy-listen"),
            ("127.0.0.1" if host in ("0.0.0.0", "") else host, port),
            self.cluster_name,
            web_ssl,
            self._find_document,
        )
        await self._stack.enter_async_context(proxy)
        self.proxy_addr = format_hostport(proxy.address)
        self.info.proxy_public_addr = cfg.proxy_public_addr or self.proxy_addr

        runner = web.AppRunner(AdminAPI(self.state, self.faults, self.cluster_name).app(), access_log=None)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        admin_host, admin_port = parse_hostport(cfg.admin_listen, "--admin-listen")
        site = web.TCPSite(runner, admin_host, admin_port)
        await site.start()
        self.admin_addr = format_hostport(site._server.sockets[0].getsockname()[:2])  # type: ignore[union-attr]

        expiry = asyncio.create_task(self.state.run_expiry(), name="fake-auth-expiry")
        self._stack.push_async_callback(_cancel, expiry)

    async def _stop_grpc(self) -> None:
        # Close watch streams first so their handlers end, then stop the server.
        self.state.fanout.drop_all("auth server is shutting down")
        await self._grpc.stop(grace=0.5)

    def _web_ssl_context(self, cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
        web_dir = self.config.state_dir / "web"
        web_dir.mkdir(mode=0o700, exist_ok=True)
        atomic_write(web_dir / "web.crt", cert_pem, mode=0o644)
        atomic_write(web_dir / "web.key", key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(web_dir / "web.crt", web_dir / "web.key")
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def _find_document(self) -> dict[str, Any]:
        """`/webapi/find`: what Go clients read to discover TLS routing (upstream `lib/web/apiserver.go` `find`, read
        by `api/client/webclient`)."""
        public = self.info.proxy_public_addr
        return {
            "proxy": {
                "kube": {"enabled": False},
                "ssh": {
                    "listen_addr": self.proxy_addr,
                    "tunnel_listen_addr": self.proxy_addr,
                    "web_listen_addr": self.proxy_addr,
                    "public_addr": public,
                    "ssh_public_addr": public,
                    "ssh_tunnel_public_addr": public,
                },
                "db": {},
                "tls_routing_enabled": True,
            },
            "server_version": self.info.server_version,
            "min_client_version": "17.0.0",
            "cluster_name": self.cluster_name,
            "edition": "ent" if self.info.edition == "enterprise" else "oss",
            "fips": False,
            "auth": {"type": "local", "second_factor": "off", "local": {"name": ""}},
        }


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
