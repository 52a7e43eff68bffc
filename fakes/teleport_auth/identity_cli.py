"""The fake's credential commands: `sign` (like `tctl auth sign`) and `tbot` (a renewing Machine ID bot).

Both read (or create) the cluster CAs in `--state-dir` via ClusterAuthority. Without `--roles` the user's roles
and traits come from `<state-dir>/users.toml` (the `[users."<name>"]` tables of the fake's seed format). `tbot`
identities are a bot's (the bot name in the certificate, `--bot-name`, by default the user without `bot-`), so
the fake's admin-action MFA switch lets them through, as Teleport does for Machine ID; `sign` identities are not.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from fakes.teleport_auth.ca import CAError, ClusterAuthority, IssuedIdentity, atomic_write

USERS_FILE = "users.toml"
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class CLIError(Exception):
    """A user-facing error: printed as one line to stderr, exit status 1."""


def parse_go_duration(text: str) -> timedelta:
    """Parse a positive Go-style duration such as `1h`, `30m`, `10s`, `1h30m`, `1.5h` or `500ms`."""
    value = text.strip()
    pos, total = 0, 0.0
    while pos < len(value):
        match = _DURATION_PART.match(value, pos)
        if match is None:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use e.g. 1h, 30m, 10s or 1h30m)")
    if total <= 0:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be positive")
    return timedelta(seconds=total)


def _roles_list(text: str) -> tuple[str, ...]:
    roles = tuple(r.strip() for r in text.split(",") if r.strip())
    if not roles:
        raise argparse.ArgumentTypeError("--roles needs at least one role name")
    return roles


@dataclass(frozen=True)
class _UserGrant:
    roles: tuple[str, ...]
    traits: Mapping[str, Sequence[str]]


def _user_grant(state_dir: Path, user: str, roles: tuple[str, ...] | None) -> _UserGrant:
    """Roles (and traits) for the certificate: explicit `--roles`, else the user's entry in users.toml."""
    users_path = state_dir / USERS_FILE
    entry: Mapping[str, Any] = {}
    if users_path.is_file():
        try:
            doc = tomllib.loads(users_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CLIError(f"{users_path}: cannot read users: {exc}") from exc
        users = doc.get("users", {})
        found = users.get(user) if isinstance(users, dict) else None
        entry = found if isinstance(found, dict) else {}
    if roles is None:
        if not users_path.is_file():
            raise CLIError(f"no --roles given and {users_path} does not exist; pass --roles a,b")
        stored = entry.get("roles")
        if not entry:
            raise CLIError(f"no --roles given and user {user!r} is not in {users_path}")
        if not isinstance(stored, list) or not stored or not all(isinstance(r, str) for r in stored):
            raise CLIError(f"{users_path}: user {user!r} has no roles")
        roles = tuple(stored)
    raw_traits = entry.get("traits", {})
    traits: dict[str, list[str]] = {}
    if isinstance(raw_traits, dict):
        traits = {str(k): [str(x) for x in v] for k, v in raw_traits.items() if isinstance(v, list)}
    return _UserGrant(roles, traits)


def _issue(args: argparse.Namespace) -> tuple[ClusterAuthority, IssuedIdentity]:
    try:
        authority = ClusterAuthority.load_or_create(Path(args.state_dir))
    except CAError as exc:
        raise CLIError(str(exc)) from exc
    grant = _user_grant(Path(args.state_dir), args.user, args.roles)
    bot = getattr(args, "bot_name", None)
    issued = authority.issue_user(
        args.user,
        grant.roles,
        args.ttl,
        key_type=args.key_type,
        traits=grant.traits,
        bot_name=(bot or args.user.removeprefix("bot-")) if bot is not None else "",
    )
    return authority, issued


def _run_sign(args: argparse.Namespace) -> int:
    """`sign`: write one identity, as an identity file or as `.crt`/`.key`/`.cas` files."""
    try:
        _, issued = _issue(args)
        out = Path(args.out)
        if args.format == "tls":
            written = [str(p) for p in issued.write_tls_files(out)]
        else:
            issued.write_identity_file(out)
            written = [str(out)]
    except (CLIError, CAError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"The credentials have been written to {', '.join(written)}")
    return 0


def write_tbot_destination(destination: Path, authority: ClusterAuthority, issued: IssuedIdentity) -> None:
    """Write tbot's identity output files (upstream `lib/tbot/config/output_identity.go`), each atomically;
    `identity` goes last.

    Writing the identity file last means a reader that notices it changed finds the other files already renewed.
    """
    destination.mkdir(parents=True, exist_ok=True)
    files = {
        "key": issued.key_pem,
        "key.pub": (issued.ssh_public_key_line + "\n").encode(),
        "key-cert.pub": (issued.ssh_cert_line + "\n").encode(),
        "tlscert": issued.tls_cert_pem,
        "teleport-host-ca.crt": authority.host_ca_pem,
        "teleport-user-ca.crt": authority.user_ca_pem,
        "identity": issued.identity_file_bytes(),
    }
    for name, data in files.items():
        atomic_write(destination / name, data)


def _run_tbot(args: argparse.Namespace) -> int:
    """`tbot`: renew the destination every interval until SIGTERM or SIGINT, then exit 0."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    destination = Path(args.destination)
    try:
        generation = 0
        while not stop.is_set():
            authority, issued = _issue(args)
            write_tbot_destination(destination, authority, issued)
            generation += 1
            event = {
                "event": "renewed",
                "generation": generation,
                "user": issued.user,
                "serial": format(issued.tls_cert.serial_number, "x"),
                "not_after": issued.not_after.isoformat(),
                "identity": str(destination / "identity"),
            }
            print(json.dumps(event), flush=True)
            stop.wait(args.renewal_interval.total_seconds())
    except (CLIError, CAError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(json.dumps({"event": "stopped"}), flush=True)
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", required=True, help="the fake's state directory (holds the CAs)")
    parser.add_argument("--user", required=True, help="Teleport user name (certificate CN)")
    parser.add_argument(
        "--roles", type=_roles_list, default=None, help="comma-separated roles; default: the user's roles in users.toml"
    )
    parser.add_argument("--ttl", type=parse_go_duration, required=True, help="certificate lifetime, e.g. 1h")
    parser.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa", help="private key algorithm")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `sign` and `tbot` subcommands; each sets `func(args) -> exit status`."""
    sign = subparsers.add_parser("sign", help="issue a user identity, like `tctl auth sign`")
    _common(sign)
    sign.add_argument("--out", required=True, help="output file (identity) or prefix (tls)")
    sign.add_argument("--format", choices=("file", "tls"), default="file", help="identity file or .crt/.key/.cas")
    sign.set_defaults(func=_run_sign)

    tbot = subparsers.add_parser("tbot", help="keep an identity output directory renewed, like tbot")
    _common(tbot)
    tbot.add_argument("--destination", required=True, help="output directory (identity, key, tlscert, ...)")
    tbot.add_argument(
        "--renewal-interval", type=parse_go_duration, required=True, help="how often to renew, e.g. 20m"
    )
    tbot.add_argument("--bot-name", default="", help="the bot's name in the identity (default: --user without bot-)")
    tbot.set_defaults(func=_run_tbot)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `sign` or `tbot` on their own (the fake's main CLI also registers them)."""
    parser = argparse.ArgumentParser(prog="python -m fakes.teleport_auth.identity_cli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
