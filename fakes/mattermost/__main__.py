"""`python -m fakes.mattermost serve ...`: run the fake Mattermost server until SIGTERM/SIGINT.

When ready it prints one JSON line: `{"url": ..., "admin_token": ..., "bot_token": ..., "pid": ...}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from fakes.mattermost.config import DEFAULT_MAX_POST_LENGTH, IntegrationSettings, ServerConfig
from fakes.mattermost.ratelimit import RateLimitConfig
from fakes.mattermost.seed import SeedError, load_seed
from fakes.mattermost.server import FakeMattermost


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"--listen must be HOST:PORT, got {value!r}")
    try:
        number = int(port)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--listen port must be a number, got {port!r}") from exc
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"--listen port out of range: {number}")
    return host.strip("[]"), number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from exc
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value!r}")
    return number


def _non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from exc
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value!r}")
    return number


def _positive_int(value: str) -> int:
    number = _non_negative_int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be positive: {value!r}")
    return number


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m fakes.mattermost", description="Fake Mattermost REST v4 server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve until SIGTERM")
    serve.add_argument("--listen", type=_listen, default=("127.0.0.1", 8065), help="HOST:PORT (port 0: any free port)")
    serve.add_argument("--seed", type=Path, default=None, help="seed TOML file (default: the built-in default seed)")
    serve.add_argument("--rate-limit", type=_positive_float, default=None, help="requests per second per token")
    serve.add_argument("--rate-burst", type=_non_negative_int, default=100, help="MaxBurst (default 100)")
    serve.add_argument("--max-post-length", type=_non_negative_int, default=DEFAULT_MAX_POST_LENGTH)
    serve.add_argument("--no-etags", action="store_true", help="do not send ETag headers")
    serve.add_argument(
        "--allowed-untrusted-internal-connections",
        default=None,
        metavar="HOSTS",
        help="ServiceSettings.AllowedUntrustedInternalConnections: hosts, IPs or CIDRs integrations may be called "
        "on although private (default: the seed's [settings], else none, which refuses 127.0.0.1)",
    )
    serve.add_argument(
        "--outgoing-integration-requests-timeout",
        type=_positive_int,
        default=None,
        metavar="SECONDS",
        help="ServiceSettings.OutgoingIntegrationRequestsTimeout (default: the seed's [settings], else 30)",
    )
    return parser


async def _serve(args: argparse.Namespace) -> int:
    seed = load_seed(args.seed)
    rate = RateLimitConfig(per_sec=args.rate_limit, burst=args.rate_burst) if args.rate_limit else None
    overrides = {
        "allowed_untrusted_internal_connections": args.allowed_untrusted_internal_connections,
        "outgoing_integration_requests_timeout": args.outgoing_integration_requests_timeout,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    # Flags win over the seed's [settings] and survive resets, being part of the server's configuration.
    integrations = IntegrationSettings().updated(dict(seed.settings)).updated(given) if given else None
    config = ServerConfig(max_post_length=args.max_post_length, etags=not args.no_etags, integrations=integrations)
    host, port = args.listen
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with FakeMattermost(seed, host=host, port=port, rate_limit=rate, config=config) as mm:
        ready = {"url": mm.url, "admin_token": mm.admin_token, "pid": os.getpid()}
        if seed.bots:
            ready["bot_token"] = mm.bot_token
        print(json.dumps(ready), flush=True)
        await stop.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.max_post_length < 1:
        print("error: --max-post-length must be at least 1", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args))
    except SeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
