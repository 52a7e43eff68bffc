"""`python -m fakes.teleport_auth serve|sign|tbot` (see docs/fake-teleport.md; `tctl` is `python -m fakes.tctl`).

`serve` starts the fake cluster and prints ONE JSON line with its actual addresses once every listener is up:
{"auth_addr": ..., "proxy_addr": ..., "admin_addr": ..., "cluster_name": ..., "state_dir": ...}. It stops cleanly
(exit 0) on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from . import identity_cli
from .ca import CAError
from .seed import SeedError
from .server import EDITIONS, FakeAuthServer, ServeConfig, parse_hostport


def _hostport(text: str) -> str:
    try:
        parse_hostport(text, "address")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _register_serve(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser("serve", help="run the fake Auth, Proxy and admin API")
    serve.add_argument("--state-dir", required=True, type=Path, help="directory for the CAs (created or reused)")
    serve.add_argument("--listen", type=_hostport, default="127.0.0.1:3025", help="Auth gRPC (mTLS) address")
    serve.add_argument("--proxy-listen", type=_hostport, default="127.0.0.1:3080", help="Proxy web/TLS-routing port")
    serve.add_argument("--admin-listen", type=_hostport, default="127.0.0.1:3090", help="admin HTTP API (loopback)")
    serve.add_argument(
        "--cluster-name", default=None, help="cluster name (new state dirs; default teleport.example.com)"
    )
    serve.add_argument("--edition", choices=EDITIONS, default="oss", help="oss, or enterprise (advanced workflows)")
    serve.add_argument("--server-version", default="18.0.0", help="version reported by Ping")
    serve.add_argument("--proxy-public-addr", default=None, help="Ping ProxyPublicAddr (default: the proxy address)")
    serve.add_argument("--seed", type=Path, default=None, help="users/roles TOML (default: built-in default_seed.toml)")
    serve.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    serve.set_defaults(func=_run_serve)


async def _serve(config: ServeConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with FakeAuthServer(config) as srv:
        ready = {
            "auth_addr": srv.auth_addr,
            "proxy_addr": srv.proxy_addr,
            "admin_addr": srv.admin_addr,
            "cluster_name": srv.cluster_name,
            "state_dir": str(config.state_dir),
        }
        print(json.dumps(ready), flush=True)
        await stop.wait()


def _run_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = ServeConfig(
        state_dir=args.state_dir,
        listen=args.listen,
        proxy_listen=args.proxy_listen,
        admin_listen=args.admin_listen,
        cluster_name=args.cluster_name,
        edition=args.edition,
        server_version=args.server_version,
        proxy_public_addr=args.proxy_public_addr,
        seed=args.seed,
    )
    try:
        asyncio.run(_serve(config))
    except (CAError, SeedError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The CLI: serve, and the identity commands sign and tbot."""
    parser = argparse.ArgumentParser(prog="python -m fakes.teleport_auth", description="Fake Teleport Auth service")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _register_serve(subparsers)
    identity_cli.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the chosen command."""
    args = build_parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
