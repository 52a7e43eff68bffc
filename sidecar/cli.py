"""The `teleport-mattermost` command line: configure, version, start, check, route.

Exit codes: 0 for a clean run or shutdown, 1 for a configuration, startup or fatal error (with a one-line
reason on stderr), as the Go plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from sidecar import __version__
from sidecar.config import Config, example_config, load_config
from sidecar.domain.errors import SidecarError
from sidecar.logs import init_bootstrap_logging, setup_logging

DEFAULT_CONFIG_PATH = "/etc/teleport-mattermost.toml"
PROG = "teleport-mattermost"

log = logging.getLogger("sidecar.cli")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 1 (Go's kingpin does) with a one-line reason."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(prog=PROG, description="Teleport plugin for access requests approval via Mattermost.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{configure,version,start,check,route}",
                                parser_class=_Parser)
    sub.add_parser("configure", help="Prints an example .TOML configuration file.")
    sub.add_parser("version", help=f"Prints {PROG} version and exits.")
    start = sub.add_parser("start", help="Starts a Teleport Mattermost plugin.")
    start.add_argument("-c", "--config", default=DEFAULT_CONFIG_PATH, help="TOML config file path")
    start.add_argument("-d", "--debug", action="store_true", help="Enable verbose logging to stderr")
    check = sub.add_parser(
        "check", help="Validates the config, connects to Teleport and Mattermost and checks every recipient."
    )
    check.add_argument("-c", "--config", default=DEFAULT_CONFIG_PATH, help="TOML config file path")
    check.add_argument("-d", "--debug", action="store_true", help="Enable verbose logging to stderr")
    route = sub.add_parser(
        "route",
        help="Explains who would get one request's messages: each access monitoring rule, the fallback, the "
        "recipients.",
    )
    route.add_argument("-c", "--config", default=DEFAULT_CONFIG_PATH, help="TOML config file path")
    route.add_argument("-d", "--debug", action="store_true", help="Enable verbose logging to stderr")
    which = route.add_mutually_exclusive_group(required=True)
    which.add_argument("--request-id", metavar="ID", help="read the access request from Teleport")
    which.add_argument("--request", metavar="FILE", type=Path,
                       help="the access request as `tctl get` prints it (YAML or JSON)")
    route.add_argument("--rules", metavar="FILE", type=Path,
                       help="access_monitoring_rule resources (YAML documents or a JSON list) instead of Teleport's")
    route.add_argument("--user", metavar="FILE", type=Path,
                       help="the requester's user resource (for user.traits) instead of reading it from Teleport")
    route.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def version_text() -> str:
    """`teleport-mattermost v<version> <python version>`, shaped like the Go plugin's version line."""
    return f"{PROG} v{__version__} python{platform.python_version()}"


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def _load(path: str, debug: bool, *, quiet: bool = False) -> Config:
    config = load_config(path)
    # `check` prints its own report; its logs would only repeat it, so they show warnings and up.
    log_config = dataclasses.replace(config.log, severity="warn") if quiet and not debug else config.log
    setup_logging(log_config, debug=debug)
    for warning in config.warnings:
        log.warning(warning)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "configure":
        sys.stdout.write(example_config())
        return 0
    if args.command == "version":
        print(version_text())
        return 0

    init_bootstrap_logging()
    try:
        config = _load(args.config, args.debug, quiet=args.command in ("check", "route"))
    except SidecarError as exc:
        return _fail(str(exc))

    # Imported late so `configure` and `version` work even where grpc cannot load.
    if args.command == "check":
        from sidecar.check.command import run_check

        return asyncio.run(run_check(config))
    if args.command == "route":
        from sidecar.route.command import RouteInputs, run_route

        inputs = RouteInputs(
            request_id=args.request_id, request_file=args.request, rules_file=args.rules, user_file=args.user
        )
        return asyncio.run(run_route(config, inputs, as_json_output=args.json))
    from sidecar.app import run

    return run(config)


def entry() -> NoReturn:
    """Console-script entry point."""
    sys.exit(main())
